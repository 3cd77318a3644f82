// Package starter starts pipeline runs: from webhooks (starter/github), from
// Temporal Schedules reconciled against kiln.yaml, and on demand. Every start
// goes through Runs, so every run gets the same readable ID, search attributes
// and duplicate protection.
package starter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/workflows"
	"github.com/rs/zerolog"
)

// Runs starts pipeline workflows.
type Runs struct {
	Client client.Client
	// Now is the clock for on-demand run IDs; default time.Now.
	Now func() time.Time
	// MaxStarting bounds webhook starts in flight to Temporal; default
	// DefaultMaxStarting.
	MaxStarting int
	// Log gets the warnings of an overload.
	Log zerolog.Logger

	once sync.Once
	gate *admission
}

// checkReserve is the part of a webhook's answer budget kept for asking
// Temporal whether a start that did not answer in time happened anyway.
const checkReserve = 1500 * time.Millisecond

// StartRun starts a run of p for a webhook event. The workflow ID carries the
// delivery ID, and a second start with the same ID is refused by Temporal, so a
// redelivered webhook reports alreadyStarted instead of starting a second run.
// It returns once the start is durable in Temporal.
//
// ctx's deadline is the budget for the whole answer. The start waits for a
// slot for up to half of it, then runs until checkReserve is left; if it is
// still unanswered then, StartRun asks Temporal whether the run exists. A
// start kiln refused or could not confirm is an *Overloaded error.
func (r *Runs) StartRun(ctx context.Context, p *config.Pipeline, ev event.Event) (string, bool, error) {
	if ev.DeliveryID == "" {
		return "", false, errors.New("event has no delivery ID")
	}
	id := workflows.RunID(p.Name, ev, ev.DeliveryID)
	in := workflows.PipelineInput{Pipeline: p.Name, Event: ev}
	deadline, ok := ctx.Deadline()
	if !ok {
		return r.start(ctx, id, in)
	}
	r.once.Do(func() { r.gate = newAdmission(r.MaxStarting, r.Log) })
	release, err := r.gate.acquire(ctx, time.Until(deadline)/2)
	if err != nil {
		return id, false, fmt.Errorf("start %s: %w", id, err)
	}
	defer release()
	return r.startBy(ctx, deadline.Add(-checkReserve), id, in)
}

// startBy starts the run, giving up at cutoff to check by its ID whether
// the start happened. The SDK gives a start's RPC only half of what is left
// of its context's deadline (the rest is for its own retries), so the start
// runs under a context with no deadline that kiln cancels at cutoff.
func (r *Runs) startBy(ctx context.Context, cutoff time.Time, id string, in workflows.PipelineInput) (string, bool, error) {
	startCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer context.AfterFunc(ctx, cancel)()
	defer time.AfterFunc(time.Until(cutoff), cancel).Stop()
	got, dup, err := r.start(startCtx, id, in)
	switch {
	case err == nil:
		return got, dup, nil
	case ctx.Err() != nil:
		return id, false, err
	case startCtx.Err() == nil:
		if reason, ok := overloadReason(err); ok {
			r.gate.refusedLate()
			return id, false, fmt.Errorf("start %s: %w", id, &Overloaded{RetryAfter: retryAfter, Reason: reason})
		}
		return id, false, err
	}
	// kiln's cutoff ended the start: it may have happened all the same.
	_, err = r.Client.DescribeWorkflowExecution(ctx, id, "")
	if err == nil {
		return id, false, nil
	}
	r.gate.refusedLate()
	reason := "Temporal did not answer the start in time, and has no such run"
	if !errors.As(err, new(*serviceerror.NotFound)) {
		reason = "Temporal did not answer the start in time, nor whether the run exists: " + err.Error()
	}
	return id, false, fmt.Errorf("start %s: %w", id, &Overloaded{RetryAfter: retryAfter, Reason: reason})
}

// overloadReason says why, when Temporal refused a call for lack of capacity.
func overloadReason(err error) (string, bool) {
	if e := new(serviceerror.ResourceExhausted); errors.As(err, &e) {
		return "Temporal is out of resources: " + e.Message, true
	}
	if e := new(serviceerror.Unavailable); errors.As(err, &e) {
		return "Temporal is unavailable: " + e.Message, true
	}
	return "", false
}

// ManualRun is an on-demand run request.
type ManualRun struct {
	Pipeline string
	// Ref is a branch, tag or full ref; Commit pins the exact commit when set.
	Ref, Commit string
	// Force re-bakes even when a tested AMI of this commit exists.
	Force bool
	// Repo, when known (from a Check), is the pipeline's repository, so
	// the run names it from its start.
	Repo string
}

// StartManual starts an on-demand run of pipeline at ref, or at commit when
// given. The worker checks that the pipeline exists and allows manual runs.
func (r *Runs) StartManual(ctx context.Context, pipeline, ref, commit string) (string, error) {
	return r.Start(ctx, ManualRun{Pipeline: pipeline, Ref: ref, Commit: commit})
}

// Start starts an on-demand run.
func (r *Runs) Start(ctx context.Context, m ManualRun) (string, error) {
	pipeline, ref, commit := m.Pipeline, m.Ref, m.Commit
	ev := event.Event{Kind: event.KindManual, Commit: commit, Repo: m.Repo}
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
		StaticDetails:                            details(pipeline, ev),
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

// details is what the Web UI's run page says of how the run started, in
// markdown: the pipeline, repository, ref, commit and trigger.
func details(pipeline string, ev event.Event) string {
	var b strings.Builder
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "| %s | %s |\n", k, workflows.MarkdownCode(v))
		}
	}
	b.WriteString("| | |\n| --- | --- |\n")
	row("pipeline", pipeline)
	row("repo", ev.Repo)
	row("ref", ev.RefLabel())
	row("commit", ev.Commit)
	trigger := string(ev.Kind)
	if ev.Sender != "" {
		trigger += " by " + ev.Sender
	}
	if pr := ev.PullRequest; pr != nil {
		trigger += fmt.Sprintf(", pull request #%d", pr.Number)
		if pr.Fork {
			trigger += " from a fork"
		}
	}
	row("trigger", trigger)
	return b.String()
}

// summary is the one line the Web UI shows for a run.
func summary(pipeline string, ev event.Event) string {
	// Temporal takes at most 400 bytes of summary.
	ref := ev.RefLabel()
	if len(ref) > 200 {
		ref = strings.ToValidUTF8(ref[:200], "") + "…"
	}
	s := fmt.Sprintf("%s: %s %s", pipeline, ev.Kind, ref)
	if len(ev.Commit) >= 12 {
		s += " @ " + ev.Commit[:12]
	}
	return s
}
