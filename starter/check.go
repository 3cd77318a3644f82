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

// checkWait is how long Check and Ask wait for a worker to take a task.
var checkWait = 30 * time.Second // a var for tests

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
	if err := r.awaitWorker(ctx, run); err != nil {
		return err
	}
	return run.Get(ctx, out)
}

// awaitWorker waits, up to checkWait, until a worker has taken run's first
// workflow task (its history has grown past the start) or the run closed.
func (r *Runs) awaitWorker(ctx context.Context, run client.WorkflowRun) error {
	wait, cancel := context.WithTimeout(ctx, checkWait)
	defer cancel()
	for {
		d, err := r.Client.DescribeWorkflowExecution(wait, run.GetID(), run.GetRunID())
		if info := d.GetWorkflowExecutionInfo(); err == nil && (info.GetHistoryLength() > 2 || info.GetCloseTime() != nil) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wait.Done():
			return fmt.Errorf("%w within %s on task queue %s: is kiln dev or kiln worker running against this Temporal?",
				ErrNoWorker, checkWait, workflows.TaskQueue)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// nonce is 16 random hex digits, for workflow IDs of CLI requests.
func nonce() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
