package workflows

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/config"
)

// ErrDistributionFailed ends a run whose failed targets were not fixed within
// the retry window; its message reports each failed target.
const ErrDistributionFailed = "DistributionFailed"

// DistributionResult is the distribute stage's output, handed to later stages.
type DistributionResult struct {
	Source activities.SourceAMI `json:"source"`
	// AMIs maps account → region → AMI ID: the copy the account owns, or the
	// AMI shared with it.
	AMIs AMIMap `json:"amis"`
	// Updates are the SSM parameter and launch template versions that point
	// at the AMIs, for each account and region of the targets that ask.
	Updates []activities.RefsResult `json:"updates,omitempty"`
}

// AMIMap maps account → region → AMI ID.
type AMIMap map[string]map[string]string

func (m AMIMap) set(account, region, ami string) {
	if m[account] == nil {
		m[account] = map[string]string{}
	}
	m[account][region] = ami
}

// distribution is the distribute stage of one run: a unit of work per
// (account, region) target, plus a same-account copy for every region other
// than the source's where an AMI is shared.
type distribution struct {
	r        *pipelineRun
	plan     *activities.Plan
	source   activities.SourceAMI
	units    []*unit
	slots    map[string]workflow.Channel // per destination region
	progress *DistributionProgress
	// retryRequested is set by the retry update while the stage waits.
	retryRequested bool
}

// unit is one activity of the distribution and its outcome.
type unit struct {
	TargetProgress
	role, kms string
	// after is the unit that must succeed first, whose AMI this one uses:
	// the same-account copy a share in another region needs, or the copy or
	// share whose AMI an update points the target at.
	after *unit
	// param and template are what an update unit points at the AMI; refs is
	// what it did.
	param    string
	template *config.LaunchTemplate
	refs     *activities.RefsResult
	done     workflow.Future
	finish   workflow.Settable
}

func (r *pipelineRun) distribute(ctx workflow.Context, plan *activities.Plan, bake *activities.BakeResult) (*DistributionResult, error) {
	src := activities.SourceAMI{Region: plan.Bake.Region, AMI: bake.AMIs[plan.Bake.Region]}
	if src.AMI == "" {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("the bake made no AMI in its region %s, so there is nothing to distribute", src.Region),
			activities.ErrInvalidDistribution, nil)
	}
	d := newDistribution(ctx, r, plan, src)
	r.dist = d
	r.progress.Distribution = d.progress
	return d.run(ctx)
}

// newDistribution lists the units in a fixed order: regional copies by region,
// then the targets as configured.
func newDistribution(ctx workflow.Context, r *pipelineRun, plan *activities.Plan, src activities.SourceAMI) *distribution {
	d := &distribution{r: r, plan: plan, source: src, slots: map[string]workflow.Channel{},
		progress: &DistributionProgress{}}
	regional := map[string]*unit{}
	for _, t := range plan.Distribute.Targets {
		for _, tr := range t.Regions {
			if t.Mode == config.ModeShare && tr.Region != src.Region && regional[tr.Region] == nil {
				regional[tr.Region] = &unit{TargetProgress: TargetProgress{Region: tr.Region, Mode: ModeRegionalCopy}}
			}
		}
	}
	for _, region := range slices.Sorted(maps.Keys(regional)) {
		d.units = append(d.units, regional[region])
	}
	var updates []*unit
	for _, t := range plan.Distribute.Targets {
		for _, tr := range t.Regions {
			u := &unit{TargetProgress: TargetProgress{Account: t.Account, Region: tr.Region, Mode: t.Mode},
				role: t.Role, kms: tr.KMSKey}
			if t.Mode == config.ModeShare {
				u.after = regional[tr.Region]
			}
			d.units = append(d.units, u)
			if t.Updates() {
				updates = append(updates, &unit{TargetProgress: TargetProgress{Account: t.Account, Region: tr.Region,
					Mode: ModeUpdate}, role: t.Role, after: u, param: t.SSMParameter, template: t.LaunchTemplate})
			}
		}
	}
	// Runs from before target updates existed have none to make.
	if len(updates) > 0 && workflow.GetVersion(ctx, ChangeTargetUpdates, workflow.DefaultVersion, 1) == 1 {
		d.units = append(d.units, updates...)
	}
	for _, u := range d.units {
		if u.copies() && d.slots[u.Region] == nil {
			d.slots[u.Region] = workflow.NewBufferedChannel(ctx, plan.MaxCopiesPerRegion())
		}
	}
	d.report()
	return d
}

