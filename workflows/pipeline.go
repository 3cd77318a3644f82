// Package workflows holds kiln's Temporal workflows. A pipeline run is one
// Pipeline workflow; each stage is an activity with its own timeouts, retry
// policy and heartbeats, so a failed stage is retried alone.
package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/event"
)

// PipelineInput starts a pipeline run. It carries the event only: the pipeline's
// definition is read from the worker's config by the plan step and recorded in
// history, so a run is reproducible while config may change between runs.
type PipelineInput struct {
	Pipeline string      `json:"pipeline"`
	Event    event.Event `json:"event"`
	// Force re-bakes even when an AMI of this pipeline and commit already
	// passed its test.
	Force bool `json:"force,omitempty"`
}

// PipelineResult is what a finished run reports.
type PipelineResult struct {
	Pipeline string                  `json:"pipeline"`
	Commit   string                  `json:"commit"`
	Progress Progress                `json:"progress"`
	Build    *activities.BuildResult `json:"build,omitempty"`
	Bake     *activities.BakeResult  `json:"bake,omitempty"`
	Test     *activities.TestResult  `json:"test,omitempty"`
	// Distribution is the distribute stage's AMI map.
	Distribution *DistributionResult `json:"distribution,omitempty"`
	// Publish is what the publish stage published.
	Publish *PublishResult `json:"publish,omitempty"`
	// Triggered are the runs this run's tested AMI started, by workflow ID.
	Triggered []string `json:"triggered,omitempty"`
}

// Pipeline runs one pipeline for one event: plan, supersede older runs of the
// same ref if configured, then the stages in order.
func Pipeline(ctx workflow.Context, in PipelineInput) (*PipelineResult, error) {
	r := &pipelineRun{in: in}
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	return r.run(ctx)
}

var a *activities.Activities

// pipelineRun is the state of one run; the progress query reads it.
type pipelineRun struct {
	in           PipelineInput
	progress     Progress
	supersededBy workflow.ReceiveChannel
	log          log.Logger
	// dist is the distribute stage once it started; the retry update and
	// the amis query read it.
	dist *distribution
	// def is the run's plan once the plan step made it.
	def *activities.Plan
	// reporter reports the run on its git host, when the repo says so.
	reporter *reporter
	// shortQueue is the task queue of the run's short activities: plan,
	// supersede query, reports, notifications.
	shortQueue shortQueue
	// res is what the run made so far, for the Web UI's details.
	res *PipelineResult
}

// shortQueue says where a run's short activities go. Runs started before
// short-queue planned and queried on TaskQueue, behind the builds, and
// reported on DistributeTaskQueue, behind the copies; replaying them must
// schedule the same.
type shortQueue struct{ plan, report string }

func (r *pipelineRun) chooseShortQueue(ctx workflow.Context) {
	if workflow.GetVersion(ctx, "short-queue", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		r.shortQueue = shortQueue{plan: "", report: DistributeTaskQueue} // "": the run's own queue
		return
	}
	r.shortQueue = shortQueue{plan: ShortTaskQueue, report: ShortTaskQueue}
}

func (r *pipelineRun) setup(ctx workflow.Context) error {
	r.log = log.With(workflow.GetLogger(ctx), "pipeline", r.in.Pipeline, "repo", r.in.Event.Repo, "ref", r.in.Event.Ref)
	r.progress = newProgress(r.in, nil)
	r.progress.RunID = workflow.GetInfo(ctx).WorkflowExecution.ID
	r.supersededBy = workflow.GetSignalChannel(ctx, SignalSuperseded)
	if err := r.setRetryHandlers(ctx); err != nil {
		return err
	}
	if err := r.setApprovalHandlers(ctx); err != nil {
		return err
	}
	return workflow.SetQueryHandler(ctx, QueryProgress, func() (Progress, error) { return r.progress, nil })
}

