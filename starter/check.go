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
	var plan activities.Plan
	err := r.Ask(ctx, client.StartWorkflowOptions{
		ID:                       "kiln-check/" + workflows.IDRef(m.Pipeline) + "/" + nonce(),
		WorkflowExecutionTimeout: workflows.CheckRunTimeout,
		StaticSummary:            "kiln run checks " + summary(m.Pipeline, ev),
	}, workflows.CheckRunWorkflowName, activities.PlanInput{Pipeline: m.Pipeline, Event: ev}, &plan)
	if err != nil {
		return nil, err
	}
	return &plan, nil
}

// Ask runs a workflow on kiln's task queue for the CLI and waits for its
// result in out: the first task must be taken within checkWait, or it
// fails with ErrNoWorker naming the queue. A workflow of the same ID is
// never started twice.
func (r *Runs) Ask(ctx context.Context, opts client.StartWorkflowOptions, workflow string, arg, out any) error {
	opts.TaskQueue = workflows.TaskQueue
	opts.WorkflowIDReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
	run, err := r.Client.ExecuteWorkflow(ctx, opts, workflow, arg)
	if err != nil {
		return fmt.Errorf("start %s: %w", workflow, err)
	}
	// A worker that takes the first task within checkWait finishes the
	// rest, however long that takes.
	wait, cancel := context.WithTimeout(ctx, checkWait)
	defer cancel()
	started := make(chan struct{})
	go func() {
		defer close(started)
		for wait.Err() == nil {
			d, err := r.Client.DescribeWorkflowExecution(wait, run.GetID(), run.GetRunID())
			if err == nil && (d.GetWorkflowExecutionInfo().GetHistoryLength() > 2 || d.GetWorkflowExecutionInfo().GetCloseTime() != nil) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	<-started
	if wait.Err() != nil && ctx.Err() == nil {
		return fmt.Errorf("%w within %s on task queue %s: is kiln dev or kiln worker running against this Temporal?",
			ErrNoWorker, checkWait, workflows.TaskQueue)
	}
	return run.Get(ctx, out)
}

// nonce is 16 random hex digits, for workflow IDs of CLI requests.
func nonce() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
