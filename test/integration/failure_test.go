package integration

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/workflows"
)

// TestFailingCommandFailsRunOnce runs a build whose third command exits 3. The
// run must fail with the exit status and the log's last lines in its error,
// and must not retry: a command's failure is the code's, not the machine's.
func TestFailingCommandFailsRunOnce(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := it.runs.StartManual(ctx, "fail", "main", "")
	require.NoError(t, err)

	_, err = waitRun(t, id, runTimeout)
	require.Error(t, err, "a command exiting 3 fails the run")
	app := errorAs[*temporal.ApplicationError](t, err)
	assert.Equal(t, activities.ErrBuildFailed, app.Type())
	assert.True(t, app.NonRetryable())
	msg := app.Error()
	assert.Contains(t, msg, `command "sh -c 'exit 3'" exited with status 3`)
	assert.Contains(t, msg, "compiling widget", "the log tail shows the build's output")
	assert.Contains(t, msg, "widget.go:3:2 undefined frobnicate", "the log tail shows stderr too")
	assert.Contains(t, msg, "log: "+logPath(id, 1))

	d := describe(t, id)
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, d.GetWorkflowExecutionInfo().GetStatus())
	assert.Equal(t, "build", searchAttrsOf(d)["KilnStage"], "KilnStage names the stage that failed")
	assert.Equal(t, []int32{1}, activityAttempts(t, id, "Build"), "Build ran exactly once")

	p := queryProgress(t, id)
	require.Len(t, p.Stages, 1)
	assert.Equal(t, workflows.StateFailed, p.Stages[0].State)
	assert.Contains(t, p.Stages[0].Error, "exited with status 3")

	log, err := os.ReadFile(logPath(id, 1))
	require.NoError(t, err)
	assert.NotContains(t, string(log), "this line must not run", "the build stops at the failing command")
}

// TestUnknownPipelineFailsFast starts a manual run of a pipeline the worker's
// kiln.yaml does not define. Plan must fail it at once with UnknownPipeline
// instead of retrying for minutes.
func TestUnknownPipelineFailsFast(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	started := time.Now()
	id, err := it.runs.StartManual(ctx, "no-such-pipeline", "main", "")
	require.NoError(t, err, "the starter leaves checking pipelines to the worker")

	_, err = waitRun(t, id, 15*time.Second)
	took := time.Since(started)
	app := errorAs[*temporal.ApplicationError](t, err)
	assert.Equal(t, activities.ErrUnknownPipeline, app.Type())
	assert.Contains(t, app.Error(), `pipeline "no-such-pipeline" is not in kiln.yaml`)
	assert.Less(t, took, 5*time.Second, "a permanent failure is not retried")
	assert.Equal(t, []int32{1}, activityAttempts(t, id, "Plan"), "Plan ran exactly once")
	assert.Empty(t, activityAttempts(t, id, "Build"), "nothing was built")
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, describe(t, id).GetWorkflowExecutionInfo().GetStatus())
}