func (r *pipelineRun) run(ctx workflow.Context) (*PipelineResult, error) {
	res := &PipelineResult{Pipeline: r.in.Pipeline}
	r.res = res
	r.metrics(ctx, map[string]string{"event": string(r.in.Event.Kind)}).Counter("kiln_runs_started").Inc(1)
	r.chooseShortQueue(ctx)
	plan, err := r.plan(ctx)
	if err != nil {
		if workflow.GetVersion(ctx, "plan-stage-on-failure", workflow.DefaultVersion, 1) == 1 {
			// A run that failed to plan says so, rather than look queued.
			r.progress.Stage = StagePlan
			r.setStageAttr(ctx, StagePlan)
		}
		return nil, r.finish(ctx, err)
	}
	res.Commit = plan.Commit
	r.def = plan
	r.progress.UI = activities.RunURL(plan.UI, workflow.GetInfo(ctx).Namespace, r.progress.RunID)
	r.progress.setStages(plan.Stages())
	r.showDetails(ctx)
	r.startReporter(ctx)
	if plan.CancelSuperseded {
		r.supersedeOlder(ctx)
	}
	built := false
	if plan.Untrusted != "" {
		// An untrusted change builds only in its image, without secrets,
		// and nothing else of it runs before someone trusted looks; on the
		// worker, it does not even build first.
		stages := plan.Stages()
		if plan.Build != nil && plan.BuildImage != "" &&
			workflow.GetVersion(ctx, "untrusted-builds-in-image", workflow.DefaultVersion, 1) == 1 {
			err = r.stage(ctx, StageBuild, func(ctx workflow.Context) (err error) {
				res.Build, err = r.build(ctx, plan, true)
				return err
			})
			if err != nil {
				return res, r.finish(ctx, err)
			}
			built, stages = true, stages[1:]
		}
		if len(stages) > 0 {
			gate := ApprovalProgress{Stage: stages[0], Why: plan.Untrusted, Untrusted: true}
			if err := r.awaitApproval(ctx, gate, plan.ApprovalTimeout); err != nil {
				return res, r.finish(ctx, err)
			}
		}
	}
	if plan.Build != nil && !built {
		err = r.stage(ctx, StageBuild, func(ctx workflow.Context) (err error) {
			res.Build, err = r.build(ctx, plan, false)
			return err
		})
	}
	if err == nil && plan.Bake != nil {
		err = r.stage(ctx, StageBake, func(ctx workflow.Context) (err error) {
			res.Bake, err = r.bake(ctx, plan)
			return err
		})
	}
	if err == nil && plan.Test != nil && res.Bake != nil {
		err = r.stage(ctx, StageTest, func(ctx workflow.Context) (err error) {
			res.Test, err = r.testAMI(ctx, plan, res.Bake)
			if err == nil {
				res.Triggered = r.triggerAMIDependents(ctx, plan, res.Bake, res.Test)
			}
			return err
		})
	}
	if err == nil && plan.Distribute != nil && res.Bake != nil {
		err = r.gate(ctx, StageDistribute, plan.Distribute.Approval)
	}
	if err == nil && plan.Distribute != nil && res.Bake != nil {
		err = r.stage(ctx, StageDistribute, func(ctx workflow.Context) (err error) {
			res.Distribution, err = r.distribute(ctx, plan, res.Bake)
			return err
		})
	}
	if err == nil && plan.Publish != nil {
		err = r.gate(ctx, StagePublish, plan.Publish.Approval)
	}
	if err == nil && plan.Publish != nil {
		err = r.stage(ctx, StagePublish, func(ctx workflow.Context) (err error) {
			res.Publish, err = r.publish(ctx, plan, res)
			return err
		})
	}
	// finish reports the outcome and notifies; the result shows how that went.
	err = r.finish(ctx, err)
	res.Progress = r.progress
	return res, err
}

// planOptions run a Plan on queue: its git calls can fail for a moment,
// an unknown pipeline or ref never stops failing.
func planOptions(queue string) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		TaskQueue:           queue,
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			MaximumAttempts:        5,
			NonRetryableErrorTypes: activities.PermanentErrorTypes,
		},
	}
}

// plan resolves the pipeline definition and the commit, and records the commit
// as a search attribute once known.
func (r *pipelineRun) plan(ctx workflow.Context) (*activities.Plan, error) {
	ctx = workflow.WithActivityOptions(ctx, planOptions(r.shortQueue.plan))
	var plan activities.Plan
	err := workflow.ExecuteActivity(summarized(ctx, "plan "+r.in.Pipeline+" at "+r.in.Event.RefLabel()), a.Plan, activities.PlanInput{Pipeline: r.in.Pipeline, Event: r.in.Event}).Get(ctx, &plan)
	if err != nil {
		return nil, err
	}
	// Manual and scheduled runs learn their repo and commit only now, and a
	// run of HEAD its branch.
	r.in.Event.Repo, r.progress.Repo, r.progress.Commit = plan.Repo, plan.Repo, plan.Commit
	attrs := []temporal.SearchAttributeUpdate{AttrCommit.ValueSet(plan.Commit), AttrRepo.ValueSet(plan.Repo)}
	if plan.Branch != "" {
		r.in.Event.FromRef(plan.Branch)
		r.progress.Ref = r.in.Event.RefLabel()
		attrs = append(attrs, AttrRef.ValueSet(RefAttr(r.progress.Ref)))
	}
	err = workflow.UpsertTypedSearchAttributes(ctx, attrs...)
	if err != nil {
		return nil, err
	}
	return &plan, nil
}

