package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
)

// SupersedeQuery describes the run looking for older runs of its ref.
type SupersedeQuery struct {
	// PipelineAttr and RefAttr are the search attribute names to match on.
	PipelineAttr string    `json:"pipeline_attr"`
	RefAttr      string    `json:"ref_attr"`
	Pipeline     string    `json:"pipeline"`
	Ref          string    `json:"ref"`
	StartedAt    time.Time `json:"started_at"`
	WorkflowID   string    `json:"workflow_id"`
}

// FindSuperseded lists the running runs of the same pipeline and ref that
// started before the asking run. The ref is compared here, not in the
// visibility query, because ref names come from webhooks and are never pasted
// into a query string; pipeline names are validated identifiers.
func (a *Activities) FindSuperseded(ctx context.Context, q SupersedeQuery) ([]string, error) {
	query := fmt.Sprintf("%s = '%s' AND ExecutionStatus = 'Running'", q.PipelineAttr, q.Pipeline)
	var older []string
	var token []byte
	for {
		resp, err := a.Runs.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token})
		if err != nil {
			return nil, fmt.Errorf("list runs of %s: %w", q.Pipeline, err)
		}
		for _, e := range resp.Executions {
			id := e.GetExecution().GetWorkflowId()
			if id == q.WorkflowID || !e.GetStartTime().AsTime().Before(q.StartedAt) {
				continue
			}
			var ref string
			if p := e.GetSearchAttributes().GetIndexedFields()[q.RefAttr]; p != nil {
				if err := converter.GetDefaultDataConverter().FromPayload(p, &ref); err != nil {
					continue
				}
			}
			if ref == q.Ref {
				older = append(older, id)
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return older, nil
		}
	}
}
