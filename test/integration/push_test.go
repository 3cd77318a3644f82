package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"

	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/workflows"
)

// TestPushWebhookRunsPipeline follows one signed push from the webhook to a
// finished build: the readable workflow ID, the search attributes the Web UI
// and `kiln runs` filter on, the progress query, the log and the artifacts.
func TestPushWebhookRunsPipeline(t *testing.T) {
	t.Parallel()
	dir := repoDir("push")
	before := git(t, dir, "rev-parse", "main")
	after := commitOn(t, dir, "main", "widget.go", "package widget\n")
	delivery := testkit.NewDeliveryID()

	id := startedID(t, "push", delivery, pushPayload("push", "main", before, after))
	require.Equal(t, "push/main/"+delivery, id, "workflow ID is <pipeline>/<ref>/<delivery>")
	res := mustSucceed(t, id)

	d := describe(t, id)
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, d.GetWorkflowExecutionInfo().GetStatus())
	assert.Equal(t, map[string]string{
		"KilnPipeline": "push",
		"KilnRepo":     "kiln-it/push",
		"KilnRef":      "main",
		"KilnEvent":    "branch",
		"KilnCommit":   after,
		"KilnStage":    "done",
	}, pick(searchAttrsOf(d), "KilnPipeline", "KilnRepo", "KilnRef", "KilnEvent", "KilnCommit", "KilnStage"))

	p := queryProgress(t, id)
	assert.Equal(t, "done", p.Stage, "the progress query agrees with KilnStage")
	assert.Equal(t, after, p.Commit)
	require.Len(t, p.Stages, 1)
	build := p.Stages[0]
	assert.Equal(t, workflows.StateSucceeded, build.State)
	assert.False(t, build.Start.IsZero(), "build start recorded")
	assert.False(t, build.End.Before(build.Start), "build ends after it starts: %+v", build)
	assert.Empty(t, build.Error)

	require.NotNil(t, res.Build)
	assert.Equal(t, logPath(id, 1), res.Build.LogPath)
	log, err := os.ReadFile(res.Build.LogPath)
	require.NoError(t, err)
	assert.Contains(t, string(log), fmt.Sprintf("[kiln] checking out %s at %s", dir, after))
	assert.Contains(t, string(log), fmt.Sprintf("building kiln-it/push at %s for branch", after))

	assert.Equal(t, []string{"dist/report.txt"}, res.Build.Artifacts)
	report, err := os.ReadFile(filepath.Join(res.Build.ArtifactsDir, "dist", "report.txt"))
	require.NoError(t, err)
	assert.Equal(t, "main "+after+"\n", string(report))
}

// TestRedeliveryStartsNoSecondRun redelivers one delivery while its run is
// open and again after it closed: both answers say duplicate and name the
// same run, and Temporal holds exactly one execution for the ID.
func TestRedeliveryStartsNoSecondRun(t *testing.T) {
	t.Parallel()
	dir := repoDir("redeliver")
	before := git(t, dir, "rev-parse", "main")
	after := commitOn(t, dir, "main", "redelivery.txt", "again\n")
	delivery := testkit.NewDeliveryID()
	payload := pushPayload("redeliver", "main", before, after)

	id := startedID(t, "push", delivery, payload)
	assertDuplicate(t, delivery, payload, id)
	mustSucceed(t, id)
	assertDuplicate(t, delivery, payload, id)

	// Visibility lags behind the run; once the closed run shows, a second
	// execution would show beside it.
	query := fmt.Sprintf("WorkflowId = '%s'", id)
	var runs []*workflowpb.WorkflowExecutionInfo
	waitFor(t, 10*time.Second, "the closed run in visibility", func() bool {
		runs = listRuns(t, query)
		return len(runs) > 0 && runs[0].GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	})
	assert.Len(t, runs, 1, "executions with ID %s", id)
	assert.Equal(t, []int32{1}, activityAttempts(t, id, "Build"), "the one run built once")
}

// assertDuplicate redelivers payload under delivery and expects the handler to
// report the existing run rather than start one.
func assertDuplicate(t *testing.T, delivery string, payload any, id string) {
	t.Helper()
	status, resp := deliver(t, "push", delivery, payload)
	require.Equal(t, 200, status, "response: %+v", resp)
	require.Len(t, resp.Started, 1, "response: %+v", resp)
	assert.True(t, resp.Started[0].Duplicate, "redelivery is reported as a duplicate: %+v", resp)
	assert.Equal(t, id, resp.Started[0].WorkflowID)
}

// pick returns the entries of m with the given keys, so an assertion lists
// exactly what it checks and ignores Temporal's own attributes.
func pick(m map[string]string, keys ...string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	return out
}
