package crash

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/stretchr/testify/require"
)

// workerProc is one `kiln worker` process, leader of its own process group,
// so a kill of the group also kills the packer it may be running.
type workerProc struct {
	cmd  *exec.Cmd
	log  string        // its stdout and stderr
	done chan struct{} // closed once it has exited
}

// startWorker runs `kiln worker` against the fixture, as the n-th worker
// (its log is worker-n.log), and kills its process group when the test ends,
// whatever state the test left it in.
func (f *fixture) startWorker(t *testing.T, n int) *workerProc {
	t.Helper()
	w := &workerProc{log: filepath.Join(f.logDir, fmt.Sprintf("worker-%d.log", n)), done: make(chan struct{})}
	out, err := os.Create(w.log)
	require.NoError(t, err)
	defer out.Close() // the child holds its own descriptor
	w.cmd = exec.Command(kilnBin, "worker", "--config", f.config, "--data-dir", f.dataDir,
		"--temporal-address", f.temporal.Server.Address(), "--namespace", f.temporal.Server.Namespace(),
		"--copy-poll-interval", "500ms")
	w.cmd.Env = f.env
	if w.cmd.Env == nil {
		w.cmd.Env = f.workerEnv()
	}
	w.cmd.Stdout, w.cmd.Stderr = out, out
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, w.cmd.Start())
	go func() {
		_ = w.cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(func() {
		w.kill(t)
		// The buildkitd it started dies with it, after it; what that left
		// mounted under the data dir must go before the dir can.
		testkit.ReleaseBuildkit(f.dataDir)
		if t.Failed() {
			data, _ := os.ReadFile(w.log)
			t.Logf("worker %d output (last lines):\n%s", n, lastLines(string(data), 60))
		}
	})
	return w
}

// workerEnv is the test's environment without the AWS_*, TEMPORAL_* and
// KILN_* variables a developer's shell may set, pointed at the proxy with
// moto's dummy credentials, and with the packer wrapper first in PATH.
func (f *fixture) workerEnv() []string {
	return append(cleanWorkerEnv(), // the PATH below replaces the test's
		"PATH="+f.binDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"AWS_ENDPOINT_URL="+f.proxy.URL,
		"AWS_ACCESS_KEY_ID=testing",
		"AWS_SECRET_ACCESS_KEY=testing",
		"AWS_REGION="+bakeRegion,
		"AWS_EC2_METADATA_DISABLED=true",
		hookSecretEnv+"=unused-webhook-secret",
	)
}

// kill sends SIGKILL to the worker's process group and waits for the worker
// to be reaped. Killing a group that is gone already is harmless.
func (w *workerProc) kill(t *testing.T) {
	t.Helper()
	_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
		t.Errorf("kiln worker (pid %d) did not exit within 10s of SIGKILL", w.cmd.Process.Pid)
	}
}

// exited reports whether the worker has ended.
func (w *workerProc) exited() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// output is what the worker has written so far.
func (w *workerProc) output() string {
	data, _ := os.ReadFile(w.log)
	return string(data)
}

// lastLines returns the last n lines of s, enough to read a failure by.
func lastLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "")
}