// build runs the build stage. Cancelling the run cancels the activity, whose
// heartbeat carries the cancellation to the worker, which kills the build's
// process group; WaitForCancellation makes the run wait for that clean-up.
func (r *pipelineRun) build(ctx workflow.Context, plan *activities.Plan, untrusted bool) (*activities.BuildResult, error) {
	timeout := plan.BuildTimeout()
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout + 10*time.Minute,
		HeartbeatTimeout:    30 * time.Second,
		WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        5 * time.Second,
			BackoffCoefficient:     2,
			MaximumAttempts:        3,
			NonRetryableErrorTypes: activities.PermanentErrorTypes,
		},
	})
	in := activities.BuildInput{
		RunID:    workflow.GetInfo(ctx).WorkflowExecution.ID,
		Pipeline: r.in.Pipeline,
		Event:    r.in.Event,
		Plan:     *plan,
		// Only a build before an untrusted change's approval goes
		// without secrets; once approved, the next stages have them.
		Untrusted: untrusted,
	}
	in.Event.Commit = plan.Commit
	in.ScheduledAt = scheduledTime(ctx)
	var out activities.BuildResult
	what := "build " + shortSHA(plan.Commit) + " on the worker"
	if plan.BuildImage != "" {
		what = "build " + shortSHA(plan.Commit) + " in " + plan.BuildImage
	}
	if err := workflow.ExecuteActivity(summarized(ctx, what), a.Build, in).Get(ctx, &out); err != nil {
		r.progress.Tests = failedTests(err)
		return nil, err
	}
	r.progress.Tests = out.Reports
	return &out, nil
}

// stage runs fn as the named stage, keeping the progress query and the
// KilnStage search attribute current.
func (r *pipelineRun) stage(ctx workflow.Context, name string, fn func(workflow.Context) error) error {
	r.progress.start(name, workflow.Now(ctx))
	r.setStageAttr(ctx, name)
	r.showDetails(ctx)
	r.report([]string{name}, "")
	err := fn(ctx)
	r.progress.end(name, workflow.Now(ctx), err)
	s := r.progress.get(name)
	r.metrics(ctx, map[string]string{"stage": name, "outcome": s.State}).Timer("kiln_stage_duration").Record(s.End.Sub(s.Start))
	r.noteMade()
	r.showDetails(ctx)
	r.report([]string{name}, "")
	return err
}

// finish turns the run's outcome into the workflow's result: a cancelled run
// says which run superseded it, and KilnStage ends as "done" or keeps the name
// of the stage that failed.
func (r *pipelineRun) finish(ctx workflow.Context, err error) error {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	var by string
	for r.supersededBy.ReceiveAsync(&by) {
		r.progress.SupersededBy = by
	}
	outcome, ret := OutcomeSucceeded, error(nil)
	switch {
	case err == nil:
		r.setStageAttr(dctx, "done")
		// The query agrees with KilnStage once the run is done.
		r.progress.Stage = "done"
	case errors.As(err, new(*NotApproved)):
		r.setStageAttr(dctx, OutcomeNotApproved)
		outcome = OutcomeNotApproved
	case temporal.IsCanceledError(err) || errors.Is(ctx.Err(), workflow.ErrCanceled):
		r.setStageAttr(dctx, "cancelled")
		outcome, ret = OutcomeCancelled, temporal.NewCanceledError("cancelled")
		if r.progress.SupersededBy != "" {
			ret = temporal.NewCanceledError("superseded by " + r.progress.SupersededBy)
		}
	default:
		r.log.Error("pipeline failed", "stage", r.progress.Stage, "error", rootMessage(err))
		outcome, ret = OutcomeFailed, stageFailure(r.progress.Stage, err)
	}
	r.showDetails(dctx)
	r.stopReporter(dctx, outcome)
	r.notify(dctx, outcome)
	r.metrics(dctx, map[string]string{"outcome": outcome}).Counter("kiln_runs_finished").Inc(1)
	return ret
}

// metrics records the run's metrics, tagged with its pipeline and tags.
// The SDK records nothing while a workflow replays.
func (r *pipelineRun) metrics(ctx workflow.Context, tags map[string]string) client.MetricsHandler {
	tags["pipeline"] = r.in.Pipeline
	return workflow.GetMetricsHandler(ctx).WithTags(tags)
}

// Outcomes of a run, as reports and notifications name them.
const (
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed"
	OutcomeCancelled = "cancelled"
)

func (r *pipelineRun) setStageAttr(ctx workflow.Context, stage string) {
	if err := workflow.UpsertTypedSearchAttributes(ctx, AttrStage.ValueSet(stage)); err != nil {
		r.log.Warn("could not update KilnStage", "error", err)
	}
}

// scheduledTime is when a schedule meant the run to start, for FLOW_SCHEDULE;
// zero for runs a schedule did not start.
func scheduledTime(ctx workflow.Context) time.Time {
	key := temporal.NewSearchAttributeKeyTime("TemporalScheduledStartTime")
	if t, ok := workflow.GetTypedSearchAttributes(ctx).GetTime(key); ok {
		return t
	}
	return time.Time{}
}
