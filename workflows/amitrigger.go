package workflows

import (
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/event"
)

// triggerAMIDependents starts, as abandoned child workflows, the runs of
// the pipelines whose AMI triggers name this one, once its AMI passed its
// test. As with images, only the default branch's and tags' AMIs count: a
// pull request's AMI must not become the base of production images. The
// child's ID carries the AMI, so the same AMI starts each dependent once,
// however often its test is retried or its run replayed.
func (r *pipelineRun) triggerAMIDependents(ctx workflow.Context, plan *activities.Plan, bake *activities.BakeResult, test *activities.TestResult) []string {
	if len(plan.AMIDependents) == 0 || bake == nil || test == nil || !test.Passed {
		return nil
	}
	if workflow.GetVersion(ctx, "ami-triggers", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	if !triggersDependents(plan, r.in.Event) {
		r.log.Info("AMIs from this ref trigger no dependent pipelines", "kind", r.in.Event.Kind, "branch", r.in.Event.Branch)
		return nil
	}
	pass := &event.AMIPass{Pipeline: r.in.Pipeline, RunID: r.progress.RunID, Commit: plan.Commit,
		Region: bake.Region, AMIs: bake.AMIs}
	var started []string
	for _, dep := range plan.AMIDependents {
		ev := event.Event{Kind: event.KindAMI, AMI: pass}
		ref := dep.Ref
		if ref == "" {
			ref = "HEAD"
		}
		ev.FromRef(ref)
		id := RunID(dep.Pipeline, ev, "ami-"+strings.TrimPrefix(bake.AMI(), "ami-"))
		if id, ok := r.startTriggered(ctx, dep.Pipeline, ev, id); ok {
			started = append(started, id)
		}
	}
	return started
}
