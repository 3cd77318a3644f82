package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/kiln-ci/kiln/workflows"
)

// RunSummary is one line of `kiln runs`.
type RunSummary struct {
	WorkflowID string    `json:"workflow_id"`
	Pipeline   string    `json:"pipeline"`
	Repo       string    `json:"repo"`
	Ref        string    `json:"ref"`
	Event      string    `json:"event"`
	Commit     string    `json:"commit,omitempty"`
	Status     string    `json:"status"`
	Stage      string    `json:"stage"`
	Started    time.Time `json:"started"`
}

// runRuns lists recent runs, newest first.
func runRuns(ctx context.Context, env *Env, args []string) error {
	var t temporalFlags
	var asJSON bool
	var limit int
	fs := newFlags(env, "runs", "[--json] [--limit N]")
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	fs.IntVar(&limit, "limit", 20, "how many runs to list")
	t.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := t.dial(env.Log)
	if err != nil {
		return err
	}
	defer c.Close()
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query:    fmt.Sprintf("WorkflowType = '%s'", workflows.PipelineWorkflowName),
		PageSize: int32(limit),
	})
	if err != nil {
		return fmt.Errorf("list runs: %w", err)
	}
	runs := make([]RunSummary, 0, len(resp.Executions))
	for _, e := range resp.Executions {
		if len(runs) == limit {
			break
		}
		sa := e.GetSearchAttributes()
		runs = append(runs, RunSummary{
			WorkflowID: e.GetExecution().GetWorkflowId(),
			Pipeline:   keyword(sa, workflows.AttrPipeline.GetName()),
			Repo:       keyword(sa, workflows.AttrRepo.GetName()),
			Ref:        keyword(sa, workflows.AttrRef.GetName()),
			Event:      keyword(sa, workflows.AttrEvent.GetName()),
			Commit:     keyword(sa, workflows.AttrCommit.GetName()),
			Stage:      keyword(sa, workflows.AttrStage.GetName()),
			Status:     strings.ToLower(strings.TrimPrefix(e.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_")),
			Started:    e.GetStartTime().AsTime(),
		})
	}
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(runs)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STARTED\tPIPELINE\tREPO\tREF\tEVENT\tSTATUS\tSTAGE\tWORKFLOW ID")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Started.Local().Format("2006-01-02 15:04:05"),
			r.Pipeline, r.Repo, r.Ref, r.Event, r.Status, r.Stage, r.WorkflowID)
	}
	return tw.Flush()
}

func keyword(sa *commonpb.SearchAttributes, name string) string {
	var s string
	if p := sa.GetIndexedFields()[name]; p != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &s)
	}
	return s
}
