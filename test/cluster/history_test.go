package cluster

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/workflows"
)

// outcome is how a run ended: its result, or the workflow's error.
type outcome struct {
	res workflows.PipelineResult
	err error
}

// waitRuns waits for every run of ids to end, all at once, and returns how
// each ended. A run still going at the timeout fails the test.
func (c *cluster) waitRuns(t testing.TB, ids []string, timeout time.Duration) map[string]outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var mu sync.Mutex
	out := map[string]outcome{}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			var o outcome
			o.err = c.client.GetWorkflow(ctx, id, "").Get(ctx, &o.res)
			mu.Lock()
			out[id] = o
			mu.Unlock()
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		var going []string
		for _, id := range ids {
			if out[id].err != nil {
				going = append(going, fmt.Sprintf("%s: %v", id, out[id].err))
			}
		}
		t.Fatalf("the runs did not all end within %s; %d did not complete:\n%s", timeout, len(going), strings.Join(going, "\n"))
	}
	return out
}

// requireCompleted fails the test naming every run that did not complete.
func requireCompleted(t testing.TB, outcomes map[string]outcome) {
	t.Helper()
	var failed []string
	for _, id := range slices.Sorted(maps.Keys(outcomes)) {
		if err := outcomes[id].err; err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", id, err))
		}
	}
	require.Empty(t, failed, "%d of %d runs did not complete", len(failed), len(outcomes))
}

// history returns every event of a run's history.
func (c *cluster) history(t *testing.T, id string) []*historypb.HistoryEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events, err := testkit.History(ctx, c.client, id)
	require.NoError(t, err, "history of %s", id)
	return events
}

// attempt is one closed attempt of an activity, read from a history.
type attempt struct {
	activity string
	// number is the attempt's, from 1.
	number int32
	// identity is the worker that ran it; closedBy the worker that
	// reported it closed ("" when the server timed it out).
	identity, closedBy string
	// closed is how it ended: completed, failed, timed out or canceled.
	closed enumspb.EventType
	at     time.Time
}

// attempts reads, from a history, the attempt that closed each activity.
// Temporal writes an activity's ActivityTaskStarted only when it closes,
// for that last attempt; earlier ones show as its attempt number.
func attempts(events []*historypb.HistoryEvent) []attempt {
	types := map[int64]string{}
	started := map[int64]*historypb.ActivityTaskStartedEventAttributes{}
	var out []attempt
	for _, ev := range events {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			types[ev.GetEventId()] = a.GetActivityType().GetName()
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
			started[a.GetScheduledEventId()] = a
		}
		var scheduled int64
		var closedBy string
		switch {
		case ev.GetActivityTaskCompletedEventAttributes() != nil:
			a := ev.GetActivityTaskCompletedEventAttributes()
			scheduled, closedBy = a.GetScheduledEventId(), a.GetIdentity()
		case ev.GetActivityTaskFailedEventAttributes() != nil:
			a := ev.GetActivityTaskFailedEventAttributes()
			scheduled, closedBy = a.GetScheduledEventId(), a.GetIdentity()
		case ev.GetActivityTaskTimedOutEventAttributes() != nil:
			scheduled = ev.GetActivityTaskTimedOutEventAttributes().GetScheduledEventId()
		case ev.GetActivityTaskCanceledEventAttributes() != nil:
			a := ev.GetActivityTaskCanceledEventAttributes()
			scheduled, closedBy = a.GetScheduledEventId(), a.GetIdentity()
		default:
			continue
		}
		s := started[scheduled]
		out = append(out, attempt{activity: types[scheduled], number: s.GetAttempt(), identity: s.GetIdentity(),
			closedBy: closedBy, closed: ev.GetEventType(), at: ev.GetEventTime().AsTime()})
	}
	return out
}

// ofActivity keeps the attempts of the named activity.
func ofActivity(as []attempt, name string) []attempt {
	var out []attempt
	for _, a := range as {
		if a.activity == name {
			out = append(out, a)
		}
	}
	return out
}

// pendingOn finds the worker running an activity of run: the first pending
// activity named activity that a worker has started, and that worker.
func (c *cluster) pendingOn(t *testing.T, id, activity string) *worker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := c.client.WorkflowService().DescribeWorkflowExecution(ctx, &workflowservice.DescribeWorkflowExecutionRequest{
		Namespace: namespace, Execution: &commonpb.WorkflowExecution{WorkflowId: id},
	})
	require.NoError(t, err, "describe %s", id)
	for _, p := range d.GetPendingActivities() {
		if p.GetActivityType().GetName() == activity && p.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED {
			if w := c.workerOf(p.GetLastWorkerIdentity()); w != nil {
				return w
			}
		}
	}
	return nil
}

// spread counts, per worker, the activities of runs that each completed,
// by activity type; an identity that is none of the cluster's workers is
// counted under "unknown <identity>".
func (c *cluster) spread(t *testing.T, ids []string) map[string]map[string]int {
	t.Helper()
	out := map[string]map[string]int{}
	for _, id := range ids {
		for _, a := range attempts(c.history(t, id)) {
			if a.closed != enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED {
				continue
			}
			who := "unknown " + a.identity
			if w := c.workerOf(a.identity); w != nil {
				who = fmt.Sprintf("worker %d", w.n)
			}
			if out[who] == nil {
				out[who] = map[string]int{}
			}
			out[who][a.activity]++
		}
	}
	return out
}

// describeSpread renders spread one line per worker, sorted.
func describeSpread(spread map[string]map[string]int) string {
	var b strings.Builder
	for _, who := range slices.Sorted(maps.Keys(spread)) {
		total, parts := 0, []string{}
		for _, act := range slices.Sorted(maps.Keys(spread[who])) {
			total += spread[who][act]
			parts = append(parts, fmt.Sprintf("%s %d", act, spread[who][act]))
		}
		fmt.Fprintf(&b, "  %s: %d activities (%s)\n", who, total, strings.Join(parts, ", "))
	}
	return b.String()
}

// requireListed waits until Temporal's visibility (PostgreSQL here) lists
// exactly the runs of ids under the repository's KilnRepo search
// attribute, each completed: no run lost, none started twice. Visibility
// lags the runs, so it polls for up to 30 s.
func (c *cluster) requireListed(t *testing.T, ids []string) {
	t.Helper()
	want := slices.Sorted(slices.Values(ids))
	var got []string
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	listed := waitFor(ctx, 500*time.Millisecond, func() bool {
		got = c.listCompleted(ctx, t)
		return slices.Equal(got, want)
	})
	require.True(t, listed, "visibility lists these runs of %s as completed:\n%v\nwant:\n%v", repoName, got, want)
}

// listCompleted lists the runs of the repository by KilnRepo, sorted, as
// "<workflow ID>" when completed and "<workflow ID> (<status>)" otherwise.
func (c *cluster) listCompleted(ctx context.Context, t *testing.T) []string {
	t.Helper()
	query := fmt.Sprintf("%s = '%s'", workflows.AttrRepo.GetName(), repoName)
	var out []string
	var token []byte
	for {
		resp, err := c.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: namespace, Query: query, PageSize: 100, NextPageToken: token,
		})
		if err != nil {
			t.Logf("list workflows where %s: %v", query, err)
			return out
		}
		for _, e := range resp.GetExecutions() {
			entry := e.GetExecution().GetWorkflowId()
			if st := e.GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
				entry += " (" + st.String() + ")"
			}
			out = append(out, entry)
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	slices.Sort(out)
	return out
}
