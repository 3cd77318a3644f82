package workflows

import (
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/event"
)

// PublishResult is what the publish stage published.
type PublishResult struct {
	// Images are the pushed images with their digests.
	Images []activities.ImageResult `json:"images,omitempty"`
	// Templates are the uploaded CloudFormation objects, as s3:// URLs.
	Templates []string `json:"templates,omitempty"`
	// Triggered are the runs a new image started, by workflow ID.
	Triggered []string `json:"triggered,omitempty"`
}

// publishOptions retry transient failures (registries and S3 throttle and
// fail like any service) for a few minutes; permanent ones fail the stage.
func publishOptions() workflow.ActivityOptions {
	return workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        5 * time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			MaximumAttempts:        5,
			NonRetryableErrorTypes: activities.PermanentErrorTypes,
		},
	}
}

// publish runs the publish stage: the images, in parallel, then the
// CloudFormation templates with the AMI map of the distribution (or the
// bake's AMIs), then the runs the new images trigger.
func (r *pipelineRun) publish(ctx workflow.Context, plan *activities.Plan, res *PipelineResult) (*PublishResult, error) {
	ctx = workflow.WithActivityOptions(ctx, publishOptions())
	runID := workflow.GetInfo(ctx).WorkflowExecution.ID
	out := &PublishResult{}
	// Images are built from the build's artifacts, on the worker whose disk
	// holds them.
	ictx := ctx
	if res.Build != nil && res.Build.ArtifactsQueue != "" {
		opts := publishOptions()
		opts.TaskQueue = res.Build.ArtifactsQueue
		opts.ScheduleToStartTimeout = 10 * time.Minute
		ictx = workflow.WithActivityOptions(ctx, opts)
	}
	// A push heartbeats as its bytes go up; one that stalls is retried.
	ictx = workflow.WithHeartbeatTimeout(ictx, 2*time.Minute)
	var futures []workflow.Future
	for i := range plan.Publish.Images {
		futures = append(futures, workflow.ExecuteActivity(ictx, a.PublishImage, activities.ImageInput{
			RunID: runID, Pipeline: r.in.Pipeline, Event: r.in.Event, Plan: *plan, Index: i,
		}))
	}
	var errs []error
	for _, f := range futures {
		var img activities.ImageResult
		if err := f.Get(ctx, &img); err != nil {
			errs = append(errs, err)
			continue
		}
		out.Images = append(out.Images, img)
	}
	if len(errs) > 0 {
		return out, errs[0]
	}
	if cf := plan.Publish.CloudFormation; cf != nil && res.Bake != nil {
		var distributed map[string]map[string]string
		if res.Distribution != nil {
			distributed = res.Distribution.AMIs
		}
		in := activities.TemplatesInput{RunID: runID, Pipeline: r.in.Pipeline, Event: r.in.Event, Plan: *plan,
			AMIs: activities.TemplateAMIs(cf, res.Bake.AMIs, distributed)}
		var tr activities.TemplatesResult
		if err := workflow.ExecuteActivity(ctx, a.PublishTemplates, in).Get(ctx, &tr); err != nil {
			return out, err
		}
		out.Templates = tr.Objects
	}
	out.Triggered = r.triggerDependents(ctx, plan, out.Images)
	return out, nil
}

// triggerDependents starts, as abandoned child workflows, the runs of the
// pipelines whose image triggers name an image this run pushed. The child's
// ID carries the digest and duplicates are rejected, so a digest starts each
// dependent once: publishing the same image again, or a push retried after
// a crash (which finds its tags already in place), starts nothing twice and
// misses nothing.
func (r *pipelineRun) triggerDependents(ctx workflow.Context, plan *activities.Plan, images []activities.ImageResult) []string {
	var started []string
	for _, dep := range plan.Dependents {
		for _, img := range images {
			if img.Name != dep.Image {
				continue
			}
			ev := event.Event{Kind: event.KindImage, Image: &event.ImagePush{
				Name: img.Name, Digest: img.Digest, Pipeline: r.in.Pipeline, RunID: r.progress.RunID}}
			ref := dep.Ref
			if ref == "" {
				ref = "HEAD"
			}
			ev.FromRef(ref)
			id := RunID(dep.Pipeline, ev, "image-"+shortDigest(img.Digest))
			cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
				WorkflowID: id, TaskQueue: TaskQueue, ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
				WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
				TypedSearchAttributes: StartAttributes(dep.Pipeline, ev),
			})
			f := workflow.ExecuteChildWorkflow(cctx, PipelineWorkflowName, PipelineInput{Pipeline: dep.Pipeline, Event: ev})
			err := f.GetChildWorkflowExecution().Get(ctx, nil)
			switch {
			case temporal.IsWorkflowExecutionAlreadyStartedError(err):
				continue // this digest already started it
			case err != nil:
				r.log.Warn("could not start the image-triggered run", "pipeline", dep.Pipeline, "id", id, "error", err)
				continue
			}
			started = append(started, id)
		}
	}
	return started
}

// shortDigest is the first 12 hex digits of a digest such as sha256:abc….
func shortDigest(d string) string {
	_, hex, _ := strings.Cut(d, ":")
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return hex
}
