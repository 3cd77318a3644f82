package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kiln-ci/kiln/internal/config"
	"go.temporal.io/sdk/workflow"
)

// Updates that answer an approval gate. `kiln approve RUN_ID` and a trusted
// person's "/kiln approve" comment send UpdateApprove; `kiln reject RUN_ID
// --reason ...` sends UpdateReject. Each takes a Decision and returns an
// ApprovalResult; its validator refuses, without a trace in history, a run
// that waits for no approval and a person who may not give it.
const (
	UpdateApprove = "approve"
	UpdateReject  = "reject"
)

// ApprovalStage is the progress stage of the approval gate before stage,
// which reports show as a pending status, named after it, while the run
// waits: "approve build".
func ApprovalStage(stage string) string { return "approve " + stage }

// StateWaiting is the approval stage's state while the run waits for it.
const StateWaiting = "waiting"

// Ways a decision reaches a run.
const (
	ViaCLI     = "cli"
	ViaComment = "comment"
)

// Decision is one answer to an approval gate.
type Decision struct {
	// By is who decided: a login, or the name `kiln approve --by` gave.
	By string `json:"by"`
	// Via is how it reached the run: ViaCLI or ViaComment.
	Via string `json:"via"`
	// Reason is why a run was rejected, or a note with an approval.
	Reason string `json:"reason,omitempty"`
}

// ApprovalResult answers the approve and reject updates.
type ApprovalResult struct {
	// Stage is the stage that was waiting.
	Stage string `json:"stage"`
}

// ApprovalProgress is one approval gate of a run, as the progress query,
// `kiln runs` and reports show it.
type ApprovalProgress struct {
	// Stage is the stage the gate stands before; Why is why it waits.
	Stage string `json:"stage"`
	Why   string `json:"why"`
	// Untrusted says the run waits because its change is untrusted, the
	// one gate a trusted person's "/kiln approve" comment may answer.
	Untrusted bool `json:"untrusted,omitempty"`
	// Approvers may answer the gate; empty means anyone who can reach
	// the run (a person with kiln's CLI, or a trusted commenter).
	Approvers []string  `json:"approvers,omitempty"`
	Deadline  time.Time `json:"deadline"`
	Waiting   bool      `json:"waiting"`
	// Approved, once decided: who decided, how, when, and why.
	Approved bool      `json:"approved"`
	Decision *Decision `json:"decision,omitempty"`
	At       time.Time `json:"at,omitzero"`
	// TimedOut says nobody answered before Deadline.
	TimedOut bool `json:"timed_out,omitempty"`
}

// NotApproved ends a run whose gate was rejected or timed out. The run
// completes, as "not approved": it did not fail.
type NotApproved struct {
	Stage, Reason string
}

func (e *NotApproved) Error() string {
	return fmt.Sprintf("%s was not approved: %s", e.Stage, e.Reason)
}

// OutcomeNotApproved is the outcome of a run that ended at an approval gate.
const OutcomeNotApproved = "not approved"

// waitingGate is the gate the run waits at now, or nil.
func (r *pipelineRun) waitingGate() *ApprovalProgress {
	if n := len(r.progress.Approvals); n > 0 && r.progress.Approvals[n-1].Waiting {
		return &r.progress.Approvals[n-1]
	}
	return nil
}

// setApprovalHandlers registers the approve and reject updates.
func (r *pipelineRun) setApprovalHandlers(ctx workflow.Context) error {
	for _, u := range []struct {
		name    string
		approve bool
	}{{UpdateApprove, true}, {UpdateReject, false}} {
		err := workflow.SetUpdateHandlerWithOptions(ctx, u.name,
			func(ctx workflow.Context, d Decision) (ApprovalResult, error) {
				g := r.waitingGate()
				if g == nil { // answered by an update accepted just before
					return ApprovalResult{}, fmt.Errorf("run %s is no longer waiting for approval", workflow.GetInfo(ctx).WorkflowExecution.ID)
				}
				g.Waiting, g.Approved, g.Decision, g.At = false, u.approve, &d, workflow.Now(ctx)
				return ApprovalResult{Stage: g.Stage}, nil
			},
			workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d Decision) error {
				return r.checkDecision(workflow.GetInfo(ctx).WorkflowExecution.ID, u.approve, d)
			}},
		)
		if err != nil {
			return err
		}
	}
	return nil
}

