package containers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/test/motoserver"
	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/workflows"
)

// TestBuildInImage runs a buildspec in the busybox image: the plan pins
// the tag to its digest; the build sees busybox's files, not the
// worker's; the checkout is at CODEBUILD_SRC_DIR; artifacts, exported
// variables and a passing JUnit report come out; declared secrets (from
// the worker's environment, Secrets Manager and Parameter Store) reach the
// build and not its log; and neither the worker's environment nor its
// HOME is visible in the container.
func TestBuildInImage(t *testing.T) {
	t.Parallel()
	id := startManual(t, "image")
	res := mustSucceed(t, id)
	b := res.Build
	require.NotNil(t, b)
	assert.Equal(t, it.containers.Busybox, b.Image, "the tag is pinned to busybox's digest")
	assert.NotEmpty(t, b.ImageDigest)

	art := func(name string) string {
		data, err := os.ReadFile(filepath.Join(b.ArtifactsDir, "out", name))
		require.NoError(t, err)
		return strings.TrimSpace(string(data))
	}
	assert.Equal(t, "root:x:0:0:root:/root:/bin/sh", art("passwd.txt"), "busybox's /etc/passwd, not the worker's")
	assert.Equal(t, "none", art("bash.txt"), "busybox has no bash; the worker has")
	assert.Equal(t, "/codebuild/output/src", art("pwd.txt"))
	assert.Equal(t, "/codebuild/output/src", art("src-dir.txt"))
	assert.Equal(t, "# ctr", art("readme.txt"), "the checkout is at CODEBUILD_SRC_DIR")
	assert.Equal(t, "exported from /codebuild/output/src", b.Exported["RESULT"])
	require.Len(t, b.Reports, 1)
	assert.Equal(t, "smoke", b.Reports[0].Name)
	assert.Equal(t, 1, b.Reports[0].Summary.Passed)

	assert.Equal(t, strings.Join([]string{sha(apiToken), sha(dbPassword), sha(npmToken)}, "\n"), art("secrets.sha256"),
		"the declared secrets reach the build: env, secrets_manager and the buildspec's parameter-store")
	log, err := os.ReadFile(b.LogPath)
	require.NoError(t, err)
	assert.Contains(t, string(log), "token is <sensitive>, db is <sensitive>, npm is <sensitive>")
	for _, secret := range []string{apiToken, dbPassword, npmToken} {
		assert.NotContains(t, string(log), secret, "a secret reached the log")
	}

	env, initEnv := art("env.txt"), art("init-env.txt")
	vars := envMap(env)
	assert.Equal(t, "declared-value", vars["DECLARED"], "the stage's env reaches the build")
	assert.Equal(t, "/root", vars["HOME"], "HOME is the image's, not the worker's")
	for name, secret := range workerSecrets {
		for what, text := range map[string]string{"env": env, "/proc/1/environ": initEnv} {
			_, found := envMap(text)[name]
			assert.False(t, found, "the worker's %s is in the container's %s", name, what)
			assert.False(t, strings.Contains(text, secret), "the value of the worker's %s is in the container's %s", name, what)
		}
	}
	for _, k := range []string{"CTR_API_TOKEN", "CTR_GH_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL", "PYENV_ROOT"} {
		_, found := vars[k]
		assert.False(t, found, "the worker's %s reached the build", k)
	}
	assert.Equal(t, "absent", art("worker-home.txt"), "the worker's HOME is not in the container")
	assert.Empty(t, art("marker.txt"), "a file holds the worker's HOME credentials")
}

// TestCacheKeptBetweenRuns: a cache path, absolute or under the source
// directory, holds what the previous run of the pipeline wrote there.
func TestCacheKeptBetweenRuns(t *testing.T) {
	t.Parallel()
	first := mustSucceed(t, startManual(t, "cache"))
	second := mustSucceed(t, startManual(t, "cache"))
	read := func(res workflows.PipelineResult, name string) string {
		data, err := os.ReadFile(filepath.Join(res.Build.ArtifactsDir, "out", name))
		require.NoError(t, err)
		return strings.TrimSpace(string(data))
	}
	firstID := first.Progress.RunID
	require.NotEmpty(t, firstID)
	assert.Empty(t, read(first, "seen.txt"), "the first run starts with an empty cache")
	assert.Equal(t, firstID, read(second, "seen.txt"), "/var/cache/kiln is kept")
	assert.Equal(t, firstID, read(second, "deps.txt"), "deps/ under the source directory is kept")
}

