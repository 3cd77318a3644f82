package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
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
	return workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Minute, RetryPolicy: serviceRetries()}
}

// serviceRetries retry a service's transient failures (throttling, 5xx,
// resets) for a few minutes, and never a permanent one.
func serviceRetries() *temporal.RetryPolicy {
	return &temporal.RetryPolicy{
		InitialInterval:        5 * time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        time.Minute,
		MaximumAttempts:        5,
		NonRetryableErrorTypes: activities.PermanentErrorTypes,
	}
}

// publish runs the publish stage: the images, in parallel, then the
// CloudFormation templates with the AMI map of the distribution (or the
// bake's AMIs), then the runs the new images trigger.
func (r *pipelineRun) publish(ctx workflow.Context, plan *activities.Plan, res *PipelineResult) (*PublishResult, error) {
	ctx = workflow.WithActivityOptions(ctx, publishOptions())
	runID := workflow.GetInfo(ctx).WorkflowExecution.ID
	out := &PublishResult{}
	// The image activity heartbeats all along, from its own goroutine, so a
	// dead worker is noticed in 30 s, as a build's is; a push that stalls
	// ends itself (activities.pushStall) and is retried.
	ictx := workflow.WithHeartbeatTimeout(ctx, 30*time.Second)
	var futures []workflow.Future
	for i, img := range plan.Publish.Images {
		ictx := ictx
		if t := time.Duration(img.Timeout); t > 0 {
			// A Dockerfile build can take longer than a push.
			ictx = workflow.WithStartToCloseTimeout(ictx, t)
		}
		in := activities.ImageInput{RunID: runID, Pipeline: r.in.Pipeline, Event: r.in.Event, Plan: *plan, Index: i}
		futures = append(futures, r.publishImage(summarized(ictx, "publish image "+img.Name), res.Build, in))
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
		if err := workflow.ExecuteActivity(summarized(ctx, "publish CloudFormation templates"), a.PublishTemplates, in).Get(ctx, &tr); err != nil {
			return out, err
		}
		out.Templates = tr.Objects
	}
	out.Triggered = r.triggerDependents(ctx, plan, out.Images)
	return out, nil
}

// publishImage publishes one image. Images are built from the build's
// artifacts: on the worker whose disk holds them when it takes the task
// within hostQueueWait, and otherwise, when the build stored its artifacts
// in the artifact store, on any worker, which fetches them. Before the
// store, only the building worker could publish them, and a publish waited
// for it for 10 minutes.
func (r *pipelineRun) publishImage(ctx workflow.Context, build *activities.BuildResult, in activities.ImageInput) workflow.Future {
	if build == nil || build.ArtifactsQueue == "" {
		return workflow.ExecuteActivity(ctx, a.PublishImage, in)
	}
	if workflow.GetVersion(ctx, "artifacts-any-worker", workflow.DefaultVersion, 1) == workflow.DefaultVersion ||
		build.ArtifactsManifest == "" {
		opts := workflow.GetActivityOptions(ctx)
		opts.TaskQueue, opts.ScheduleToStartTimeout = build.ArtifactsQueue, 10*time.Minute
		return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), a.PublishImage, in)
	}
	in.Artifacts = build.ArtifactsManifest
	host := workflow.GetActivityOptions(ctx)
	host.TaskQueue, host.ScheduleToStartTimeout = build.ArtifactsQueue, hostQueueWait
	f, set := workflow.NewFuture(ctx)
	workflow.Go(ctx, func(gctx workflow.Context) {
		var img activities.ImageResult
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, host), a.PublishImage, in).Get(gctx, &img)
		if notStarted(err) {
			workflow.GetLogger(ctx).Info("the building worker did not take the image in time; any worker publishes it from the artifact store",
				"queue", build.ArtifactsQueue, "image", in.Index)
			err = workflow.ExecuteActivity(ctx, a.PublishImage, in).Get(gctx, &img)
		}
		set.Set(&img, err)
	})
	return f
}

// hostQueueWait is how long a publish waits for the worker that built the
// artifacts before any worker takes it: long enough for a live worker
// between two tasks, short next to the publish itself.
const hostQueueWait = time.Minute

// notStarted says an activity timed out waiting for a worker to take it.
func notStarted(err error) bool {
	var timeout *temporal.TimeoutError
	return errors.As(err, &timeout) && timeout.TimeoutType() == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START
}

// triggerDependents starts, as abandoned child workflows, the runs of the
// pipelines whose image triggers name an image this run pushed: one run per
// dependent pipeline and ref, however many of its images this run pushed.
// The child's ID carries the digests and duplicates are rejected, so the
// same images start each dependent once: publishing them again, or a push
// retried after a crash (which finds its tags already in place), starts
// nothing twice and misses nothing. Only images from the default branch, a
// tag or an image trigger start anything: a pull request's or a feature
// branch's image must not become the base of production builds.
func (r *pipelineRun) triggerDependents(ctx workflow.Context, plan *activities.Plan, images []activities.ImageResult) []string {
	if len(plan.Dependents) == 0 || len(images) == 0 {
		return nil
	}
	if workflow.GetVersion(ctx, "image-triggers-from-release-refs", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return r.triggerEachImage(ctx, plan, images)
	}
	if !triggersDependents(plan, r.in.Event) {
		if plan.DefaultBranch == "" && r.in.Event.Kind != event.KindReview && r.in.Event.Tag == "" {
			r.log.Warn("the repository's default branch is unknown, so no dependent pipeline is triggered",
				"kind", r.in.Event.Kind, "branch", r.in.Event.Branch)
		} else {
			r.log.Info("images from this ref trigger no dependent pipelines", "kind", r.in.Event.Kind, "branch", r.in.Event.Branch)
		}
		return nil
	}
	var started []string
	for _, g := range groupDependents(plan.Dependents, images) {
		if id, ok := r.startDependent(ctx, g.pipeline, g.ref, g.images); ok {
			started = append(started, id)
		}
	}
	return started
}

