package starter

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/client"

	"github.com/kiln-ci/kiln/workflows"
)

// Approve answers the approval gate a run waits at, and returns the stage
// it lets through. The run refuses (and Approve returns its reason) when it
// waits for no approval, or d.By may not give it.
func (r *Runs) Approve(ctx context.Context, runID string, d workflows.Decision) (workflows.ApprovalResult, error) {
	return r.decide(ctx, runID, workflows.UpdateApprove, d)
}

// Reject ends a run at the approval gate it waits at, as not approved.
func (r *Runs) Reject(ctx context.Context, runID string, d workflows.Decision) (workflows.ApprovalResult, error) {
	return r.decide(ctx, runID, workflows.UpdateReject, d)
}

func (r *Runs) decide(ctx context.Context, runID, update string, d workflows.Decision) (workflows.ApprovalResult, error) {
	var res workflows.ApprovalResult
	h, err := r.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   runID,
		UpdateName:   update,
		Args:         []any{d},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return res, fmt.Errorf("%s %s: %w", update, runID, err)
	}
	if err := h.Get(ctx, &res); err != nil {
		return res, fmt.Errorf("%s %s: %w", update, runID, err)
	}
	return res, nil
}