// TestFailedTestsReachReportAndMail: a build whose tests fail fails, and
// its JUnit report, read out of the container, names the failed test in
// the pull request's comment, the notification mail and the progress
// query.
func TestFailedTestsReachReportAndMail(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev := event.Event{Kind: event.KindReview, Repo: "acme/ctr", Ref: "refs/pull/7/head", Branch: "feature",
		Commit: it.head, DeliveryID: "junit-7", PullRequest: &event.PullRequest{Number: 7, Title: "frobnicate",
			SourceBranch: "feature", TargetBranch: "main", SourceCommit: it.head}}
	id, _, err := it.runs.StartRun(ctx, &config.Pipeline{Name: "junit"}, ev)
	require.NoError(t, err)
	_, err = waitRun(t, id)
	appErr := errorAs[*temporal.ApplicationError](t, err)
	assert.Equal(t, activities.ErrBuildFailed, appErr.Type())

	p := queryProgress(t, id)
	require.Len(t, p.Tests, 1)
	assert.Equal(t, 1, p.Tests[0].Summary.Passed)
	assert.Equal(t, 1, p.Tests[0].Summary.Failed)
	require.Len(t, p.Tests[0].Summary.Failures, 1)
	assert.Equal(t, "TestFrobnicate", p.Tests[0].Summary.Failures[0].Name)

	body, n := it.github.comment()
	assert.Equal(t, 1, n, "one comment per run")
	assert.Contains(t, body, "**Failed tests**")
	assert.Contains(t, body, "TestFrobnicate")
	assert.Contains(t, body, "want 3, got 4")
	assert.Contains(t, mailBody(t, "dev@example.com"), "TestFrobnicate")
}

// TestMissingSecretFailsForGood: a secret Secrets Manager does not have
// fails the build once, naming the variable and the reference.
func TestMissingSecretFailsForGood(t *testing.T) {
	t.Parallel()
	id := startManual(t, "nosecret")
	_, err := waitRun(t, id)
	appErr := errorAs[*temporal.ApplicationError](t, err)
	assert.Equal(t, activities.ErrSecretUnavailable, appErr.Type())
	assert.Contains(t, appErr.Message(), "stages.build.secrets.DB_PASSWORD")
	assert.Contains(t, appErr.Message(), `"ctr/absent:password"`)
	assert.Equal(t, []int32{1}, activityAttempts(t, id, "Build"), "a missing secret is not retried")
}

// TestNoContainerOutlivesItsBuild: buildkitd runs no container once a
// build has passed, nor once a run was cancelled while its build slept in
// the container; the cancelled run closes promptly. It is not parallel, so
// it runs before the others and the containers it counts are its own.
func TestNoContainerOutlivesItsBuild(t *testing.T) {
	mustSucceed(t, startManual(t, "quick"))
	assert.Equal(t, 0, runningContainers(t), "a container outlived its passed build")

	id := startManual(t, "cancel")
	waitFor(t, runTimeout, "the build to start sleeping", func() bool {
		data, _ := os.ReadFile(logPath(id, 1))
		return strings.Contains(string(data), "\nsleeping\n")
	})
	require.Equal(t, 1, runningContainers(t), "the build's container runs")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cancelled := time.Now()
	require.NoError(t, it.temporal.Client.CancelWorkflow(ctx, id, ""))
	_, err := waitRun(t, id)
	errorAs[*temporal.CanceledError](t, err)
	t.Logf("the run closed %s after the cancel request", time.Since(cancelled).Round(100*time.Millisecond))
	assert.Less(t, time.Since(cancelled), 30*time.Second)
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := it.temporal.Client.DescribeWorkflowExecution(ctx, id, "")
	require.NoError(t, err)
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, d.GetWorkflowExecutionInfo().GetStatus())
	assert.Equal(t, 0, runningContainers(t), "containers still run in buildkitd after the cancel")
}