// run distributes until every unit succeeded, waiting for `kiln retry` after
// each round that left units failed.
func (d *distribution) run(ctx workflow.Context) (*DistributionResult, error) {
	for {
		d.round(ctx, d.pending())
		if ctx.Err() != nil {
			return nil, temporal.NewCanceledError("cancelled")
		}
		failed := d.failed()
		if len(failed) == 0 {
			return d.result(), nil
		}
		if err := d.awaitRetry(ctx, failed); err != nil {
			return nil, err
		}
	}
}

// round runs the units in parallel, each in its own coroutine; shares wait
// for the regional copy they need.
func (d *distribution) round(ctx workflow.Context, units []*unit) {
	for _, u := range units {
		u.done, u.finish = workflow.NewFuture(ctx)
		u.State, u.Error = StatePending, ""
	}
	d.report()
	wg := workflow.NewWaitGroup(ctx)
	for _, u := range units {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			defer u.finish.Set(nil, nil)
			d.runUnit(ctx, u)
			d.report()
		})
	}
	wg.Wait(ctx)
}

// runUnit runs one unit's activity, holding a copy slot of its destination
// region while it copies.
func (d *distribution) runUnit(ctx workflow.Context, u *unit) {
	if first := u.after; first != nil {
		if first.done != nil {
			_ = first.done.Get(ctx, nil)
		}
		if first.State != StateSucceeded {
			u.State, u.Error = StateFailed, u.blocked()
			return
		}
	}
	if u.copies() {
		slots := d.slots[u.Region]
		slots.Send(ctx, struct{}{})
		defer slots.Receive(ctx, nil)
	}
	u.State = StateRunning
	d.report()
	var err error
	u.AMI, err = d.execute(ctx, u)
	switch {
	case err == nil:
		u.State = StateSucceeded
	case temporal.IsCanceledError(err):
		u.State = StateCancelled
	default:
		u.State, u.Error = StateFailed, rootMessage(err)
	}
	d.r.metrics(ctx, map[string]string{"mode": u.Mode, "outcome": u.State}).Counter("kiln_distribution_targets").Inc(1)
}

// execute runs the unit's activity and returns the AMI the target ends with.
func (d *distribution) execute(ctx workflow.Context, u *unit) (string, error) {
	runID := workflow.GetInfo(ctx).WorkflowExecution.ID
	if u.Mode == ModeUpdate {
		return d.update(ctx, u)
	}
	if !u.copies() {
		ami := d.source.AMI
		if u.after != nil {
			ami = u.after.AMI
		}
		opts := distributeOptions(5 * time.Minute)
		opts.HeartbeatTimeout = 0 // a share is a few calls, with no heartbeat
		ctx = workflow.WithActivityOptions(ctx, opts)
		var out activities.ShareResult
		ctx = summarized(ctx, fmt.Sprintf("share %s with %s/%s", ami, u.Account, u.Region))
		err := workflow.ExecuteActivity(ctx, a.ShareAMI, activities.ShareInput{
			RunID: runID, Region: u.Region, AMI: ami, Account: u.Account,
		}).Get(ctx, &out)
		return out.AMI, err
	}
	opts := distributeOptions(copyTimeout)
	// A cancelled run waits for its pending copies to be stopped: the copy
	// learns of the cancel on its next heartbeat, while the run is still
	// open, and deregisters what AWS is still copying.
	if workflow.GetVersion(ctx, "copy-waits-for-cancel", workflow.DefaultVersion, 1) == 1 {
		opts.WaitForCancellation = true
	}
	ctx = summarized(workflow.WithActivityOptions(ctx, opts), fmt.Sprintf("copy %s/%s", u.Account, u.Region))
	var out activities.CopyResult
	err := workflow.ExecuteActivity(ctx, a.CopyAMI, activities.CopyInput{
		RunID: runID, Pipeline: d.r.in.Pipeline, Source: d.source,
		Account: u.Account, Role: u.role, Region: u.Region, KMSKey: u.kms, Generation: u.Generation,
	}).Get(ctx, &out)
	return out.AMI, err
}

