package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"
)

// ModeRegionalCopy is the progress mode of a same-account copy made so an AMI
// can be shared in a region other than the source's.
const ModeRegionalCopy = "regional-copy"

// ModeUpdate is the progress mode of a target's update of its SSM parameter
// and launch template in one region, after its copy or share there.
const ModeUpdate = "update"

// DistributionProgress is the distribute stage's part of the progress query.
type DistributionProgress struct {
	Targets []TargetProgress `json:"targets"`
	// WaitingForRetry is true while failed targets wait for `kiln retry`,
	// until RetryDeadline.
	WaitingForRetry bool      `json:"waiting_for_retry,omitempty"`
	RetryDeadline   time.Time `json:"retry_deadline,omitzero"`
	// Retries counts the operator retries so far.
	Retries int `json:"retries,omitempty"`
}

// TargetProgress is one target's (or regional copy's) state.
type TargetProgress struct {
	Account string `json:"account,omitempty"`
	Region  string `json:"region"`
	Mode    string `json:"mode"`
	State   string `json:"state"`
	AMI     string `json:"ami,omitempty"`
	Error   string `json:"error,omitempty"`
	// Generation counts the operator retries of this target.
	Generation int `json:"generation,omitempty"`
}

// RetryResult answers the retry update: the targets being retried.
type RetryResult struct {
	Targets []string `json:"targets"`
}

// report copies the units' states into the progress query's view.
func (d *distribution) report() {
	d.progress.Targets = d.progress.Targets[:0]
	for _, u := range d.units {
		d.progress.Targets = append(d.progress.Targets, u.TargetProgress)
	}
}

// setRetryHandlers registers the retry update and the AMI map query. The
// update's validator refuses, without a trace in history, a retry of a run
// that is not waiting for one.
func (r *pipelineRun) setRetryHandlers(ctx workflow.Context) error {
	err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateRetry,
		func(ctx workflow.Context) (RetryResult, error) {
			var res RetryResult
			for _, u := range r.dist.failed() {
				res.Targets = append(res.Targets, u.label())
			}
			r.dist.retryRequested = true
			return res, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context) error {
			if r.dist == nil || !r.dist.progress.WaitingForRetry || r.dist.retryRequested {
				return fmt.Errorf("run %s is not waiting for a retry (stage: %s)",
					workflow.GetInfo(ctx).WorkflowExecution.ID, r.progress.Stage)
			}
			return nil
		}},
	)
	if err != nil {
		return err
	}
	return workflow.SetQueryHandler(ctx, QueryAMIs, func() (AMIMap, error) {
		m := AMIMap{}
		if r.dist != nil {
			for _, u := range r.dist.units {
				if u.target() && u.State == StateSucceeded {
					m.set(u.Account, u.Region, u.AMI)
				}
			}
		}
		return m, nil
	})
}
