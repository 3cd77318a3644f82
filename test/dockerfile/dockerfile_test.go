package dockerfile

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/workflows"
)

// runPipeline starts a manual run of pipeline on main and waits for it.
func runPipeline(t *testing.T, pipeline string) (string, workflows.PipelineResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	id, err := it.runs.StartManual(ctx, pipeline, "main", "")
	require.NoError(t, err)
	var res workflows.PipelineResult
	err = it.temporal.Client.GetWorkflow(ctx, id, "").Get(ctx, &res)
	require.NoError(t, ctx.Err(), "run %s did not end in time", id)
	return id, res, err
}

// TestDockerfileImagePublished builds the Dockerfile twice from one commit:
// the first run pushes the image under the branch, latest and short-SHA
// tags with its base pinned and recorded; the second builds the same digest
// (SOURCE_DATE_EPOCH is the commit time) and pushes nothing.
func TestDockerfileImagePublished(t *testing.T) {
	id, res, err := runPipeline(t, "df")
	require.NoError(t, err)
	require.NotNil(t, res.Publish)
	require.Len(t, res.Publish.Images, 1)
	img := res.Publish.Images[0]
	repo := it.ctrs.Registry + "/acme/df"
	assert.Equal(t, repo, img.Name)
	assert.ElementsMatch(t, []string{"main", "latest", it.head[:7]}, img.Tags)
	assert.Equal(t, map[string]string{it.ctrs.BusyboxTag: it.ctrs.Busybox}, img.Bases, "the base, pinned by digest")

	ref, err := name.ParseReference(repo+":latest", name.Insecure)
	require.NoError(t, err)
	desc, err := remote.Get(ref)
	require.NoError(t, err)
	assert.Equal(t, img.Digest, desc.Digest.String(), "latest is the digest the run reports")
	pushed, err := desc.Image()
	require.NoError(t, err)
	cfg, err := pushed.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, it.head, cfg.Config.Labels["org.opencontainers.image.revision"])
	assert.Equal(t, "/app", cfg.Config.WorkingDir)

	log := imageLog(t, id)
	assert.Contains(t, log, "app says bonjour from the Dockerfile", "the image's test ran in it")
	assert.NotContains(t, log, "npm-df-3be1c7d9e2", "the secret stays out of the log")

	_, again, err := runPipeline(t, "df")
	require.NoError(t, err)
	second := again.Publish.Images[0]
	assert.Equal(t, img.Digest, second.Digest, "one commit builds one digest")
	assert.ElementsMatch(t, img.Tags, second.Skipped, "the re-push changed no tag")
}

// TestDockerfileTestFailurePushesNothing: an image whose test commands fail
// fails the run for good, naming the failure, and no tag reaches the
// registry.
func TestDockerfileTestFailurePushesNothing(t *testing.T) {
	_, _, err := runPipeline(t, "dfbad")
	require.Error(t, err)
	var app *temporal.ApplicationError
	require.ErrorAs(t, err, &app)
	assert.Equal(t, activities.ErrImageTestFailed, app.Type())
	assert.Contains(t, app.Error(), "the image is broken")
	assert.Contains(t, app.Error(), "nothing was pushed")

	repo, err := name.NewRepository(it.ctrs.Registry+"/acme/dfbad", name.Insecure)
	require.NoError(t, err)
	tags, err := remote.List(repo)
	assert.True(t, err != nil || len(tags) == 0, "tags %v were pushed for an image that failed its test", tags)
}

// imageLog reads the first attempt's log of the run's first image.
func imageLog(t *testing.T, id string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(it.dataDir, "logs", strings.ReplaceAll(id, "/", "_"), "image-0-1.log"))
	require.NoError(t, err)
	return string(b)
}
