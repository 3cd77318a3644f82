package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/devserver"
	"github.com/kiln-ci/kiln/test/testkit"
)

// worker is one `kiln worker` process and its data dir.
type worker struct {
	// n numbers the workers of a cluster from 1, in start order.
	n       int
	dataDir string
	proc    *process
	// killedAt is when the test SIGKILLed it; zero while it lives.
	killedAt time.Time
	// metrics is the URL of its GET /metrics.
	metrics string
}

func (w *worker) String() string { return fmt.Sprintf("worker %d (pid %d)", w.n, w.proc.pid()) }

// kilnEnv is the test's environment without the AWS_*, TEMPORAL_* and
// KILN_* variables a developer's shell may set, with AWS pointed at the
// proxy with moto's dummy credentials, and the packer wrapper first on PATH.
func (c *cluster) kilnEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "TEMPORAL_") &&
			!strings.HasPrefix(kv, "KILN_") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	return append(env,
		"PATH="+c.binDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"AWS_ENDPOINT_URL="+c.proxy.URL,
		"AWS_ACCESS_KEY_ID=testing",
		"AWS_SECRET_ACCESS_KEY=testing",
		"AWS_REGION="+bakeRegion,
		"AWS_EC2_METADATA_DISABLED=true",
		hookSecretEnv+"="+hookSecret,
	)
}

// temporalArgs point a kiln process at the cluster's Temporal.
func (c *cluster) temporalArgs() []string {
	return []string{"--temporal-address", c.temporal.address, "--namespace", namespace}
}

// startServe runs `kiln serve` and waits until /healthz answers 200.
func (c *cluster) startServe(t testing.TB) {
	t.Helper()
	ports, err := devserver.FreePorts("127.0.0.1", 1)
	require.NoError(t, err)
	listen := "127.0.0.1:" + strconv.Itoa(ports[0])
	args := append([]string{"serve", "--config", c.config, "--listen", listen}, c.temporalArgs()...)
	c.serve, err = startProcess("kiln serve", filepath.Join(c.logDir, "serve.log"), c.kilnEnv(), kilnBin, args...)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = c.serve.kill()
		if t.Failed() {
			t.Logf("kiln serve output (last lines):\n%s", lastLines(c.serve.output(), 30))
		}
	})
	c.hook = "http://" + listen + "/hooks/github"
	deadline := time.Now().Add(time.Minute)
	for httpStatus("http://"+listen+"/healthz") != http.StatusOK {
		if c.serve.exited() || time.Now().After(deadline) {
			t.Fatalf("kiln serve was not healthy within a minute (exited: %v); its output:\n%s",
				c.serve.exited(), lastLines(c.serve.output(), 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startWorker runs one more `kiln worker` with a data dir of its own and
// waits until it polls. No buildkitd is started: these pipelines build on
// the worker, and three private buildkitds would crowd two cores.
func (c *cluster) startWorker(t testing.TB) *worker {
	t.Helper()
	w := &worker{n: len(c.workers) + 1}
	w.dataDir = filepath.Join(c.root, fmt.Sprintf("worker-%d", w.n))
	ports, err := devserver.FreePorts("127.0.0.1", 1)
	require.NoError(t, err)
	metrics := "127.0.0.1:" + strconv.Itoa(ports[0])
	w.metrics = "http://" + metrics + "/metrics"
	args := append([]string{"worker", "--config", c.config, "--data-dir", w.dataDir, "--metrics-listen", metrics,
		"--copy-poll-interval", "500ms", "--buildkit-address", "unix://" + filepath.Join(c.root, "no-buildkitd.sock")},
		c.temporalArgs()...)
	w.proc, err = startProcess(fmt.Sprintf("kiln worker %d", w.n), filepath.Join(c.logDir, fmt.Sprintf("worker-%d.log", w.n)),
		c.kilnEnv(), kilnBin, args...)
	require.NoError(t, err)
	c.workers = append(c.workers, w)
	t.Cleanup(func() {
		if err := w.proc.kill(); err != nil {
			t.Error(err)
		}
		if t.Failed() || os.Getenv("KILN_CLUSTER_LOGS") != "" {
			t.Logf("%s output (last lines):\n%s", w, lastLines(w.proc.output(), 30))
		}
	})
	require.NoError(t, w.proc.waitOutput("kiln worker is polling", time.Minute))
	return w
}

// kill SIGKILLs a worker's process group (the worker, and the build or
// Packer it runs) and notes when.
func (c *cluster) kill(t *testing.T, w *worker) {
	t.Helper()
	w.killedAt = time.Now()
	require.NoError(t, w.proc.kill())
	require.False(t, testkit.ProcessAlive(w.proc.pid()), "%s still runs after SIGKILL", w)
}

// workerOf returns the worker whose Temporal identity is identity
// ("<pid>@<host>@…", the SDK's default), or nil for none of the cluster's.
func (c *cluster) workerOf(identity string) *worker {
	pid := workerPID(identity)
	for _, w := range c.workers {
		if w.proc.pid() == pid {
			return w
		}
	}
	return nil
}

// describeWorker names the worker of identity for a log line.
func (c *cluster) describeWorker(identity string) string {
	if w := c.workerOf(identity); w != nil {
		return w.String()
	}
	return "an unknown worker " + identity
}

// push delivers a signed GitHub push of commit to branch to kiln serve and
// returns the ID of the one run it must start.
func (c *cluster) push(t testing.TB, branch, commit string) string {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"ref": "refs/heads/" + branch, "before": c.base, "after": commit,
		"created": false, "deleted": false, "forced": false,
		"repository": map[string]any{
			"name": "app", "full_name": repoName, "clone_url": c.repo, "default_branch": "main",
			"owner": map[string]any{"login": "cluster"},
		},
		"sender": map[string]any{"login": "dev1"}, "pusher": map[string]any{"name": "dev1"},
		"head_commit": map[string]any{"id": commit, "message": "change " + commit[:7]},
	})
	require.NoError(t, err)
	req, err := testkit.GitHubDelivery(c.hook, hookSecret, "push", testkit.NewDeliveryID(), body)
	require.NoError(t, err)
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	require.NoError(t, err, "webhook to kiln serve")
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "kiln serve's answer to a push of %s: %s", branch, answer)
	var out struct {
		Started []struct {
			WorkflowID string `json:"workflow_id"`
		} `json:"started"`
	}
	require.NoError(t, json.NewDecoder(bytes.NewReader(answer)).Decode(&out), "%s", answer)
	require.Len(t, out.Started, 1, "runs a push of %s started: %s", branch, answer)
	return out.Started[0].WorkflowID
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
