package starter

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/client"

	"github.com/kiln-ci/kiln/workflows"
)

// Retry asks a run whose distribution waits for a retry to retry its failed
// targets, and returns them. The run refuses (and Retry returns its reason)
// when it is not waiting. It returns once the run has accepted the retry,
// not when the targets are done.
func (r *Runs) Retry(ctx context.Context, runID string) (workflows.RetryResult, error) {
	var res workflows.RetryResult
	h, err := r.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   runID,
		UpdateName:   workflows.UpdateRetry,
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return res, fmt.Errorf("retry %s: %w", runID, err)
	}
	if err := h.Get(ctx, &res); err != nil {
		return res, fmt.Errorf("retry %s: %w", runID, err)
	}
	return res, nil
}
