package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ci/kiln/activities"
)

// bake runs Packer. The activity heartbeats Packer's progress, and its AMI IDs
// as soon as Packer reports them, so a retry after a worker crash tags the
// AMIs it has instead of baking again. Cancelling waits for Packer to clean up
// its instance, key pair and security group.
func (r *pipelineRun) bake(ctx workflow.Context, plan *activities.Plan) (*activities.BakeResult, error) {
	ctx = workflow.WithActivityOptions(ctx, amiStageOptions(plan.BakeTimeout()+15*time.Minute))
	in := activities.BakeInput{
		RunID:    workflow.GetInfo(ctx).WorkflowExecution.ID,
		Pipeline: r.in.Pipeline,
		Event:    r.in.Event,
		Plan:     *plan,
		Force:    r.in.Force,
	}
	in.Event.Commit = plan.Commit
	var out activities.BakeResult
	if err := workflow.ExecuteActivity(summarized(ctx, "bake "+shortSHA(plan.Commit)+" in "+plan.Bake.Region), a.Bake, in).Get(ctx, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// amiStageOptions are the activity options of the AMI stages: long activities
// that heartbeat a checkpoint every few seconds, resume from it when retried,
// and clean up (Packer's resources, the test instance) before a cancelled run
// ends, which WaitForCancellation waits for.
func amiStageOptions(startToClose time.Duration) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		StartToCloseTimeout: startToClose,
		HeartbeatTimeout:    time.Minute,
		WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        10 * time.Second,
			BackoffCoefficient:     2,
			MaximumAttempts:        3,
			NonRetryableErrorTypes: activities.PermanentErrorTypes,
		},
	}
}