func startManual(t *testing.T, pipeline string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := it.runs.StartManual(ctx, pipeline, "main", "")
	require.NoError(t, err)
	return id
}

// waitRun waits for a run to close and returns its result and error.
func waitRun(t *testing.T, id string) (workflows.PipelineResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	var res workflows.PipelineResult
	err := it.temporal.Client.GetWorkflow(ctx, id, "").Get(ctx, &res)
	if ctx.Err() != nil {
		t.Fatalf("run %s did not finish within %s\n%s", id, runTimeout, logTail(id))
	}
	return res, err
}

func mustSucceed(t *testing.T, id string) workflows.PipelineResult {
	t.Helper()
	res, err := waitRun(t, id)
	require.NoError(t, err, "run %s\n%s", id, logTail(id))
	return res
}

func queryProgress(t *testing.T, id string) workflows.Progress {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	v, err := it.temporal.Client.QueryWorkflow(ctx, id, "", workflows.QueryProgress)
	require.NoError(t, err)
	var p workflows.Progress
	require.NoError(t, v.Get(&p))
	return p
}

// activityAttempts returns the attempt each execution of the named activity
// ended on.
func activityAttempts(t *testing.T, id, activity string) []int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events, err := testkit.History(ctx, it.temporal.Client, id)
	require.NoError(t, err)
	return testkit.ActivityAttempts(events, activity)
}

func errorAs[T error](t *testing.T, err error) T {
	t.Helper()
	var target T
	require.True(t, errors.As(err, &target), "want %T in error chain, got %T: %v", target, err, err)
	return target
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logPath is where the worker writes a build attempt's log.
func logPath(id string, attempt int) string {
	run := strings.NewReplacer("/", "_", "\\", "_", "..", "_").Replace(id)
	return filepath.Join(it.dataDir, "logs", run, "build-"+strconv.Itoa(attempt)+".log")
}

func logTail(id string) string {
	data, _ := os.ReadFile(logPath(id, 1))
	lines := strings.SplitAfter(string(data), "\n")
	return strings.Join(lines[max(0, len(lines)-40):], "")
}

// runningContainers counts the containers the test's buildkitd runs.
func runningContainers(t *testing.T) int {
	t.Helper()
	n, err := it.containers.Running()
	require.NoError(t, err)
	return n
}

// mailBody returns the text of the mail moto's SES "sent" to addr.
func mailBody(t *testing.T, addr string) string {
	t.Helper()
	for _, m := range motoserver.SentMail(t, it.moto) {
		if slices.Contains(m.To, addr) {
			return m.Body
		}
	}
	t.Fatalf("no mail to %s", addr)
	return ""
}

func envMap(text string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
		}
	}
	return out
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestUntrustedBuildHasNoSecrets: a fork's pull request builds in its
// image before anyone approved it, without the secrets the pipeline
// declares, and says so in its log.
func TestUntrustedBuildHasNoSecrets(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev := event.Event{Kind: event.KindReview, Repo: "acme/ctr", Ref: "refs/pull/8/head", Branch: "feature",
		Commit: it.head, DeliveryID: "fork-8", PullRequest: &event.PullRequest{Number: 8, Title: "from a fork",
			SourceBranch: "feature", TargetBranch: "main", SourceCommit: it.head, Fork: true}}
	id, _, err := it.runs.StartRun(ctx, &config.Pipeline{Name: "image"}, ev)
	require.NoError(t, err)
	res := mustSucceed(t, id)
	b := res.Build
	require.NotNil(t, b)
	got, err := os.ReadFile(filepath.Join(b.ArtifactsDir, "out", "secrets.sha256"))
	require.NoError(t, err)
	assert.Equal(t, strings.Join([]string{sha(""), sha(""), sha("")}, "\n"), strings.TrimSpace(string(got)),
		"no declared secret reached the untrusted build")
	log, err := os.ReadFile(b.LogPath)
	require.NoError(t, err)
	assert.Contains(t, string(log), "[kiln] an untrusted change, not approved yet: building in the image without the declared secrets")
	for _, secret := range []string{apiToken, dbPassword, npmToken} {
		assert.NotContains(t, string(log), secret)
	}
}
