package workflows

import (
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ci/kiln/activities"
)

// reporter keeps the git host told of the run. One coroutine sends the
// reports in the order they were made, so a stage's "running" status never
// lands after its result. It runs on a disconnected context: a cancelled run
// still reports that it was cancelled. A report that fails is logged and
// noted in the progress query; it never fails the run.
type reporter struct {
	queue workflow.Channel
	done  workflow.Future
}

// reportQueue holds the reports not sent yet: two per stage and the outcome.
const reportQueue = 32

func (r *pipelineRun) startReporter(ctx workflow.Context) {
	if r.def == nil || !r.def.Reports(r.in.Event) {
		return
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	dctx = workflow.WithActivityOptions(dctx, workflow.ActivityOptions{
		// Reports are short calls: they must not wait behind builds.
		TaskQueue:           r.shortQueue.report,
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        2 * time.Second,
			BackoffCoefficient:     2,
			MaximumAttempts:        5,
			NonRetryableErrorTypes: activities.PermanentErrorTypes,
		},
	})
	done, finished := workflow.NewFuture(dctx)
	rep := &reporter{queue: workflow.NewBufferedChannel(dctx, reportQueue), done: done}
	r.reporter = rep
	workflow.Go(dctx, func(ctx workflow.Context) {
		defer finished.Set(nil, nil)
		var in activities.ReportInput
		for rep.queue.Receive(ctx, &in) {
			if err := workflow.ExecuteActivity(summarized(ctx, reportSummary(in)), a.ReportRun, in).Get(ctx, nil); err != nil {
				r.log.Warn("could not report the run on its git host", "error", err)
				r.progress.ReportError = rootMessage(err)
			}
		}
	})
}

// report queues the run's state, with the statuses of the changed stages.
func (r *pipelineRun) report(changed []string, outcome string) {
	if r.reporter == nil {
		return
	}
	in := activities.ReportInput{
		RunID: r.progress.RunID, Pipeline: r.in.Pipeline, Event: r.in.Event,
		Repo: r.def.Repo, Commit: r.def.Commit, Report: r.def.Report, CodeCommit: r.def.CodeCommit,
		Changed: changed, Outcome: outcome, Tests: r.progress.Tests,
	}
	for _, s := range r.progress.Stages {
		rs := activities.ReportStage{Name: s.Name, State: s.State, Error: s.Error}
		if !s.End.IsZero() && !s.Start.IsZero() {
			rs.Duration = s.End.Sub(s.Start)
		}
		in.Stages = append(in.Stages, rs)
	}
	r.reporter.queue.SendAsync(in)
}

// stopReporter sends the outcome and waits until every report went out.
func (r *pipelineRun) stopReporter(ctx workflow.Context, outcome string) {
	if r.reporter == nil {
		return
	}
	r.report(nil, outcome)
	r.reporter.queue.Close()
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	_ = r.reporter.done.Get(dctx, nil)
}

// notify tells people the outcome, when the pipeline says so and the outcome
// is one it notifies of. It is tried once: a retry could mail twice, and a
// failure to notify never fails the run; the progress query shows it.
func (r *pipelineRun) notify(ctx workflow.Context, outcome string) {
	if r.def == nil || r.def.Notify == nil {
		return
	}
	if on := r.def.Notify.On; len(on) > 0 && !slices.Contains(on, outcome) {
		return
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           r.shortQueue.report,
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	in := activities.NotifyInput{RunID: r.progress.RunID, Pipeline: r.in.Pipeline, Event: r.in.Event,
		Repo: r.def.Repo, Commit: r.def.Commit, Notify: r.def.Notify, Outcome: outcome, Tests: r.progress.Tests}
	if outcome == OutcomeFailed {
		for _, s := range r.progress.Stages {
			if s.State == StateFailed {
				in.FailedStage, in.Error = s.Name, s.Error
			}
		}
	}
	var res activities.NotifyResult
	if err := workflow.ExecuteActivity(summarized(ctx, "notify: "+in.Outcome), a.Notify, in).Get(ctx, &res); err != nil {
		res.Failed = map[string]string{"notify": rootMessage(err)}
	}
	r.progress.Notified = &res
}
