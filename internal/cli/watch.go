package cli

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/kiln-ci/kiln/workflows"
)

// runWatch follows a run, as `kiln run --wait` does: to its end if it is
// running, or at once, with its outcome, if it has ended.
func runWatch(ctx context.Context, env *Env, args []string) error {
	var t temporalFlags
	var asJSON bool
	fs := newFlags(env, "watch", "RUN_ID [--json]")
	fs.BoolVar(&asJSON, "json", false, "print how the run ended and what it made as JSON on stdout")
	t.register(fs)
	arg, err := parseOneID(fs, args)
	if err != nil {
		return err
	}
	c, id, err := openRun(ctx, env, &t, arg)
	if err != nil {
		return err
	}
	defer c.Close()
	return follow(ctx, c, id, env, asJSON)
}

// openRun connects to Temporal and finds the run arg names, as each
// command on one run does first. The caller closes the client.
func openRun(ctx context.Context, env *Env, t *temporalFlags, arg string) (client.Client, string, error) {
	c, err := t.dial(env.Log)
	if err != nil {
		return nil, "", err
	}
	id, err := resolveRun(ctx, c, arg)
	if err != nil {
		c.Close()
		return nil, "", err
	}
	return c, id, nil
}

// temporalRunID is the form of Temporal's own Run ID, which the Web UI
// shows beside the workflow ID.
var temporalRunID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// resolveRun takes what a person calls a run, kiln's workflow ID (as kiln
// runs lists it) or Temporal's Run ID (as the Web UI shows it), and
// returns the workflow ID.
func resolveRun(ctx context.Context, c client.Client, arg string) (string, error) {
	_, err := c.DescribeWorkflowExecution(ctx, arg, "")
	if err == nil {
		return arg, nil
	}
	if !isNotFound(err) {
		return "", fmt.Errorf("look up run %s: %w", arg, err)
	}
	if temporalRunID.MatchString(arg) {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query:    fmt.Sprintf("WorkflowType = '%s' AND RunId = '%s'", workflows.PipelineWorkflowName, arg),
			PageSize: 1,
		})
		if err != nil {
			return "", fmt.Errorf("look up Run ID %s: %w", arg, err)
		}
		if es := resp.GetExecutions(); len(es) > 0 {
			return es[0].GetExecution().GetWorkflowId(), nil
		}
	}
	return "", fmt.Errorf("no run %q: name it by its workflow ID (kiln runs lists them) or the Run ID the Web UI shows", arg)
}

// explainEnded words an update refused because the run has ended: Temporal
// says only "workflow execution already completed".
func explainEnded(ctx context.Context, c client.Client, id, command string, err error) error {
	if !isNotFound(err) {
		return err
	}
	d, derr := c.DescribeWorkflowExecution(ctx, id, "")
	if derr != nil {
		return fmt.Errorf("no run %q: name it by its workflow ID (kiln runs lists them) or the Run ID the Web UI shows", id)
	}
	info := d.GetWorkflowExecutionInfo()
	status := strings.ToLower(strings.TrimPrefix(info.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_"))
	stage := keyword(info.GetSearchAttributes(), workflows.AttrStage.GetName())
	pipeline := keyword(info.GetSearchAttributes(), workflows.AttrPipeline.GetName())
	ref := keyword(info.GetSearchAttributes(), workflows.AttrRef.GetName())
	return fmt.Errorf("run %s has ended (%s at %s), and kiln %s only answers a run that waits for it; start a new run with: kiln run --pipeline %s --ref %s",
		id, status, stage, command, pipeline, ref)
}
