package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/devserver"
	"github.com/kiln-ci/kiln/internal/gitx"
	"github.com/kiln-ci/kiln/test/testkit"
)

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is a long-running kiln process, such as `kiln dev`.
type proc struct {
	cmd    *exec.Cmd
	stdout lockedBuffer
	stderr lockedBuffer
	done   chan struct{} // closed once the process has exited
}

// startKiln starts kiln with args and kills it when the test ends, whatever
// state the test left it in.
func startKiln(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(kilnBin, args...), done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	require.NoError(t, p.cmd.Start())
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		// The buildkitd it started dies with it, after it; what it had
		// mounted under the data dir must go before the dir can.
		if i := slices.Index(args, "--data-dir"); i >= 0 && i+1 < len(args) {
			testkit.ReleaseBuildkit(args[i+1])
		}
		if t.Failed() {
			t.Logf("kiln %s stderr:\n%s", strings.Join(args, " "), lastLines(p.stderr.String(), 60))
		}
	})
	return p
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitExit waits for the process to end and returns its exit code; -1 means
// it was killed by a signal.
func (p *proc) waitExit(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("kiln did not exit within %s; stderr:\n%s", timeout, lastLines(p.stderr.String(), 40))
		return 0
	}
}

// runKiln runs a short kiln command to completion and returns its output and
// exit code.
func runKiln(t *testing.T, timeout time.Duration, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, kilnBin, args...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("kiln %s did not finish within %s; stderr:\n%s", strings.Join(args, " "), timeout, errOut.String())
	case err != nil && !errors.As(err, &exit):
		t.Fatalf("kiln %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// cleanEnv is the test's environment without the TEMPORAL_* and KILN_*
// variables a developer's shell may set, plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TEMPORAL_") && !strings.HasPrefix(kv, "KILN_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// devPorts are the ports of one `kiln dev`, all free when chosen.
type devPorts struct{ temporal, ui, http int }

func freeDevPorts(t *testing.T) devPorts {
	t.Helper()
	p, err := devserver.FreePorts("127.0.0.1", 3)
	require.NoError(t, err)
	return devPorts{temporal: p[0], ui: p[1], http: p[2]}
}

// devArgs are the flags that put `kiln dev` on ports and a data dir of its own.
func (d devPorts) devArgs(dataDir string) []string {
	return []string{"dev", "--data-dir", dataDir, "--temporal-port", strconv.Itoa(d.temporal),
		"--ui-port", strconv.Itoa(d.ui), "--listen", "127.0.0.1:" + strconv.Itoa(d.http)}
}

// address is the Temporal frontend, for --temporal-address.
func (d devPorts) address() string { return "127.0.0.1:" + strconv.Itoa(d.temporal) }

// waitHealthy polls /healthz until it answers 200, failing early if kiln exits.
func waitHealthy(t *testing.T, p *proc, ports devPorts, timeout time.Duration) {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", ports.http)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p.exited() {
			t.Fatalf("kiln exited with %d before it was healthy; stderr:\n%s", p.cmd.ProcessState.ExitCode(), p.stderr.String())
		}
		if httpStatus(url) == http.StatusOK {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200 within %s", url, timeout)
}

// httpStatus GETs url and returns the status, or 0 if nothing answered.
func httpStatus(url string) int {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// runSummary is one entry of `kiln runs --json`: the fields a script relies on.
type runSummary struct {
	WorkflowID string    `json:"workflow_id"`
	Pipeline   string    `json:"pipeline"`
	Event      string    `json:"event"`
	Status     string    `json:"status"`
	Stage      string    `json:"stage"`
	RunID      string    `json:"run_id"`
	Reason     string    `json:"reason"`
	Ended      time.Time `json:"ended"`
	Approvals  string    `json:"approvals"`
}

// waitRun polls `kiln runs --json` until match finds a run whose status is no
// longer running, and returns it.
func waitRun(t *testing.T, ports devPorts, timeout time.Duration, match func(runSummary) bool) runSummary {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		out, errOut, code := runKiln(t, 20*time.Second, cleanEnv(), "runs", "--json", "--temporal-address", ports.address())
		last = out + errOut
		var runs []runSummary
		if code == 0 && json.Unmarshal([]byte(out), &runs) == nil {
			for _, r := range runs {
				if match(r) && r.Status != "running" {
					return r
				}
			}
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("no finished run matched within %s; last `kiln runs --json`:\n%s", timeout, last)
	return runSummary{}
}

// makeRepo creates a git repository holding files, committed on main.
func makeRepo(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, content := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(content)}
	}
	_, err := gitx.InitRepo(context.Background(), dir, fsys, "initial commit")
	require.NoError(t, err)
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

// killPID kills a leftover build process when the test ends.
func killPID(t *testing.T, path string) {
	t.Cleanup(func() {
		if pid := testkit.ReadPID(path); pid > 0 && testkit.ProcessAlive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// lastLines returns the last n lines of s, enough to read a failure by.
func lastLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "")
}

// devFixture is what a test's `kiln dev` works on: state (where builds
// leave files for the test), a git repository, the data dir and kiln.yaml.
type devFixture struct{ state, repo, data, config string }

// newDevFixture makes a repository holding files and writes kiln.yaml from
// yaml, with {{REPO}}, {{SECRET}} (a file holding secret) and {{STATE}}
// filled in.
func newDevFixture(t *testing.T, yaml, secret string, files map[string]string) devFixture {
	t.Helper()
	dir := t.TempDir()
	f := devFixture{state: sharedDir(t), repo: filepath.Join(dir, "repo"), data: filepath.Join(dir, "data")}
	makeRepo(t, f.repo, files)
	secretFile := writeFile(t, dir, "secret", secret)
	f.config = writeFile(t, dir, "kiln.yaml", strings.NewReplacer(
		"{{REPO}}", strconv.Quote(f.repo), "{{SECRET}}", strconv.Quote(secretFile), "{{STATE}}", strconv.Quote(f.state),
	).Replace(yaml))
	return f
}

// sharedDir is a directory builds can write to: kiln as root runs them as
// users of their own, who cannot reach into t.TempDir (its parent is 0700).
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kiln-e2e-state-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o777))
	return dir
}

// deliverHook POSTs payload to hook as GitHub delivers an event, signed
// with secret, and returns kiln's status and answer.
func deliverHook(t *testing.T, hook, secret, event string, payload any) (int, []byte) {
	t.Helper()
	body, err := json.Marshal(payload)
	require.NoError(t, err)
	req, err := testkit.GitHubDelivery(hook, secret, event, testkit.NewDeliveryID(), body)
	require.NoError(t, err)
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, answer
}

// startedRun delivers an event that must start exactly one run, and
// returns the run's ID.
func startedRun(t *testing.T, hook, secret, event string, payload any) string {
	t.Helper()
	status, answer := deliverHook(t, hook, secret, event, payload)
	require.Equal(t, http.StatusOK, status, "%s", answer)
	var out struct {
		Started []struct {
			WorkflowID string `json:"workflow_id"`
		} `json:"started"`
	}
	require.NoError(t, json.Unmarshal(answer, &out))
	require.Len(t, out.Started, 1, "%s", answer)
	return out.Started[0].WorkflowID
}
