package crash

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"

	"github.com/kiln-ci/kiln/test/testkit"
)

// history returns every event of a run's history.
func (f *fixture) history(t *testing.T, id string) []*historypb.HistoryEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events, err := testkit.History(ctx, f.client(), id)
	require.NoError(t, err)
	return events
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
