package ami

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMemo: concurrent callers share one call; a success is kept, a failure
// is not.
func TestMemo(t *testing.T) {
	var m Memo
	ctx := context.Background()
	var calls atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := m.Do(ctx, "k", func(context.Context) (any, error) { calls.Add(1); <-release; return 42, nil })
			assert.NoError(t, err)
			assert.Equal(t, 42, v)
		}()
	}
	for calls.Load() == 0 {
	}
	close(release)
	wg.Wait()
	_, _ = m.Do(ctx, "k", func(context.Context) (any, error) { calls.Add(1); return 0, nil })
	assert.Equal(t, int32(1), calls.Load())

	boom := errors.New("boom")
	_, err := m.Do(ctx, "f", func(context.Context) (any, error) { return nil, boom })
	assert.ErrorIs(t, err, boom)
	v, err := m.Do(ctx, "f", func(context.Context) (any, error) { return "ok", nil })
	assert.NoError(t, err)
	assert.Equal(t, "ok", v)
}

// TestMemoFirstCallerCancelled: the caller whose call is shared is cancelled
// while another waits on the same key. The shared call goes on (its context
// is not the first caller's), the waiter gets its value, and the cancelled
// caller returns at once with its own context's error.
func TestMemoFirstCallerCancelled(t *testing.T) {
	var m Memo
	started, release := make(chan struct{}), make(chan struct{})
	var callErr error
	fn := func(ctx context.Context) (any, error) {
		close(started)
		select {
		case <-release:
			return "source", nil
		case <-ctx.Done():
			callErr = ctx.Err()
			return nil, ctx.Err()
		}
	}
	firstCtx, cancelFirst := context.WithCancel(context.Background())
	firstDone := make(chan error, 1)
	go func() {
		_, err := m.Do(firstCtx, "k", fn)
		firstDone <- err
	}()
	<-started

	second := make(chan any, 1)
	go func() {
		v, err := m.Do(context.Background(), "k", func(context.Context) (any, error) {
			t.Error("the second caller must share the call in flight")
			return nil, nil
		})
		assert.NoError(t, err)
		second <- v
	}()
	time.Sleep(20 * time.Millisecond) // let the second caller join the flight

	cancelFirst()
	select {
	case err := <-firstDone:
		assert.ErrorIs(t, err, context.Canceled, "the cancelled caller returns on its own ctx")
	case <-time.After(5 * time.Second):
		t.Fatal("the cancelled caller did not return")
	}
	close(release)
	select {
	case v := <-second:
		assert.Equal(t, "source", v)
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting caller never got the value")
	}
	require.NoError(t, callErr, "the shared call must not see the first caller's cancellation")

	v, err := m.Do(context.Background(), "k", func(context.Context) (any, error) { return "again", nil })
	require.NoError(t, err)
	assert.Equal(t, "source", v, "the shared call's result is kept")
}

// TestMemoSharedCallIsBounded: the shared call has a deadline of its own.
func TestMemoSharedCallIsBounded(t *testing.T) {
	var m Memo
	_, err := m.Do(context.Background(), "k", func(ctx context.Context) (any, error) {
		d, ok := ctx.Deadline()
		assert.True(t, ok, "no deadline")
		assert.WithinDuration(t, time.Now().Add(memoCallTimeout), d, 5*time.Second)
		return nil, nil
	})
	require.NoError(t, err)
}
