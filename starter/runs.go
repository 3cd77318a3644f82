// Package starter starts pipeline runs: from webhooks (starter/github), from
// Temporal Schedules reconciled against kiln.yaml, and on demand. Every start
// goes through Runs, so every run gets the same readable ID, search attributes
// and duplicate protection.
package starter

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/workflows"
)

// Runs starts pipeline workflows.
type Runs struct {
	Client client.Client
	// Now is the clock for on-demand run IDs; default time.Now.
	Now func() time.Time
}

// StartRun starts a run of p for a webhook event. The workflow ID carries the
// delivery ID, and a second start with the same ID is refused by Temporal, so a
// redelivered webhook reports alreadyStarted instead of starting a second run.
// It returns once the start is durable in Temporal.
func (r *Runs) StartRun(ctx context.Context, p *config.Pipeline, ev event.Event) (string, bool, error) {
	if ev.DeliveryID == "" {
		return "", false, errors.New("event has no delivery ID")
	}
	return r.start(ctx, workflows.RunID(p.Name, ev, ev.DeliveryID), workflows.PipelineInput{Pipeline: p.Name, Event: ev})
}

// ManualRun is an on-demand run request.
type ManualRun struct {
	Pipeline string
	// Ref is a branch, tag or full ref; Commit pins the exact commit when set.
	Ref, Commit string
	// Force re-bakes even when a tested AMI of this commit exists.
	Force bool
}

// StartManual starts an on-demand run of pipeline at ref, or at commit when
// given. The worker checks that the pipeline exists and allows manual runs.
func (r *Runs) StartManual(ctx context.Context, pipeline, ref, commit string) (string, error) {
	return r.Start(ctx, ManualRun{Pipeline: pipeline, Ref: ref, Commit: commit})
}

// Start starts an on-demand run.
func (r *Runs) Start(ctx context.Context, m ManualRun) (string, error) {
	pipeline, ref, commit := m.Pipeline, m.Ref, m.Commit
	ev := event.Event{Kind: event.KindManual, Commit: commit}
	ev.FromRef(ref)
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	in := workflows.PipelineInput{Pipeline: pipeline, Event: ev, Force: m.Force}
	id, _, err := r.start(ctx, workflows.RunID(pipeline, ev, workflows.ManualUnique(now())), in)
	return id, err
}

func (r *Runs) start(ctx context.Context, id string, in workflows.PipelineInput) (string, bool, error) {
	pipeline, ev := in.Pipeline, in.Event
	opts := client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		// Without this the SDK hands back the existing run as if it were new.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    workflows.StartAttributes(pipeline, ev),
		StaticSummary:                            summary(pipeline, ev),
	}
	run, err := r.Client.ExecuteWorkflow(ctx, opts, workflows.PipelineWorkflowName, in)
	var dup *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &dup) {
		return id, true, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("start %s: %w", id, err)
	}
	return run.GetID(), false, nil
}

// summary is the one line the Web UI shows for a run.
func summary(pipeline string, ev event.Event) string {
	s := fmt.Sprintf("%s: %s %s", pipeline, ev.Kind, ev.RefLabel())
	if len(ev.Commit) >= 12 {
		s += " @ " + ev.Commit[:12]
	}
	return s
}
