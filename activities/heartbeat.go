package activities

import (
	"context"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
)

// heartbeater reports an activity's checkpoint to Temporal on every change and
// on a ticker while a long step runs. The heartbeat is also how a cancelled
// run's cancellation reaches the activity's context, and its last details are
// what a retry after a crash resumes from.
type heartbeater[T any] struct {
	ctx   context.Context
	log   *countingWriter
	stamp func(*T, int64) // records the log's size in the details
	mu    sync.Mutex
	cur   T
	done  chan struct{}
	wg    sync.WaitGroup
	send  func(context.Context, ...any) // activity.RecordHeartbeat but in tests
}

// newHeartbeater starts heartbeating cur; stamp, when not nil, writes the log's
// byte count into each beat's details.
func newHeartbeater[T any](ctx context.Context, log *countingWriter, cur T, stamp func(*T, int64)) *heartbeater[T] {
	return startHeartbeater(ctx, log, cur, stamp, activity.RecordHeartbeat)
}

func startHeartbeater[T any](ctx context.Context, log *countingWriter, cur T, stamp func(*T, int64), send func(context.Context, ...any)) *heartbeater[T] {
	h := &heartbeater[T]{ctx: ctx, log: log, stamp: stamp, cur: cur, done: make(chan struct{}), send: send}
	h.wg.Add(1)
	go h.loop()
	return h
}

// get returns the current checkpoint.
func (h *heartbeater[T]) get() T {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cur
}

// set changes the checkpoint and heartbeats it at once.
func (h *heartbeater[T]) set(change func(*T)) {
	h.mu.Lock()
	change(&h.cur)
	h.mu.Unlock()
	h.beat()
}

// beat sends the checkpoint. It keeps going after the activity is
// cancelled: cleaning up (Packer's instance, the test instance) can take
// minutes, and without beats the server would time the attempt out and the
// run would end before the cleanup it waits for.
func (h *heartbeater[T]) beat() {
	cur := h.get()
	if h.stamp != nil && h.log != nil {
		h.stamp(&cur, h.log.count())
	}
	h.send(context.WithoutCancel(h.ctx), cur)
}

func (h *heartbeater[T]) loop() {
	defer h.wg.Done()
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-h.done:
			return
		case <-t.C:
			h.beat()
		}
	}
}

func (h *heartbeater[T]) stop() {
	close(h.done)
	h.wg.Wait()
}
