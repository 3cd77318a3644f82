package crash

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
)

// history returns every event of a run's history.
func (f *fixture) history(t *testing.T, id string) []*historypb.HistoryEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	iter := f.client().GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var events []*historypb.HistoryEvent
	for iter.HasNext() {
		ev, err := iter.Next()
		require.NoError(t, err)
		events = append(events, ev)
	}
	return events
}

// activityAttempts returns the attempt of each ActivityTaskStarted event of
// the named activity. Temporal writes that event once, when the activity
// closes, carrying the attempt that closed it. (A copy of test/ami's helper.)
func activityAttempts(events []*historypb.HistoryEvent, name string) []int32 {
	scheduled := map[int64]bool{}
	var attempts []int32
	for _, ev := range events {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == name {
			scheduled[ev.GetEventId()] = true
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && scheduled[a.GetScheduledEventId()] {
			attempts = append(attempts, a.GetAttempt())
		}
	}
	return attempts
}

// firstScheduled is when the first activity of the named type was scheduled;
// the zero time if none was.
func firstScheduled(events []*historypb.HistoryEvent, name string) time.Time {
	for _, ev := range events {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == name {
			return ev.GetEventTime().AsTime()
		}
	}
	return time.Time{}
}
