package workflows

import (
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
	"time"

	"github.com/kiln-ci/kiln/activities"
)

// supersedeOlder cancels the runs of this pipeline for the same ref that started
// before this one and still run. Each is first told which run replaces it, so
// its cancellation can say so. Finding them is an activity (a visibility query);
// signalling and cancelling are workflow commands, so they are durable.
// Failures here are logged, not fatal: an old run left running is a waste, not
// a wrong result.
func (r *pipelineRun) supersedeOlder(ctx workflow.Context) {
	info := workflow.GetInfo(ctx)
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           r.shortQueue.plan,
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	var older []string
	err := workflow.ExecuteActivity(summarized(actx, "find older runs of "+r.in.Event.RefLabel()), a.FindSuperseded, activities.SupersedeQuery{
		PipelineAttr: AttrPipeline.GetName(),
		RefAttr:      AttrRef.GetName(),
		Pipeline:     r.in.Pipeline,
		Ref:          RefAttr(r.in.Event.RefLabel()),
		StartedAt:    info.WorkflowStartTime,
		WorkflowID:   info.WorkflowExecution.ID,
	}).Get(ctx, &older)
	if err != nil {
		r.log.Warn("could not look for superseded runs", "error", err)
		return
	}
	me := info.WorkflowExecution.ID
	for _, id := range older {
		// Signal and cancel may race with the old run completing on its own; an
		// error then only means there was nothing left to cancel.
		if err := workflow.SignalExternalWorkflow(ctx, id, "", SignalSuperseded, me).Get(ctx, nil); err != nil {
			r.log.Info("superseded run did not take the signal", "run", id, "error", err)
			continue
		}
		if err := workflow.RequestCancelExternalWorkflow(ctx, id, "").Get(ctx, nil); err != nil {
			r.log.Info("superseded run could not be cancelled", "run", id, "error", err)
			continue
		}
		r.log.Info("cancelled superseded run", "run", id)
	}
}