// checkDecision says why a decision may not answer the run's gate.
func (r *pipelineRun) checkDecision(runID string, approve bool, d Decision) error {
	g := r.waitingGate()
	switch {
	case g == nil:
		return fmt.Errorf("run %s is not waiting for approval (stage: %s)", runID, r.progress.Stage)
	case strings.TrimSpace(d.By) == "":
		return errors.New("say who decides: the approver's name is empty")
	case !approve && strings.TrimSpace(d.Reason) == "":
		return errors.New("say why the run is rejected: the reason is empty")
	case d.Via == ViaComment && !g.Untrusted:
		return fmt.Errorf("a comment cannot approve the %s stage of run %s: use kiln approve", g.Stage, runID)
	case len(g.Approvers) > 0 && !slices.ContainsFunc(g.Approvers, func(a string) bool { return strings.EqualFold(a, d.By) }):
		return fmt.Errorf("%s may not approve the %s stage of run %s: its approvers are %s",
			d.By, g.Stage, runID, strings.Join(g.Approvers, ", "))
	}
	return nil
}

// gate waits at a stage's approval gate, when its config has one.
func (r *pipelineRun) gate(ctx workflow.Context, stage string, a *config.Approval) error {
	if !a.Gates() {
		return nil
	}
	return r.awaitApproval(ctx, ApprovalProgress{Stage: stage, Why: fmt.Sprintf("the %s stage needs an approval", stage),
		Approvers: a.Approvers}, a.Wait())
}

// awaitApproval holds the run before stage until it is approved, rejected,
// or timeout passes; a rejection or a timeout is a *NotApproved. The wait
// is durable: it survives restarts of every worker, and KilnStage says
// "<stage>: awaiting approval" while it lasts.
func (r *pipelineRun) awaitApproval(ctx workflow.Context, gate ApprovalProgress, timeout time.Duration) error {
	now := workflow.Now(ctx)
	stage, why := gate.Stage, gate.Why
	gate.Deadline, gate.Waiting = now.Add(timeout), true
	r.progress.Approvals = append(r.progress.Approvals, gate)
	i := len(r.progress.Approvals) - 1
	s := r.progress.get(ApprovalStage(stage))
	s.State, s.Start, s.End, s.Error = StateWaiting, now, time.Time{}, ""
	r.progress.Stage = stage + ": awaiting approval"
	r.setStageAttr(ctx, r.progress.Stage)
	r.report([]string{ApprovalStage(stage)}, "")
	r.log.Info("waiting for approval", "stage", stage, "why", why)
	r.metrics(ctx, map[string]string{"stage": stage}).Counter("kiln_approval_waits").Inc(1)

	decided, err := workflow.AwaitWithTimeout(ctx, timeout, func() bool { return !r.progress.Approvals[i].Waiting })
	g := &r.progress.Approvals[i]
	s = r.progress.get(ApprovalStage(stage))
	s.End = workflow.Now(ctx)
	switch {
	case err != nil: // cancelled
		g.Waiting, s.State = false, StateCancelled
		r.report([]string{ApprovalStage(stage)}, "")
		return err
	case !decided:
		g.Waiting, g.TimedOut, s.State = false, true, StateFailed
		s.Error = fmt.Sprintf("not approved within %s", timeout)
	case !g.Approved:
		s.State = StateFailed
		s.Error = fmt.Sprintf("rejected by %s: %s", g.Decision.By, g.Decision.Reason)
	default:
		s.State = StateSucceeded
		r.log.Info("approved", "stage", stage, "by", g.Decision.By, "via", g.Decision.Via)
	}
	r.report([]string{ApprovalStage(stage)}, "")
	r.metrics(ctx, map[string]string{"stage": stage, "outcome": s.State}).Counter("kiln_approvals_decided").Inc(1)
	r.recordDecisions(ctx)
	if s.State == StateFailed {
		return &NotApproved{Stage: stage, Reason: s.Error}
	}
	return nil
}

// MemoApprovals is the memo field that says, in a line, how each of a
// run's gates was decided ("build approved by ada via comment"), so that
// listing runs shows it without asking each one.
const MemoApprovals = "approvals"

// recordDecisions puts the run's decisions in its memo. Runs from before
// "approval-memo" have none.
func (r *pipelineRun) recordDecisions(ctx workflow.Context) {
	if workflow.GetVersion(ctx, "approval-memo", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	var lines []string
	for _, g := range r.progress.Approvals {
		switch {
		case g.TimedOut:
			lines = append(lines, g.Stage+" not approved in time")
		case g.Decision == nil:
		case g.Approved:
			lines = append(lines, fmt.Sprintf("%s approved by %s via %s", g.Stage, g.Decision.By, g.Decision.Via))
		default:
			lines = append(lines, fmt.Sprintf("%s rejected by %s via %s", g.Stage, g.Decision.By, g.Decision.Via))
		}
	}
	if err := workflow.UpsertMemo(ctx, map[string]any{MemoApprovals: strings.Join(lines, "; ")}); err != nil {
		r.log.Warn("could not record the approvals in the memo", "error", err)
	}
}