// update points the target's SSM parameter and launch template at the AMI
// its copy or share ended with, as the target's role. Like a share it is a
// few calls, retried as a copy is, and alone.
func (d *distribution) update(ctx workflow.Context, u *unit) (string, error) {
	opts := distributeOptions(5 * time.Minute)
	opts.HeartbeatTimeout = 0
	ctx = summarized(workflow.WithActivityOptions(ctx, opts), fmt.Sprintf("update %s/%s", u.Account, u.Region))
	var out activities.RefsResult
	err := workflow.ExecuteActivity(ctx, a.UpdateTargetRefs, activities.RefsInput{
		RunID: workflow.GetInfo(ctx).WorkflowExecution.ID, Account: u.Account, Role: u.role, Region: u.Region,
		AMI: u.after.AMI, SSMParameter: u.param, LaunchTemplate: u.template,
	}).Get(ctx, &out)
	if err != nil {
		return "", err
	}
	u.refs = &out
	return out.AMI, nil
}

// copyTimeout bounds one copy attempt; large AMIs take an hour or more to copy
// across regions.
const copyTimeout = 4 * time.Hour

// distributeOptions retry transient AWS failures with backoff for about a
// quarter of an hour before the target counts as failed and waits for an
// operator. A crashed worker's copy is noticed within the heartbeat timeout.
func distributeOptions(startToClose time.Duration) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		TaskQueue:           DistributeTaskQueue,
		StartToCloseTimeout: startToClose,
		HeartbeatTimeout:    30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        5 * time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        5 * time.Minute,
			MaximumAttempts:        8,
			NonRetryableErrorTypes: activities.PermanentErrorTypes,
		},
	}
}

// awaitRetry waits, visibly, for the retry update. It returns nil when an
// operator asked to retry, and the per-target report when the window passed.
func (d *distribution) awaitRetry(ctx workflow.Context, failed []*unit) error {
	window := d.plan.RetryWindow()
	d.progress.WaitingForRetry = true
	d.progress.RetryDeadline = workflow.Now(ctx).Add(window)
	d.r.setStageAttr(ctx, StageDistributeWaiting)
	d.r.log.Warn("distribution waits for kiln retry", "failed", len(failed), "window", window)
	ok, err := workflow.AwaitWithTimeout(ctx, window, func() bool { return d.retryRequested })
	d.progress.WaitingForRetry, d.progress.RetryDeadline = false, time.Time{}
	if err != nil {
		return err
	}
	if !ok {
		return temporal.NewNonRetryableApplicationError(report(failed, window), ErrDistributionFailed, nil)
	}
	d.retryRequested = false
	d.progress.Retries++
	for _, u := range failed {
		u.Generation++
	}
	d.r.setStageAttr(ctx, StageDistribute)
	return nil
}

// report is the message of a distribution that failed for good.
func report(failed []*unit, window time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d distribution target(s) failed and were not retried within %s:", len(failed), window)
	for _, u := range failed {
		fmt.Fprintf(&b, "\n  %s: %s", u.label(), u.Error)
	}
	return b.String()
}

func (d *distribution) pending() []*unit {
	var out []*unit
	for _, u := range d.units {
		if u.State != StateSucceeded {
			out = append(out, u)
		}
	}
	return out
}

func (d *distribution) failed() []*unit {
	var out []*unit
	for _, u := range d.units {
		if u.State == StateFailed {
			out = append(out, u)
		}
	}
	return out
}

func (d *distribution) result() *DistributionResult {
	res := &DistributionResult{Source: d.source, AMIs: AMIMap{}}
	for _, u := range d.units {
		if u.target() {
			res.AMIs.set(u.Account, u.Region, u.AMI)
		}
		if u.refs != nil {
			res.Updates = append(res.Updates, *u.refs)
		}
	}
	return res
}

// copies says whether the unit makes a copy, and so needs a region slot.
func (u *unit) copies() bool { return u.Mode == config.ModeCopy || u.Mode == ModeRegionalCopy }

// target says whether the unit is a configured target, whose AMI is the
// account's in the region.
func (u *unit) target() bool { return u.Mode == config.ModeCopy || u.Mode == config.ModeShare }

// blocked is the error of a unit whose first unit failed.
func (u *unit) blocked() string {
	if u.Mode == ModeUpdate {
		return fmt.Sprintf("updates after the %s, which failed", u.after.label())
	}
	return fmt.Sprintf("needs the copy in %s to share, which failed", u.Region)
}

// label names the unit for people: "222222222222/eu-west-1 (copy)".
func (u *unit) label() string {
	if u.Mode == ModeRegionalCopy {
		return u.Region + " (" + ModeRegionalCopy + ")"
	}
	return u.Account + "/" + u.Region + " (" + u.Mode + ")"
}
