package starter

import (
	"context"
	"fmt"
	"strings"

	"go.temporal.io/api/workflowservice/v1"
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

// ApprovePullRequest approves, for by, every run of the pull request that
// waits for approval, and returns their IDs: a trusted person's
// "/kiln approve" comment. Runs of it that wait for nothing are left alone.
func (r *Runs) ApprovePullRequest(ctx context.Context, repo string, number int, by string) ([]string, error) {
	query := fmt.Sprintf("%s = %s AND %s = 'pr-%d' AND ExecutionStatus = 'Running'",
		workflows.AttrRepo.GetName(), quoteQuery(repo), workflows.AttrRef.GetName(), number)
	resp, err := r.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, PageSize: 100})
	if err != nil {
		return nil, fmt.Errorf("find the runs of pull request #%d: %w", number, err)
	}
	var approved []string
	for _, e := range resp.GetExecutions() {
		id := e.GetExecution().GetWorkflowId()
		_, err := r.Approve(ctx, id, workflows.Decision{By: by, Via: workflows.ViaComment})
		switch {
		case err == nil:
			approved = append(approved, id)
		case strings.Contains(err.Error(), "is not waiting for approval"):
			// a run of the pull request that needs no approval
		default:
			return approved, err
		}
	}
	return approved, nil
}

// quoteQuery quotes s as a string in a visibility query.
func quoteQuery(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
