package activities

import (
	"context"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
)

// heartbeater reports a build's progress to Temporal on every step change and
// on a ticker while a long command runs. The heartbeat is also how a cancelled
// run's cancellation reaches the activity's context.
type heartbeater struct {
	ctx  context.Context
	log  *countingWriter
	mu   sync.Mutex
	cur  BuildProgress
	done chan struct{}
	wg   sync.WaitGroup
}

func newHeartbeater(ctx context.Context, log *countingWriter) *heartbeater {
	h := &heartbeater{ctx: ctx, log: log, done: make(chan struct{})}
	h.wg.Add(1)
	go h.loop()
	return h
}

func (h *heartbeater) set(p BuildProgress) {
	h.mu.Lock()
	h.cur = p
	h.mu.Unlock()
	h.beat()
}

func (h *heartbeater) beat() {
	h.mu.Lock()
	p := h.cur
	h.mu.Unlock()
	p.LogBytes = h.log.count()
	activity.RecordHeartbeat(h.ctx, p)
}

func (h *heartbeater) loop() {
	defer h.wg.Done()
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-h.done:
			return
		case <-h.ctx.Done():
			return
		case <-t.C:
			h.beat()
		}
	}
}

func (h *heartbeater) stop() {
	close(h.done)
	h.wg.Wait()
}
