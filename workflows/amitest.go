package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ci/kiln/activities"
)

// testAMI runs the test stage against the bake's AMIs. The activity heartbeats
// its instance ID as soon as EC2 returns it, so a retry takes the instance
// over instead of launching another. Cancelling waits for the activity to
// terminate the instance.
func (r *pipelineRun) testAMI(ctx workflow.Context, plan *activities.Plan, bake *activities.BakeResult) (*activities.TestResult, error) {
	ctx = workflow.WithActivityOptions(ctx, amiStageOptions(plan.TestTimeout()+10*time.Minute))
	in := activities.TestInput{
		RunID:    workflow.GetInfo(ctx).WorkflowExecution.ID,
		Pipeline: r.in.Pipeline,
		Event:    r.in.Event,
		Plan:     *plan,
		AMIs:     bake.AMIs,
	}
	in.Event.Commit = plan.Commit
	var out activities.TestResult
	if err := workflow.ExecuteActivity(summarized(ctx, "test the AMI in "+plan.TestRegion()), a.TestAMI, in).Get(ctx, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
