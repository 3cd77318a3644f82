package testkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
)

// BuildKiln builds cmd/kiln into dir and returns the binary's path, for tests
// that drive kiln as processes.
func BuildKiln(dir string) (string, error) {
	bin := filepath.Join(dir, "kiln")
	build := exec.Command("go", "build", "-o", bin, "github.com/kiln-ci/kiln/cmd/kiln")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("building kiln: %w", err)
	}
	return bin, nil
}

// History returns every event of a run's history.
func History(ctx context.Context, c client.Client, id string) ([]*historypb.HistoryEvent, error) {
	iter := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var events []*historypb.HistoryEvent
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			return nil, err
		}
		events = append(events, ev)
	}
	return events, nil
}

// ActivityAttempts returns the attempt of each ActivityTaskStarted event of
// the named activity. Temporal writes that event once, when the activity
// closes, carrying the attempt that closed it.
func ActivityAttempts(events []*historypb.HistoryEvent, name string) []int32 {
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
