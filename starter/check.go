package starter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/workflows"
)

// ErrNoWorker means no kiln worker answered a check in time.
var ErrNoWorker = errors.New("no kiln worker answered")

// checkWait is how long Check waits for a worker.
const checkWait = 30 * time.Second

// Check plans the on-demand run m on a worker without starting it: the
// pipeline must exist and allow manual runs, and the ref (or commit) must
// be in its repository. It returns the plan, or the worker's reason, which
// names what exists ("pipelines: ok, broken").
func (r *Runs) Check(ctx context.Context, m ManualRun) (*activities.Plan, error) {
	ev := event.Event{Kind: event.KindManual, Commit: m.Commit}
	ev.FromRef(m.Ref)
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce)
	run, err := r.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       "kiln-check/" + workflows.IDRef(m.Pipeline) + "/" + hex.EncodeToString(nonce),
		TaskQueue:                workflows.TaskQueue,
		WorkflowExecutionTimeout: workflows.CheckRunTimeout,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		StaticSummary:            "kiln run checks " + summary(m.Pipeline, ev),
	}, workflows.CheckRunWorkflowName, activities.PlanInput{Pipeline: m.Pipeline, Event: ev})
	if err != nil {
		return nil, fmt.Errorf("check the run: %w", err)
	}
	wait, cancel := context.WithTimeout(ctx, checkWait)
	defer cancel()
	var plan activities.Plan
	if err := run.Get(wait, &plan); err != nil {
		if wait.Err() != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("%w within %s on task queue %s: is kiln dev or kiln worker running against this Temporal?",
				ErrNoWorker, checkWait, workflows.TaskQueue)
		}
		return nil, err
	}
	return &plan, nil
}
