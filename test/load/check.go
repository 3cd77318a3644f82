package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/workflows"
)

// runCheck is what Temporal holds for the deliveries of one load.
type runCheck struct {
	// deliveries is the number of distinct delivery IDs sent.
	deliveries int
	// accepted delivered IDs kiln answered 2xx at least once; lost are
	// those of them with no run.
	accepted, lost int
	// failedButStarted are IDs kiln never answered 2xx that did start.
	failedButStarted int
	// counted is the number of runs of the pipeline Temporal lists.
	counted int64
}

// checkRuns looks up the run each delivery should have started, by the ID
// kiln gives it, and counts the pipeline's runs: one per accepted delivery,
// none lost, none twice.
func checkRuns(ctx context.Context, t target, r *results) (*runCheck, error) {
	c, err := client.Dial(client.Options{HostPort: t.temporal,
		Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		return nil, fmt.Errorf("temporal at %s: %w", t.temporal, err)
	}
	defer c.Close()
	accepted := map[string]bool{}
	for _, a := range r.answers {
		accepted[a.delivery] = accepted[a.delivery] || (a.status >= 200 && a.status < 300)
	}
	ev := event.Event{Kind: event.KindBranch}
	ev.FromRef("refs/heads/main")
	ids := make(chan string)
	var mu sync.Mutex
	out := &runCheck{deliveries: len(accepted)}
	var firstErr error
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				_, err := c.DescribeWorkflowExecution(ctx, workflows.RunID(t.pipeline, ev, id), "")
				var nf *serviceerror.NotFound
				exists := err == nil
				mu.Lock()
				switch {
				case err != nil && !errors.As(err, &nf):
					if firstErr == nil {
						firstErr = err
					}
				case accepted[id] && !exists:
					out.lost++
				case !accepted[id] && exists:
					out.failedButStarted++
				}
				mu.Unlock()
			}
		}()
	}
	for id, ok := range accepted {
		if ok {
			out.accepted++
		}
		ids <- id
	}
	close(ids)
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("describe a run: %w", firstErr)
	}
	// Visibility lags the runs a little; wait for it to settle.
	query := fmt.Sprintf("%s = %q", workflows.AttrPipeline.GetName(), t.pipeline)
	want := int64(out.accepted + out.failedButStarted)
	for tries := 0; tries < 50; tries++ {
		count, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: query})
		if err != nil {
			return nil, fmt.Errorf("count runs: %w", err)
		}
		out.counted = count.GetCount()
		if out.counted == want {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return out, nil
}

// ok says whether every accepted delivery started exactly one run.
func (c *runCheck) ok() bool {
	return c.lost == 0 && c.counted == int64(c.accepted+c.failedButStarted)
}

func (c *runCheck) print(w io.Writer) {
	fmt.Fprintf(w, "runs: %d distinct deliveries, %d accepted, %d of them without a run; %d refused or unanswered that started anyway; Temporal lists %d runs\n",
		c.deliveries, c.accepted, c.lost, c.failedButStarted, c.counted)
}
