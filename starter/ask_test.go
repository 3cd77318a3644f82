package starter

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/workflows"
)

// TestAskWaitsForAWorkerOnlyToStart: with no worker, Ask fails with
// ErrNoWorker after checkWait, naming the queue; once a worker has taken the
// first task, Ask waits for the result however long past checkWait it
// takes.
func TestAskWaitsForAWorkerOnlyToStart(t *testing.T) {
	defer func(d time.Duration) { checkWait = d }(checkWait)
	checkWait = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tmp, err := testkit.StartTemporal(ctx)
	require.NoError(t, err)
	defer tmp.Close()
	r := &Runs{Client: tmp.Client}

	var out string
	err = r.Ask(ctx, client.StartWorkflowOptions{ID: "ask-no-worker"}, "Slow", "x", &out)
	require.True(t, errors.Is(err, ErrNoWorker), "%v", err)
	assert.Contains(t, err.Error(), "task queue "+workflows.TaskQueue)

	w := sdkworker.New(tmp.Client, workflows.TaskQueue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(func(ctx workflow.Context, s string) (string, error) {
		return s + " done", workflow.Sleep(ctx, 3*checkWait)
	}, workflow.RegisterOptions{Name: "Slow"})
	require.NoError(t, w.Start())
	defer w.Stop()
	require.NoError(t, r.Ask(ctx, client.StartWorkflowOptions{ID: "ask-slow"}, "Slow", "x", &out))
	assert.Equal(t, "x done", out)
}
