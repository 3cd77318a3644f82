package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/workflows"
)

// waitRun waits for a run to close and returns its result and error. A run
// still open at the deadline fails the test with what Temporal knows about it.
func waitRun(t *testing.T, id string, timeout time.Duration) (workflows.PipelineResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var res workflows.PipelineResult
	err := it.temporal.GetWorkflow(ctx, id, "").Get(ctx, &res)
	if ctx.Err() != nil {
		t.Fatalf("run %s did not finish within %s\n%s", id, timeout, diagnose(id))
	}
	return res, err
}

// mustSucceed waits for a run that must succeed.
func mustSucceed(t *testing.T, id string) workflows.PipelineResult {
	t.Helper()
	res, err := waitRun(t, id, runTimeout)
	if err != nil {
		t.Fatalf("run %s failed: %v\n%s", id, err, diagnose(id))
	}
	return res
}

// diagnose describes an unexpected run for a failure message: its status,
// pending activities with their last failure, and the end of its build log.
func diagnose(id string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var b strings.Builder
	d, err := it.temporal.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return "describe: " + err.Error()
	}
	fmt.Fprintf(&b, "status %s, search attributes %v\n", d.GetWorkflowExecutionInfo().GetStatus(), searchAttrsOf(d))
	for _, pa := range d.GetPendingActivities() {
		fmt.Fprintf(&b, "pending %s attempt %d state %s last failure: %v\n", pa.GetActivityType().GetName(),
			pa.GetAttempt(), pa.GetState(), pa.GetLastFailure().GetMessage())
	}
	for attempt := 1; attempt <= 3; attempt++ {
		if data, err := os.ReadFile(logPath(id, attempt)); err == nil {
			fmt.Fprintf(&b, "--- build log, attempt %d:\n%s", attempt, tail(string(data), 30))
		}
	}
	return b.String()
}

// describe returns Temporal's description of a run.
func describe(t *testing.T, id string) *workflowservice.DescribeWorkflowExecutionResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := it.temporal.DescribeWorkflowExecution(ctx, id, "")
	require.NoError(t, err)
	return d
}

// searchAttrsOf decodes a run's keyword search attributes.
func searchAttrsOf(d *workflowservice.DescribeWorkflowExecutionResponse) map[string]string {
	out := map[string]string{}
	for k, p := range d.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields() {
		var s string
		if json.Unmarshal(p.GetData(), &s) == nil {
			out[k] = s
		}
	}
	return out
}

// queryProgress asks a run, open or closed, for its progress.
func queryProgress(t *testing.T, id string) workflows.Progress {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	v, err := it.temporal.QueryWorkflow(ctx, id, "", workflows.QueryProgress)
	require.NoError(t, err)
	var p workflows.Progress
	require.NoError(t, v.Get(&p))
	return p
}

// errorAs unwraps err to a *T, failing the test if there is none.
func errorAs[T error](t *testing.T, err error) T {
	t.Helper()
	var target T
	require.True(t, errors.As(err, &target), "want %T in error chain, got %T: %v", target, err, err)
	return target
}

// activityAttempts returns, for each execution of the named activity in a
// closed run's history, the attempt it ended on. Temporal records only the
// last attempt of a retried activity, so [1] means it ran once.
func activityAttempts(t *testing.T, id, activity string) []int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events, err := testkit.History(ctx, it.temporal, id)
	require.NoError(t, err)
	return testkit.ActivityAttempts(events, activity)
}

// listRuns returns the runs a visibility query finds.
func listRuns(t *testing.T, query string) []*workflowpb.WorkflowExecutionInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := it.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
	require.NoError(t, err)
	return resp.GetExecutions()
}
