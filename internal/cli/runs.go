package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
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
	// Ended is zero, and Duration so far, while the run goes on.
	Ended    time.Time     `json:"ended,omitzero"`
	Duration time.Duration `json:"duration_ns"`
	// Reason is why a failed run failed: the first line of its cause.
	Reason string `json:"reason,omitempty"`
	// RunID is Temporal's Run ID, which the Web UI shows.
	RunID string `json:"run_id"`
	// Approvals says how the run's approval gates were decided, and by whom.
	Approvals string `json:"approvals,omitempty"`
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
		r := RunSummary{
			WorkflowID: e.GetExecution().GetWorkflowId(),
			Pipeline:   keyword(sa, workflows.AttrPipeline.GetName()),
			Repo:       keyword(sa, workflows.AttrRepo.GetName()),
			Ref:        keyword(sa, workflows.AttrRef.GetName()),
			Event:      keyword(sa, workflows.AttrEvent.GetName()),
			Commit:     keyword(sa, workflows.AttrCommit.GetName()),
			Stage:      keyword(sa, workflows.AttrStage.GetName()),
			Status:     strings.ToLower(strings.TrimPrefix(e.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_")),
			Started:    e.GetStartTime().AsTime(),
			RunID:      e.GetExecution().GetRunId(),
		}
		if p := e.GetMemo().GetFields()[workflows.MemoApprovals]; p != nil {
			_ = converter.GetDefaultDataConverter().FromPayload(p, &r.Approvals)
		}
		if e.GetCloseTime() != nil {
			r.Ended = e.GetCloseTime().AsTime()
			r.Duration = r.Ended.Sub(r.Started)
		} else {
			r.Duration = time.Since(r.Started)
		}
		if r.Status == "failed" {
			r.Reason = failureReason(ctx, c, r.WorkflowID, r.RunID)
		}
		runs = append(runs, r)
	}
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(runs)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STARTED\tENDED\tTOOK\tPIPELINE\tREF\tEVENT\tSTATUS\tSTAGE\tWORKFLOW ID\tREASON\tAPPROVALS")
	for _, r := range runs {
		took, ended := r.Duration.Round(100*time.Millisecond).String(), "-"
		switch {
		case r.Ended.IsZero():
			took += " so far"
		case r.Ended.Local().YearDay() == r.Started.Local().YearDay():
			ended = r.Ended.Local().Format("15:04:05")
		default:
			ended = r.Ended.Local().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Started.Local().Format("2006-01-02 15:04:05 MST"), ended, took,
			r.Pipeline, r.Ref, r.Event, r.Status, r.Stage, r.WorkflowID, shorten(r.Reason, 80), r.Approvals)
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

// failureReason is the first line of a failed run's innermost cause, read
// from its closing event; "" when that cannot be read.
func failureReason(ctx context.Context, c client.Client, id, runID string) string {
	it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return ""
		}
		f := ev.GetWorkflowExecutionFailedEventAttributes().GetFailure()
		for f.GetCause() != nil {
			f = f.GetCause()
		}
		if msg := f.GetMessage(); msg != "" {
			line, _, _ := strings.Cut(msg, "\n")
			return strings.TrimSuffix(line, "; last lines of log:")
		}
	}
	return ""
}

// shorten cuts s to at most n runes, marking the cut.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
