package integration

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/activities"
)

// TestImageBuildNeedsContainers: a pipeline that builds in an image, run on
// a worker without a container runtime, fails at its plan, once, saying
// which pipeline needs containers, for what, and why the worker has none.
func TestImageBuildNeedsContainers(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := it.runs.StartManual(ctx, "needs-image", "main", "")
	require.NoError(t, err)
	_, err = waitRun(t, id, runTimeout)
	appErr := errorAs[*temporal.ApplicationError](t, err)
	assert.Equal(t, activities.ErrNoContainers, appErr.Type())
	for _, want := range []string{`pipeline "needs-image"`, "stages.build.environment.image", noContainers.Error()} {
		assert.Contains(t, appErr.Message(), want)
	}
	assert.Equal(t, []int32{1}, activityAttempts(t, id, "Plan"), "the plan is not retried")
	assert.Empty(t, activityAttempts(t, id, "Build"), "no build starts")
}
