package integration

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/workflows"
)

// TestCancelKillsBuildProcessGroup cancels a run, as `temporal workflow
// cancel` or the Web UI would, while its build waits on a grandchild process
// (`bash -c 'sleep 300 & ...'`). The cancellation must reach the worker and
// kill the build's whole process group, not only the shell, before the run
// closes as cancelled.
func TestCancelKillsBuildProcessGroup(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := it.runs.StartManual(ctx, "cancel", "main", "")
	require.NoError(t, err)
	pid := waitPID(t, id, runTimeout)
	killOnCleanup(t, pid)
	require.True(t, testkit.ProcessAlive(pid), "the grandchild sleep runs")

	cancelled := time.Now()
	require.NoError(t, it.temporal.CancelWorkflow(ctx, id, ""))
	_, err = waitRun(t, id, runTimeout)
	took := time.Since(cancelled)
	t.Logf("the run closed %s after the cancel request", took.Round(100*time.Millisecond))
	errorAs[*temporal.CanceledError](t, err)
	assert.Less(t, took, 15*time.Second, "the cancellation took too long to reach the build")
	waitFor(t, 3*time.Second, "the grandchild sleep to be killed", func() bool { return !testkit.ProcessAlive(pid) })

	d := describe(t, id)
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, d.GetWorkflowExecutionInfo().GetStatus())
	assert.Equal(t, "cancelled", searchAttrsOf(d)["KilnStage"])
	p := queryProgress(t, id)
	require.Len(t, p.Stages, 1)
	assert.Equal(t, workflows.StateCancelled, p.Stages[0].State)
	assert.Empty(t, p.SupersededBy)
}
