package starter_test

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/test/testkit"
)

const startMethod = "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution"

// stall is a gRPC client interceptor that holds a workflow start until its
// context ends, as a Temporal too busy to answer in time does: after the
// server took it (the start happened, its answer is lost) or before (it
// never did).
type stall struct {
	after   bool
	calls   atomic.Int32
	started chan struct{}
	// heldFor is how long the last held start was held, in nanoseconds.
	heldFor atomic.Int64
}

func (s *stall) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if method != startMethod {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	s.calls.Add(1)
	if s.started != nil {
		s.started <- struct{}{}
	}
	if s.after {
		if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
			return err
		}
	}
	began := time.Now()
	<-ctx.Done()
	s.heldFor.Store(int64(time.Since(began)))
	return ctx.Err()
}

// temporalThrough starts an embedded Temporal and returns a client whose
// starts go through s.
func temporalThrough(t *testing.T, s *stall) (client.Client, client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tmp, err := testkit.StartTemporal(ctx)
	require.NoError(t, err)
	t.Cleanup(tmp.Close)
	c, err := client.Dial(client.Options{HostPort: tmp.Server.Address(), Namespace: tmp.Server.Namespace(),
		Logger: testkit.QuietSDKLog(),
		ConnectionOptions: client.ConnectionOptions{DialOptions: []grpc.DialOption{
			grpc.WithChainUnaryInterceptor(s.intercept)}}})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c, tmp.Client
}

var pipeline = &config.Pipeline{Name: "p", Repo: "acme/app"}

func push(delivery string) event.Event {
	ev := event.Event{Kind: event.KindBranch, Repo: "acme/app", DeliveryID: delivery, Commit: "0123456789abcdef0123456789abcdef01234567"}
	ev.FromRef("refs/heads/main")
	return ev
}

// TestStartConfirmedByIDWhenAnswerIsLate: Temporal took the start but did
// not answer within the budget. kiln asks for the run by its ID and reports
// it started, instead of a failure that would leave the host thinking
// nothing happened.
func TestStartConfirmedByIDWhenAnswerIsLate(t *testing.T) {
	s := &stall{after: true}
	c, direct := temporalThrough(t, s)
	runs := &starter.Runs{Client: c}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	id, dup, err := runs.StartRun(ctx, pipeline, push("late-answer"))
	require.NoError(t, err)
	assert.False(t, dup)
	assert.Equal(t, "p/main/late-answer", id)
	assert.Equal(t, int32(1), s.calls.Load())
	_, err = direct.DescribeWorkflowExecution(context.Background(), id, "")
	assert.NoError(t, err, "the run exists")
}

// TestStartThatNeverHappenedIsOverloaded: the start never reached Temporal.
// kiln keeps all but the check's reserve of the 9 s budget for it, not the
// half the SDK would give, then finds no run and says it is over capacity.
func TestStartThatNeverHappenedIsOverloaded(t *testing.T) {
	s := &stall{}
	c, direct := temporalThrough(t, s)
	runs := &starter.Runs{Client: c}
	const budget = 9 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	began := time.Now()
	id, _, err := runs.StartRun(ctx, pipeline, push("never-arrived"))
	took := time.Since(began)
	var busy *starter.Overloaded
	require.ErrorAs(t, err, &busy)
	assert.Contains(t, busy.Reason, "has no such run")
	assert.Equal(t, 30*time.Second, busy.RetryAfter)
	held := time.Duration(s.heldFor.Load())
	t.Logf("the start was held %s; StartRun returned after %s of %s", held.Round(time.Millisecond), took.Round(time.Millisecond), budget)
	assert.Greater(t, held, budget/2+time.Second, "the start got more than the SDK's half of the budget")
	assert.Less(t, took, budget, "answered within the budget")
	_, err = direct.DescribeWorkflowExecution(context.Background(), id, "")
	assert.True(t, errors.As(err, new(*serviceerror.NotFound)), "no run: %v", err)
}

// TestStartsBeyondTheLimitAreRefusedEarly: with every start slot taken, a
// start waits for half its budget and is refused without reaching Temporal.
func TestStartsBeyondTheLimitAreRefusedEarly(t *testing.T) {
	s := &stall{after: true, started: make(chan struct{}, 2)}
	c, _ := temporalThrough(t, s)
	var logs bytes.Buffer
	runs := &starter.Runs{Client: c, MaxStarting: 1, Log: zerolog.New(&logs)}
	first := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
		defer cancel()
		_, _, err := runs.StartRun(ctx, pipeline, push("holds-the-slot"))
		first <- err
	}()
	<-s.started
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _, err := runs.StartRun(ctx, pipeline, push("waits"))
	var busy *starter.Overloaded
	require.ErrorAs(t, err, &busy)
	assert.Contains(t, busy.Reason, "1 starts already in flight")
	assert.Equal(t, int32(1), s.calls.Load(), "the refused start never reached Temporal")
	assert.Contains(t, logs.String(), `"level":"warn"`)
	assert.Contains(t, logs.String(), `"refused":1,"starts":2,"rate":"2/s"`, "an operator sees the overload and the rate")
	require.NoError(t, <-first, "the first start is confirmed by its ID")
}
