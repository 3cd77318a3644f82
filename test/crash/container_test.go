package crash

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/gitx"
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/workflows"
)

// containerYAML is one pipeline whose build runs in the busybox image for a
// few seconds, long enough to kill the worker in the middle of it.
const containerYAML = `
repos:
  - name: kiln-crash/ctr
    clone_url: REPO
    webhook_secret: {env: ` + hookSecretEnv + `}
pipelines:
  - name: ctr
    repo: kiln-crash/ctr
    triggers: {manual: true}
    stages:
      build:
        environment: {image: IMAGE}
        buildspec:
          version: 0.2
          phases:
            build:
              commands:
                - echo "attempt started in $(cat /etc/hostname 2>/dev/null || echo a container)"
                - sleep 6
                - mkdir -p dist && echo "built $KILN_COMMIT" > dist/out.txt
          artifacts: {files: ["dist/*"]}
`

// TestWorkerKilledMidContainerBuild: SIGKILL a worker while its build runs
// in a container of the buildkitd it started. That daemon dies with it;
// a new worker on the same data dir starts its own (once the old one has
// let go of the root), Temporal retries the build there, and the run
// completes, with no container left running.
func TestWorkerKilledMidContainerBuild(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("kiln starts buildkitd only as root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	reg, err := testkit.StartRegistry(ctx)
	require.NoError(t, err)
	defer reg.Close()
	root := t.TempDir()
	f := &fixture{dataDir: filepath.Join(root, "data"), logDir: filepath.Join(root, "logs"), binDir: filepath.Join(root, "bin")}
	require.NoError(t, os.MkdirAll(f.logDir, 0o755))
	repo := filepath.Join(root, "repo")
	head, err := gitx.InitRepo(ctx, repo, fstest.MapFS{"README.md": {Data: []byte("# ctr\n")}}, "initial commit")
	require.NoError(t, err)
	cfg := strings.NewReplacer("REPO", strconv.Quote(repo), "IMAGE", reg.BusyboxTag).Replace(containerYAML)
	f.config = filepath.Join(root, "kiln.yaml")
	require.NoError(t, os.WriteFile(f.config, []byte(cfg), 0o644))
	tmp, err := testkit.StartTemporal(ctx)
	require.NoError(t, err)
	defer tmp.Close()
	f.temporal, f.runs = tmp, &starter.Runs{Client: tmp.Client}
	f.env = append(cleanWorkerEnv(), hookSecretEnv+"=unused")

	first := f.startWorker(t, 1)
	id, err := f.runs.Start(ctx, starter.ManualRun{Pipeline: "ctr", Ref: "main"})
	require.NoError(t, err)
	log1 := filepath.Join(f.dataDir, "logs", strings.ReplaceAll(id, "/", "_"), "build-1.log")
	waitFor(t, 90*time.Second, "the first attempt to start in its container", func() bool {
		b, _ := os.ReadFile(log1)
		return strings.Contains(string(b), "attempt started in")
	})
	first.kill(t)
	t.Logf("killed the worker mid-build")

	f.startWorker(t, 2)
	var res workflows.PipelineResult
	require.NoError(t, f.client().GetWorkflow(ctx, id, "").Get(ctx, &res), "run %s", id)
	require.NotNil(t, res.Build)
	assert.Equal(t, []string{"dist/out.txt"}, res.Build.Artifacts)
	out, err := os.ReadFile(filepath.Join(res.Build.ArtifactsDir, "dist", "out.txt"))
	require.NoError(t, err)
	assert.Equal(t, "built "+head+"\n", string(out))
	assert.Contains(t, res.Build.LogPath, "build-2.log", "the second attempt built")

	running, err := testkit.RunningContainers(filepath.Join(f.dataDir, "buildkit"))
	require.NoError(t, err)
	assert.Zero(t, running, "containers still run after the run ended")
}

// cleanWorkerEnv is the test's environment without the AWS_*, TEMPORAL_*
// and KILN_* variables a developer's shell may set.
func cleanWorkerEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "TEMPORAL_") && !strings.HasPrefix(kv, "KILN_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitFor polls cond every 100 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}
