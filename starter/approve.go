package starter

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

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
		WorkflowID: runID,
		UpdateName: update,
		Args:       []any{d},
		// Accepted is enough: the validator has run, and the handler only
		// records the decision.
		WaitForStage: client.WorkflowUpdateStageAccepted,
	})
	if err != nil {
		return res, fmt.Errorf("%s %s: %w", update, runID, err)
	}
	if err := h.Get(ctx, &res); err != nil {
		return res, fmt.Errorf("%s %s: %w", update, runID, err)
	}
	return res, nil
}

// ApprovePullRequest approves, for by, the runs of pull request number
// that wait because their change is untrusted and whose commit starts with
// commit: the one the person reviewed. A run of a later push, even one
// started before the comment, is not approved by it. It returns the IDs
// approved; refusals by a run (it waits for nothing, or for a gate a
// comment cannot answer) are skipped.
func (r *Runs) ApprovePullRequest(ctx context.Context, repo string, number int, commit, by string) ([]string, error) {
	query := fmt.Sprintf("%s = %s AND %s = 'pr-%d' AND %s = 'review' AND ExecutionStatus = 'Running'",
		workflows.AttrRepo.GetName(), quoteQuery(repo), workflows.AttrRef.GetName(), number, workflows.AttrEvent.GetName())
	resp, err := r.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, PageSize: 100})
	if err != nil {
		return nil, fmt.Errorf("find the runs of pull request #%d: %w", number, err)
	}
	var approved []string
	var errs []error
	for _, e := range resp.GetExecutions() {
		id := e.GetExecution().GetWorkflowId()
		var sha string
		if p := e.GetSearchAttributes().GetIndexedFields()[workflows.AttrCommit.GetName()]; p != nil {
			_ = converter.GetDefaultDataConverter().FromPayload(p, &sha)
		}
		if !strings.HasPrefix(sha, strings.ToLower(commit)) {
			continue
		}
		_, err := r.Approve(ctx, id, workflows.Decision{By: by, Via: workflows.ViaComment})
		var refused *temporal.ApplicationError
		switch {
		case err == nil:
			approved = append(approved, id)
		case errors.As(err, &refused):
			// The run's validator refused: it waits for nothing, or not for
			// an approval a comment may give.
		default:
			errs = append(errs, err)
		}
	}
	return approved, errors.Join(errs...)
}

// quoteQuery quotes s as a string in a visibility query.
func quoteQuery(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