// triggersDependents says whether this run's images may start the pipelines
// that depend on them.
func triggersDependents(plan *activities.Plan, ev event.Event) bool {
	switch {
	case ev.Kind == event.KindReview:
		return false
	case ev.Kind == event.KindImage, ev.Kind == event.KindAMI, ev.Tag != "":
		return true
	}
	branch := ev.Branch
	if branch == "" {
		branch = plan.Branch
	}
	return branch != "" && branch == plan.DefaultBranch
}

// dependentRun is one run to start: a pipeline at a ref, for the images of
// this run that it is triggered by.
type dependentRun struct {
	pipeline, ref string
	images        []activities.ImageResult
}

// groupDependents pairs each dependent pipeline and ref with the pushed
// images that trigger it, in config order. An image whose branch had moved
// on (Stale) triggers nothing: the newer run's image does.
func groupDependents(deps []activities.Dependent, images []activities.ImageResult) []dependentRun {
	var out []dependentRun
	at := map[[2]string]int{}
	for _, dep := range deps {
		for _, img := range images {
			if img.Name != dep.Image || img.Stale || len(img.Tags) == 0 {
				// A stale image is not the branch's, and one no tag points
				// at (all its tags were kept elsewhere) was not written.
				continue
			}
			key := [2]string{dep.Pipeline, dep.Ref}
			i, ok := at[key]
			if !ok {
				i = len(out)
				at[key] = i
				out = append(out, dependentRun{pipeline: dep.Pipeline, ref: dep.Ref})
			}
			out[i].images = append(out[i].images, img)
		}
	}
	return out
}

// startDependent starts pipeline at ref for images (the first is the one its
// build sees) and returns the run's ID, unless the same images already
// started it or it could not be started.
func (r *pipelineRun) startDependent(ctx workflow.Context, pipeline, ref string, images []activities.ImageResult) (string, bool) {
	img := images[0]
	ev := event.Event{Kind: event.KindImage, Image: &event.ImagePush{
		Name: img.Name, Digest: img.Digest, Pipeline: r.in.Pipeline, RunID: r.progress.RunID}}
	if ref == "" {
		ref = "HEAD"
	}
	ev.FromRef(ref)
	key := shortDigest(img.Digest)
	if len(images) > 1 {
		digests := make([]string, len(images))
		for i, im := range images {
			digests[i] = im.Digest
		}
		slices.Sort(digests)
		sum := sha256.Sum256([]byte(strings.Join(digests, ",")))
		key = hex.EncodeToString(sum[:6])
	}
	id := RunID(pipeline, ev, "image-"+key)
	if legacy := pipeline + "/" + ev.RefLabel() + "/image-" + key; legacy != id &&
		workflow.GetVersion(ctx, "run-id-encodes-refs", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		id = legacy // a run from before workflow IDs encoded refs
	}
	return r.startTriggered(ctx, pipeline, ev, id)
}

// startTriggered starts a run of pipeline for ev as an abandoned child
// with the workflow ID id, and returns id, unless a run of that ID exists
// already (what triggered it has started it) or it could not be started.
func (r *pipelineRun) startTriggered(ctx workflow.Context, pipeline string, ev event.Event, id string) (string, bool) {
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: id, TaskQueue: TaskQueue, ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes: StartAttributes(pipeline, ev),
	})
	f := workflow.ExecuteChildWorkflow(cctx, PipelineWorkflowName, PipelineInput{Pipeline: pipeline, Event: ev})
	err := f.GetChildWorkflowExecution().Get(ctx, nil)
	switch {
	case temporal.IsWorkflowExecutionAlreadyStartedError(err):
		return "", false
	case err != nil:
		r.log.Warn("could not start the triggered run", "kind", ev.Kind, "pipeline", pipeline, "id", id, "error", err)
		return "", false
	}
	return id, true
}

// triggerEachImage is how runs recorded before the version above triggered:
// every pushed image, from any ref, one child per dependent and image. It
// stays for their replay.
func (r *pipelineRun) triggerEachImage(ctx workflow.Context, plan *activities.Plan, images []activities.ImageResult) []string {
	var started []string
	for _, dep := range plan.Dependents {
		for _, img := range images {
			if img.Name != dep.Image {
				continue
			}
			if id, ok := r.startDependent(ctx, dep.Pipeline, dep.Ref, []activities.ImageResult{img}); ok {
				started = append(started, id)
			}
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
