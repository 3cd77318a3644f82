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

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/kiln-ci/kiln/internal/gitx"
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/workflows"
)

// artifactsYAML builds on the worker, stores the artifacts in a directory
// both workers mount, and publishes an image made of them behind an
// approval, so the test can kill the building worker in between.
const artifactsYAML = `
repos:
  - name: kiln-crash/art
    clone_url: {{REPO}}
    webhook_secret: {env: ` + hookSecretEnv + `}
artifacts: {dir: {{STORE}}}
pipelines:
  - name: art
    repo: kiln-crash/art
    triggers: {manual: true}
    stages:
      build: {buildspec: buildspec.yml}
      publish:
        approval: {required: true}
        images:
          - name: {{REGISTRY}}/kiln/art
            insecure: true
            files: [{from: "dist/**", to: /opt/art}]
`

const artifactsBuildspec = `version: 0.2
phases:
  build:
    commands:
      - mkdir -p dist/bin
      - printf 'built by %s\n' "$CODEBUILD_RESOLVED_SOURCE_VERSION" > dist/hello.txt
      - printf '#!/bin/sh\necho hi\n' > dist/bin/hi && chmod 755 dist/bin/hi
artifacts:
  files: ['dist/**/*']
`

// TestPublishAfterTheBuildWorkerDied: the worker that built a run's
// artifacts dies before the publish. Another worker, with a disk of its
// own, publishes the image from the artifact store, without a rebuild, a
// minute after the dead worker's queue left the task untaken.
func TestPublishAfterTheBuildWorkerDied(t *testing.T) {
	root := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	tmp, err := testkit.StartTemporal(ctx)
	require.NoError(t, err)
	t.Cleanup(tmp.Close)
	reg, err := testkit.StartRegistry(ctx)
	require.NoError(t, err)
	t.Cleanup(reg.Close)
	repo := filepath.Join(root, "repo")
	commit, err := gitx.InitRepo(ctx, repo, fstest.MapFS{"buildspec.yml": {Data: []byte(artifactsBuildspec)}}, "initial commit")
	require.NoError(t, err)
	store := filepath.Join(root, "store")
	cfg := strings.NewReplacer("{{REPO}}", strconv.Quote(repo), "{{STORE}}", strconv.Quote(store), "{{REGISTRY}}", reg.Host).Replace(artifactsYAML)
	config := filepath.Join(root, "kiln.yaml")
	require.NoError(t, os.WriteFile(config, []byte(cfg), 0o644))
	env := append(cleanWorkerEnv(), hookSecretEnv+"=unused-webhook-secret")
	worker := func(n int) (*fixture, *workerProc) {
		f := &fixture{temporal: tmp, config: config, dataDir: filepath.Join(root, "data-"+strconv.Itoa(n)),
			logDir: root, env: env}
		return f, f.startWorker(t, n)
	}

	builder, first := worker(1)
	runs := &starter.Runs{Client: tmp.Client}
	id, err := runs.Start(ctx, starter.ManualRun{Pipeline: "art", Ref: "main"})
	require.NoError(t, err)
	waitStage(t, builder, id, "publish: awaiting approval", first)
	copies, _ := filepath.Glob(filepath.Join(builder.dataDir, "artifacts", "*", "dist", "hello.txt"))
	require.Len(t, copies, 1, "the builder keeps its own copy")
	built, err := os.ReadFile(copies[0])
	require.NoError(t, err)
	first.kill(t)

	publisher, second := worker(2)
	_, err = runs.Approve(ctx, id, workflows.Decision{By: "ada", Via: workflows.ViaCLI})
	require.NoError(t, err)
	var res workflows.PipelineResult
	require.NoError(t, tmp.Client.GetWorkflow(ctx, id, "").Get(ctx, &res), "run %s\n%s", id, lastLines(second.output(), 30))

	events := publisher.history(t, id)
	assert.Equal(t, []int32{1}, testkit.ActivityAttempts(events, "Build"), "the build ran once")
	require.NotEmpty(t, res.Build.ArtifactsManifest, "the build stored its artifacts")
	var queues []string
	var timedOut []enumspb.TimeoutType
	for _, e := range events {
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "PublishImage" {
			queues = append(queues, a.GetTaskQueue().GetName())
		}
		if a := e.GetActivityTaskTimedOutEventAttributes(); a != nil {
			timedOut = append(timedOut, a.GetFailure().GetTimeoutFailureInfo().GetTimeoutType())
		}
	}
	require.Len(t, queues, 2, "PublishImage was scheduled on %v", queues)
	assert.Equal(t, res.Build.ArtifactsQueue, queues[0], "first on the building worker's queue")
	assert.Equal(t, workflows.TaskQueue, queues[1], "then on any worker's")
	assert.Equal(t, []enumspb.TimeoutType{enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START}, timedOut)
	assert.Contains(t, second.output(), "fetched the build's artifacts from the artifact store")

	require.Len(t, res.Publish.Images, 1)
	image, err := name.ParseReference(reg.Host+"/kiln/art@"+res.Publish.Images[0].Digest, name.Insecure)
	require.NoError(t, err)
	assert.Equal(t, string(built), testkit.FileInImage(t, image, "opt/art/hello.txt"))
	assert.Contains(t, string(built), commit)
	assert.Equal(t, "#!/bin/sh\necho hi\n", testkit.FileInImage(t, image, "opt/art/bin/hi"))
}

// waitStage polls the run's progress until its stage is want, failing if
// the worker dies first.
func waitStage(t *testing.T, f *fixture, id, want string, w *workerProc) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var got workflows.Progress
	for time.Now().Before(deadline) {
		if v, err := f.client().QueryWorkflow(context.Background(), id, "", workflows.QueryProgress); err == nil {
			if err := v.Get(&got); err == nil && got.Stage == want {
				return
			}
		}
		if w.exited() {
			t.Fatalf("the worker exited:\n%s", lastLines(w.output(), 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("run %s is at %q, not %q, after 2m:\n%s", id, got.Stage, want, lastLines(w.output(), 40))
}
