package workflows

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

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
	// RetryWindow, when set (the schedule's runs), keeps a run whose places
	// failed waiting that long for `kiln retry`, which tries them again.
	RetryWindow time.Duration `json:"retry_window,omitempty"`
}

// RetentionRetryWindow is how long a scheduled retention run with failed
// places waits for `kiln retry`: less than a day, so the next day's run is
// not skipped for it.
const RetentionRetryWindow = 20 * time.Hour

// RetentionResult is every AMI kiln found of the pipeline, what retention
// decided for each and why, and what it did.
type RetentionResult struct {
	Pipeline  string         `json:"pipeline"`
	At        time.Time      `json:"at"`
	DryRun    bool           `json:"dry_run,omitempty"`
	Decisions []ami.Decision `json:"decisions"`
	// Retired counts the steps taken; Failed names each place (account/
	// region) that could not be read or whose steps failed, with why. A
	// scheduled run waits for kiln retry while WaitingForRetry, and the
	// next run tries them again in any case.
	Retired         int               `json:"retired"`
	Failed          map[string]string `json:"failed,omitempty"`
	WaitingForRetry bool              `json:"waiting_for_retry,omitempty"`
	Retries         int               `json:"retries,omitempty"`
}

// Retention lists the pipeline's AMIs in every account and region kiln put
// them, plans with ami.Plan at the workflow's time, and retires them place
// by place, in parallel. A place that fails (a denied account, say) fails
// alone: the others are retired, and the result names it. With a retry
// window, the run then waits for `kiln retry`, which tries the failed
// places again, as a distribution's failed targets are.
func Retention(ctx workflow.Context, in RetentionInput) (*RetentionResult, error) {
	r := &retention{in: in, res: &RetentionResult{Pipeline: in.Pipeline, At: workflow.Now(ctx), DryRun: in.DryRun},
		images: map[activities.Place][]ami.Image{}, inUse: map[string]string{}}
	if err := workflow.SetQueryHandler(ctx, QueryRetention, func() (*RetentionResult, error) { return r.res, nil }); err != nil {
		return nil, err
	}
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, planOptions(ShortTaskQueue)),
		a.PlanRetention, in.Pipeline).Get(ctx, &r.plan); err != nil {
		return nil, err
	}
	failed := r.pass(ctx, r.plan.Places)
	if len(failed) == 0 || in.DryRun || in.RetryWindow <= 0 ||
		workflow.GetVersion(ctx, "retention-waits-for-retry", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return r.res, nil
	}
	retry := false
	err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateRetry,
		func(ctx workflow.Context) (RetryResult, error) {
			retry = true
			return RetryResult{Targets: slices.Sorted(maps.Keys(r.res.Failed))}, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context) error {
			if !r.res.WaitingForRetry || retry {
				return fmt.Errorf("retention %s is not waiting for a retry", workflow.GetInfo(ctx).WorkflowExecution.ID)
			}
			return nil
		}})
	if err != nil {
		return nil, err
	}
	deadline := workflow.Now(ctx).Add(in.RetryWindow)
	for len(failed) > 0 {
		r.res.WaitingForRetry = true
		ok, err := workflow.AwaitWithTimeout(ctx, deadline.Sub(workflow.Now(ctx)), func() bool { return retry })
		r.res.WaitingForRetry = false
		if err != nil || !ok {
			break // the window closed: the next scheduled run tries again
		}
		retry = false
		r.res.Retries++
		failed = r.pass(ctx, failed)
	}
	return r.res, nil
}

// QueryRetention answers a retention run's result so far.
const QueryRetention = "retention"

// retention is one retention run's state across its passes.
type retention struct {
	in   RetentionInput
	res  *RetentionResult
	plan activities.RetentionPlan
	// images and inUse are what each place's last good listing found.
	images map[activities.Place][]ami.Image
	inUse  map[string]string
}

// pass lists places, plans over everything listed so far, and retires
// what the plan says in those places; it returns the places that failed.
func (r *retention) pass(ctx workflow.Context, places []activities.Place) []activities.Place {
	actx := workflow.WithActivityOptions(ctx, retentionOptions(5*time.Minute))
	lists := make([]workflow.Future, len(places))
	for i, p := range places {
		lists[i] = workflow.ExecuteActivity(summarized(actx, "list AMIs in "+p.String()), a.ListAMIs,
			activities.PlaceInput{Pipeline: r.in.Pipeline, Place: p, Parameters: r.plan.Parameters[p.String()]})
	}
	var failed, listed []activities.Place
	for i, f := range lists {
		var got activities.PlaceAMIs
		if err := f.Get(ctx, &got); err != nil {
			r.res.fail(places[i], err)
			failed = append(failed, places[i])
			continue
		}
		r.images[places[i]] = got.Images
		for id, why := range got.InUse {
			if r.inUse[id] == "" {
				r.inUse[id] = why
			}
		}
		listed = append(listed, places[i])
	}
	var all []ami.Image
	placeOf := map[string]activities.Place{}
	for _, p := range slices.SortedFunc(maps.Keys(r.images), byPlace) {
		for _, im := range r.images[p] {
			placeOf[im.ID] = p
		}
		all = append(all, r.images[p]...)
	}
	r.res.Decisions = ami.Plan(all, activities.PolicyOf(r.plan.Lifecycle), r.inUse, r.res.At)
	if r.in.DryRun {
		return failed
	}
	steps := map[activities.Place][]ami.Decision{}
	for _, d := range r.res.Decisions {
		if p := placeOf[d.Image.ID]; d.Action != ami.ActionKeep && slices.Contains(listed, p) {
			steps[p] = append(steps[p], d)
		}
	}
	todo := slices.SortedFunc(maps.Keys(steps), byPlace)
	rctx := workflow.WithHeartbeatTimeout(workflow.WithActivityOptions(ctx, retentionOptions(30*time.Minute)), 2*time.Minute)
	retires := make([]workflow.Future, len(todo))
	for i, p := range todo {
		retires[i] = workflow.ExecuteActivity(summarized(rctx, "retire AMIs in "+p.String()), a.RetireAMIs,
			activities.RetireInput{Pipeline: r.in.Pipeline, Place: p, Decisions: steps[p], Now: r.res.At})
	}
	for _, p := range listed {
		delete(r.res.Failed, p.String())
	}
	for i, f := range retires {
		var n int
		if err := f.Get(ctx, &n); err != nil {
			r.res.fail(todo[i], err)
			failed = append(failed, todo[i])
			continue
		}
		r.res.Retired += n
	}
	return failed
}

func byPlace(x, y activities.Place) int { return strings.Compare(x.String(), y.String()) }

func (r *RetentionResult) fail(p activities.Place, err error) {
	if r.Failed == nil {
		r.Failed = map[string]string{}
	}
	r.Failed[p.String()] = rootMessage(err)
}

// retentionOptions retry AWS's transient failures for a while; a
// permanent one (access denied) fails its place at once.
func retentionOptions(timeout time.Duration) workflow.ActivityOptions {
	return workflow.ActivityOptions{TaskQueue: DistributeTaskQueue, StartToCloseTimeout: timeout, RetryPolicy: serviceRetries()}
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
