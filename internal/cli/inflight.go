package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/kiln-ci/kiln/workflows"
)

// runningRuns lists up to limit runs still going, newest first.
func runningRuns(ctx context.Context, c client.Client, limit int) ([]string, error) {
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query:    fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running'", workflows.PipelineWorkflowName),
		PageSize: int32(limit),
	})
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(resp.GetExecutions()))
	for _, e := range resp.GetExecutions() {
		ids = append(ids, e.GetExecution().GetWorkflowId())
	}
	return ids, nil
}

// logResuming says, as a worker starts, which runs were in flight when
// kiln last stopped: they go on now, from where their history says.
func logResuming(ctx context.Context, c client.Client, log zerolog.Logger) {
	ids, err := runningRuns(ctx, c, 20)
	if err != nil || len(ids) == 0 {
		return
	}
	log.Info().Int("runs", len(ids)).Strs("workflow_ids", ids).Msg("resuming the runs in flight, each from its last finished step")
}

// sayStopping is the one line Ctrl-C prints: how many runs are in flight,
// and that they are not lost. It silences the SDK's shutdown noise.
func sayStopping(c client.Client, w io.Writer, what, dataDir string) {
	sdkQuiet.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ids, err := runningRuns(ctx, c, 1000)
	switch {
	case err != nil:
		fmt.Fprintf(w, "kiln %s: stopping; runs in flight resume when a worker starts again\n", what)
	case len(ids) == 0:
		fmt.Fprintf(w, "kiln %s: stopping; no runs in flight\n", what)
	default:
		where := "on the other workers, or when one starts again"
		if dataDir != "" {
			where = "when kiln dev starts again on " + dataDir
		}
		fmt.Fprintf(w, "kiln %s: stopping; %d run(s) in flight resume %s\n", what, len(ids), where)
	}
}
