package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ci/kiln/activities"
)

// CheckRunWorkflowName is the workflow `kiln run` asks before it starts a
// run: only a worker has the config and the repositories' credentials.
const CheckRunWorkflowName = "CheckRun"

// CheckRunTimeout bounds a check: a worker answers in seconds, and a check
// nobody picks up must not linger.
const CheckRunTimeout = time.Minute

// CheckRun plans a run without starting it, so that a typo in a pipeline's
// name or a ref that does not exist starts nothing and names what does.
// It is the run's own Plan, on the short queue, and has no side effects.
func CheckRun(ctx workflow.Context, in activities.PlanInput) (*activities.Plan, error) {
	// A person waits for the answer: fewer, shorter attempts than a run's.
	opts := planOptions(ShortTaskQueue)
	opts.StartToCloseTimeout, opts.RetryPolicy.MaximumAttempts = 30*time.Second, 3
	ctx = workflow.WithActivityOptions(ctx, opts)
	var plan activities.Plan
	if err := workflow.ExecuteActivity(summarized(ctx, "plan "+in.Pipeline+" at "+in.Event.RefLabel()), a.Plan, in).Get(ctx, &plan); err != nil {
		return nil, err
	}
	return &plan, nil
}
