package workflows

import (
	"maps"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/ami"
)

// RetentionWorkflowName is the workflow that retires a pipeline's old AMIs:
// its schedule starts it, and `kiln amis` and `kiln amis prune` run it.
const RetentionWorkflowName = "Retention"

// RetentionInput asks for a pipeline's AMIs to be listed and planned, and
// unless DryRun, retired as the plan says.
type RetentionInput struct {
	Pipeline string `json:"pipeline"`
	DryRun   bool   `json:"dry_run,omitempty"`
}

// RetentionResult is every AMI kiln found of the pipeline, what retention
// decided for each and why, and what it did.
type RetentionResult struct {
	Pipeline  string         `json:"pipeline"`
	At        time.Time      `json:"at"`
	DryRun    bool           `json:"dry_run,omitempty"`
	Decisions []ami.Decision `json:"decisions"`
	// Retired counts the steps taken; Failed names each place (account/
	// region) that could not be read or whose steps failed, with why. The
	// next run tries them again.
	Retired int               `json:"retired"`
	Failed  map[string]string `json:"failed,omitempty"`
}

// Retention lists the pipeline's AMIs in every account and region kiln put
// them, plans with ami.Plan at the workflow's time, and retires them place
// by place, in parallel. A place that fails (a denied account, say) fails
// alone: the others are retired, and the result names it.
func Retention(ctx workflow.Context, in RetentionInput) (*RetentionResult, error) {
	res := &RetentionResult{Pipeline: in.Pipeline, At: workflow.Now(ctx), DryRun: in.DryRun}
	var plan activities.RetentionPlan
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, planOptions(ShortTaskQueue)),
		a.PlanRetention, in.Pipeline).Get(ctx, &plan); err != nil {
		return nil, err
	}
	actx := workflow.WithActivityOptions(ctx, retentionOptions(5*time.Minute))
	lists := make([]workflow.Future, len(plan.Places))
	for i, p := range plan.Places {
		lists[i] = workflow.ExecuteActivity(summarized(actx, "list AMIs in "+p.String()), a.ListAMIs,
			activities.PlaceInput{Pipeline: in.Pipeline, Place: p, Parameters: plan.Parameters[p.String()]})
	}
	var images []ami.Image
	inUse := map[string]string{}
	placeOf := map[string]activities.Place{}
	for i, f := range lists {
		var got activities.PlaceAMIs
		if err := f.Get(ctx, &got); err != nil {
			res.fail(plan.Places[i], err)
			continue
		}
		for _, im := range got.Images {
			placeOf[im.ID] = plan.Places[i]
		}
		images = append(images, got.Images...)
		for id, why := range got.InUse {
			if inUse[id] == "" {
				inUse[id] = why
			}
		}
	}
	res.Decisions = ami.Plan(images, activities.PolicyOf(plan.Lifecycle), inUse, res.At)
	if in.DryRun {
		return res, nil
	}
	byPlace := map[activities.Place][]ami.Decision{}
	for _, d := range res.Decisions {
		if d.Action != ami.ActionKeep {
			p := placeOf[d.Image.ID]
			byPlace[p] = append(byPlace[p], d)
		}
	}
	places := slices.SortedFunc(maps.Keys(byPlace), func(x, y activities.Place) int { return strings.Compare(x.String(), y.String()) })
	rctx := workflow.WithHeartbeatTimeout(workflow.WithActivityOptions(ctx, retentionOptions(30*time.Minute)), 2*time.Minute)
	retires := make([]workflow.Future, len(places))
	for i, p := range places {
		retires[i] = workflow.ExecuteActivity(summarized(rctx, "retire AMIs in "+p.String()), a.RetireAMIs,
			activities.RetireInput{Pipeline: in.Pipeline, Place: p, Decisions: byPlace[p], Now: res.At})
	}
	for i, f := range retires {
		var n int
		if err := f.Get(ctx, &n); err != nil {
			res.fail(places[i], err)
			continue
		}
		res.Retired += n
	}
	return res, nil
}

func (r *RetentionResult) fail(p activities.Place, err error) {
	if r.Failed == nil {
		r.Failed = map[string]string{}
	}
	r.Failed[p.String()] = rootMessage(err)
}

// retentionOptions retry AWS's transient failures for a while; a
// permanent one (access denied) fails its place at once.
func retentionOptions(timeout time.Duration) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		TaskQueue:           DistributeTaskQueue,
		StartToCloseTimeout: timeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        5 * time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			MaximumAttempts:        5,
			NonRetryableErrorTypes: activities.PermanentErrorTypes,
		},
	}
}

// RetentionScheduleID is the ID of a pipeline's retention schedule. "#"
// is in no pipeline name, so it cannot be a schedule trigger's ID.
func RetentionScheduleID(pipeline string) string {
	return SchedulePrefix + pipeline + "#retention"
}

// RetentionWorkflowID is the workflow ID prefix of a pipeline's retention
// runs: its schedule's (Temporal appends the time) and kiln amis's.
func RetentionWorkflowID(pipeline string) string {
	return "kiln-retention/" + pipeline
}

// LineageWorkflowName is the workflow `kiln amis --lineage` runs.
const LineageWorkflowName = "AMILineage"

// AMILineage walks an AMI's lineage on a worker, which has the AWS
// credentials the CLI may lack.
func AMILineage(ctx workflow.Context, in activities.LineageInput) (*activities.Lineage, error) {
	var out activities.Lineage
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, retentionOptions(5*time.Minute)), a.AMILineage, in).Get(ctx, &out)
	return &out, err
}
