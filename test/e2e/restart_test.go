package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/test/testkit"
)

// restartYAML is a pipeline whose build takes about 15 s. Each attempt appends
// to attempts and records its shell's PID, then signals that it is under way
// by touching started; STATE is where these files go, outside the workspace.
const restartYAML = `repos:
  - name: e2e/slow
    clone_url: {{REPO}}
    webhook_secret: {file: {{SECRET}}}
pipelines:
  - name: slow
    repo: e2e/slow
    triggers: {manual: true}
    stages:
      build:
        env: {STATE: {{STATE}}}
        buildspec:
          version: 0.2
          phases:
            build:
              commands:
                # Each attempt and run may be another build user: let them all write here.
                - umask 0
                - echo "$KILN_RUN_ID" >> "$STATE/attempts"
                - echo $$ > "$STATE/shell.pid"
                - touch "$STATE/started"
                - sleep 15 & echo $! > "$STATE/sleep.pid"; wait $!
`

// TestDevResumesRunAfterCrash is the promise of a durable engine: kill -9
// `kiln dev` in the middle of a build, start it again on the same data dir,
// and the run carries on to success. The killed build dies with kiln (its
// shell has a parent-death signal); Temporal times the attempt out by its
// heartbeat and retries it on the restarted worker.
func TestDevResumesRunAfterCrash(t *testing.T) {
	t.Parallel()
	began := time.Now()
	logf := func(format string, args ...any) {
		t.Logf("%5.1fs  "+format, append([]any{time.Since(began).Seconds()}, args...)...)
	}
	f := newDevFixture(t, restartYAML, "e2e-restart-secret\n", map[string]string{"README.md": "# slow\n"})
	state := f.state
	killPID(t, filepath.Join(state, "sleep.pid"))
	ports := freeDevPorts(t)
	args := append(ports.devArgs(f.data), "--config", f.config)

	first := startKiln(t, cleanEnv(), args...)
	waitHealthy(t, first, ports, 60*time.Second)
	stdout, stderr, code := runKiln(t, 30*time.Second, cleanEnv(),
		"run", "--pipeline", "slow", "--ref", "main", "--temporal-address", ports.address())
	require.Equal(t, 0, code, "kiln run: %s", stderr)
	id := strings.TrimSpace(stdout)
	logf("started run %s", id)

	waitFile(t, first, filepath.Join(state, "started"), 60*time.Second)
	shell := testkit.ReadPID(filepath.Join(state, "shell.pid"))
	require.NotZero(t, shell)
	logf("build attempt 1 is running (shell pid %d); killing kiln (pid %d) with SIGKILL", shell, first.cmd.Process.Pid)
	require.NoError(t, first.cmd.Process.Signal(syscall.SIGKILL))
	assert.Equal(t, -1, first.waitExit(t, 10*time.Second), "killed by a signal")
	deadline := time.Now().Add(5 * time.Second)
	for testkit.ProcessAlive(shell) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	assert.False(t, testkit.ProcessAlive(shell), "the build's shell died with kiln")
	// Only the shell has the parent-death signal; what it started is orphaned.
	sleep := testkit.ReadPID(filepath.Join(state, "sleep.pid"))
	logf("kiln is dead, and so is the build's shell; its child sleep (pid %d) alive: %v", sleep, testkit.ProcessAlive(sleep))

	second := startKiln(t, cleanEnv(), args...)
	waitHealthy(t, second, ports, 60*time.Second)
	logf("kiln restarted on the same data dir and ports; waiting for the heartbeat timeout and the retry")

	run := waitRun(t, ports, 120*time.Second, func(r runSummary) bool { return r.WorkflowID == id })
	logf("run %s ended %s at stage %s", id, run.Status, run.Stage)
	assert.Equal(t, "completed", run.Status)
	assert.Equal(t, "done", run.Stage)
	attempts, err := os.ReadFile(filepath.Join(state, "attempts"))
	require.NoError(t, err)
	assert.Equal(t, id+"\n"+id+"\n", string(attempts), "the killed attempt and one retry")
	assert.Contains(t, second.stderr.String(), "attempt=2", "the restarted worker ran attempt 2")
}

// waitFile waits until a build creates path, failing early if kiln exits.
func waitFile(t *testing.T, p *proc, path string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if p.exited() {
			t.Fatalf("kiln exited before %s appeared", path)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not appear within %s", path, timeout)
}

// TestCtrlCIsCalm: Ctrl-C (SIGINT) in the middle of a build prints one line
// saying the run in flight resumes, and no "context canceled" noise; the
// next start says which run it resumes, which goes on at once, without
// waiting out a heartbeat timeout.
func TestCtrlCIsCalm(t *testing.T) {
	t.Parallel()
	f := newDevFixture(t, restartYAML, "e2e-ctrl-c-secret\n", map[string]string{"README.md": "# slow\n"})
	killPID(t, filepath.Join(f.state, "sleep.pid"))
	ports := freeDevPorts(t)
	args := append(ports.devArgs(f.data), "--config", f.config)

	first := startKiln(t, cleanEnv(), args...)
	waitHealthy(t, first, ports, 60*time.Second)
	stdout, stderr, code := runKiln(t, 30*time.Second, cleanEnv(),
		"run", "--pipeline", "slow", "--ref", "main", "--temporal-address", ports.address())
	require.Equal(t, 0, code, "kiln run: %s", stderr)
	id := strings.TrimSpace(stdout)
	waitFile(t, first, filepath.Join(f.state, "started"), 60*time.Second)

	require.NoError(t, first.cmd.Process.Signal(os.Interrupt))
	assert.Equal(t, 0, first.waitExit(t, 30*time.Second), "Ctrl-C is a clean stop")
	out := first.stderr.String()
	data, err := filepath.Abs(f.data)
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(out, "kiln dev: stopping; 1 run(s) in flight resume when kiln dev starts again on "+data+"\n"), out)
	after := out[strings.Index(out, "kiln dev: stopping"):]
	for _, noise := range []string{"context canceled", "ERR", "build failed"} {
		assert.NotContains(t, after, noise, "shutdown noise")
	}

	restarted := time.Now()
	second := startKiln(t, cleanEnv(), args...)
	waitHealthy(t, second, ports, 60*time.Second)
	run := waitRun(t, ports, 120*time.Second, func(r runSummary) bool { return r.WorkflowID == id })
	assert.Equal(t, "completed", run.Status)
	assert.Contains(t, second.stderr.String(), `resuming the runs in flight, each from its last finished step runs=1 workflow_ids=["`+id+`"]`)
	// The retry started at once: the 15 s build is most of the wait.
	t.Logf("the run completed %.1fs after the restart", time.Since(restarted).Seconds())
}
