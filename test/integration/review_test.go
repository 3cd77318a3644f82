package integration

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/workflows"
)

// TestNewerReviewRunSupersedesOlder pushes to a pull request while its first
// review build still runs. The newer run must cancel the older one through a
// visibility query, a signal and a cancellation that the build's heartbeat
// carries to the worker, which kills the build's processes. The old run must
// say who replaced it, and the new one must finish.
func TestNewerReviewRunSupersedesOlder(t *testing.T) {
	t.Parallel()
	dir := repoDir("review")
	base := git(t, dir, "rev-parse", "main")
	// Without the release file the review build sleeps for two minutes. The
	// branch is new on every run of the test, so it starts without one.
	branch := "feature-" + testkit.NewDeliveryID()[:8]
	first := commitOn(t, dir, branch, "feature.go", "package feature\n")
	id1 := startedID(t, "pull_request", testkit.NewDeliveryID(), prPayload("review", "opened", 7, "Add feature", branch, first, base))
	require.Regexp(t, `^review/pr-7/`, id1)
	pid := waitPID(t, id1, runTimeout)
	killOnCleanup(t, pid)
	require.True(t, testkit.ProcessAlive(pid), "the first build's sleep runs")

	second := commitOn(t, dir, branch, "release", "ship it\n")
	sync := prPayload("review", "synchronize", 7, "Add feature", branch, second, base)
	sync["before"] = first
	pushed := time.Now()
	id2 := startedID(t, "pull_request", testkit.NewDeliveryID(), sync)
	require.NotEqual(t, id1, id2)

	_, err := waitRun(t, id1, runTimeout)
	took := time.Since(pushed)
	t.Logf("the superseded run closed %s after the second delivery", took.Round(100*time.Millisecond))
	// Builds heartbeat every second and each heartbeat can bring the
	// cancellation back; much longer means heartbeats are held back and
	// builds run on.
	assert.Less(t, took, 15*time.Second, "cancelling a superseded build took too long")
	canceled := errorAs[*temporal.CanceledError](t, err)
	var reason string
	require.True(t, canceled.HasDetails(), "a superseded run says why it was cancelled")
	require.NoError(t, canceled.Details(&reason))
	assert.Equal(t, "superseded by "+id2, reason)

	d := describe(t, id1)
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, d.GetWorkflowExecutionInfo().GetStatus())
	assert.Equal(t, "cancelled", searchAttrsOf(d)["KilnStage"])
	p := queryProgress(t, id1)
	assert.Equal(t, id2, p.SupersededBy)
	require.Len(t, p.Stages, 1)
	assert.Equal(t, workflows.StateCancelled, p.Stages[0].State)
	// The run waits for the build's clean-up before it closes, so its
	// processes are gone by now; a moment is allowed for the kernel.
	waitFor(t, 3*time.Second, "the superseded build's sleep to be killed", func() bool { return !testkit.ProcessAlive(pid) })

	res := mustSucceed(t, id2)
	assert.Equal(t, second, res.Commit)
	assert.Equal(t, "done", searchAttrsOf(describe(t, id2))["KilnStage"])
}
