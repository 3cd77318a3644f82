package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/kiln-ci/kiln/test/testkit"
)

// downFor is how long the Temporal server stays dead: builds go on, and
// their heartbeats and the workers' polls fail, meanwhile.
const downFor = 3 * time.Second

// TestClusterServerRestart SIGKILLs the Temporal server while three builds
// run, keeps it down a few seconds, and starts it again on the same
// database and ports. Every run completes: each build's completion, which
// the worker could not report while the server was dead, reaches the new
// server, and kiln serve and the workers go on without a restart of their
// own, starting and running new runs too.
func TestClusterServerRestart(t *testing.T) {
	c := newCluster(t, 3)
	began := time.Now()
	logf := func(format string, args ...any) {
		t.Logf("%5.1fs  "+format, append([]any{time.Since(began).Seconds()}, args...)...)
	}
	ids := []string{c.push(t, pipeSlow, c.base), c.push(t, pipeSlow, c.base), c.push(t, pipeSlow, c.base)}
	logf("started %d slow builds: %v", len(ids), ids)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	allBuilding := waitFor(ctx, 100*time.Millisecond, func() bool {
		for _, id := range ids {
			if c.builds(id) == 0 {
				return false
			}
		}
		return true
	})
	require.True(t, allBuilding, "the three builds did not all start within 2 minutes")
	for _, id := range ids {
		d, err := c.client.DescribeWorkflowExecution(ctx, id, "")
		require.NoError(t, err)
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, d.GetWorkflowExecutionInfo().GetStatus(),
			"run %s must be in flight when the server dies", id)
	}

	old := c.temporal.proc.pid()
	require.NoError(t, c.temporal.kill())
	require.False(t, testkit.ProcessAlive(old), "the Temporal server (pid %d) survived SIGKILL", old)
	logf("every build runs; SIGKILLed the Temporal server (pid %d)", old)
	time.Sleep(downFor)
	require.NoError(t, c.temporal.start())
	restarted := time.Now()
	logf("restarted the Temporal server on the same database and ports (pid %d)", c.temporal.proc.pid())

	outcomes := c.waitRuns(t, ids, 3*time.Minute)
	requireCompleted(t, outcomes)
	logf("the %d runs completed", len(ids))
	for _, id := range ids {
		builds := ofActivity(attempts(c.history(t, id)), "Build")
		require.Len(t, builds, 1, "run %s: Build activities", id)
		b := builds[0]
		assert.Equal(t, enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, b.closed, "run %s: how its build ended", id)
		assert.True(t, b.at.After(restarted), "run %s: its build completed at %s, before the restart at %s: it was not in flight across it",
			id, b.at.Format(time.TimeOnly), restarted.Format(time.TimeOnly))
		assert.NotNil(t, outcomes[id].res.Build, "run %s has no build result", id)
		// The SDK cancels an activity whose heartbeat fails for longer than
		// the worker's heartbeat throttle: an outage shorter than that must
		// not start the build again.
		assert.EqualValues(t, 1, b.number, "run %s: the outage cancelled its build", id)
		assert.Equal(t, 1, c.builds(id), "run %s: builds started", id)
		logf("run %s: build attempt %d completed on %s; %d attempt(s) started", id, b.number, c.describeWorker(b.identity), c.builds(id))
	}

	more := []string{c.push(t, pipeQuick, c.base), c.push(t, pipeQuick, c.base)}
	requireCompleted(t, c.waitRuns(t, more, 2*time.Minute))
	logf("and %d new runs started by webhooks after the restart completed", len(more))
	c.requireListed(t, append(ids, more...))
}
