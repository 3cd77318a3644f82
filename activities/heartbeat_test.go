package activities

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestHeartbeaterBeatsThroughCleanup: the heartbeat ticks with no changes
// (Packer waiting minutes for an AMI prints nothing), and goes on after the
// activity is cancelled, on a live context, until the activity stops it, so
// cleanup longer than the heartbeat timeout is not cut short by one.
func TestHeartbeaterBeatsThroughCleanup(t *testing.T) {
	defer func(d time.Duration) { heartbeatEvery = d }(heartbeatEvery)
	heartbeatEvery = 10 * time.Millisecond

	var mu sync.Mutex
	var beforeCancel, afterCancel int
	cancelled := false
	send := func(ctx context.Context, details ...any) {
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil {
			t.Errorf("heartbeat sent on a dead context: it would never reach the server")
		}
		if cancelled {
			afterCancel++
		} else {
			beforeCancel++
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	hb := startHeartbeater(ctx, nil, bakeCheckpoint{Step: "waiting for the AMI"}, nil, send)
	time.Sleep(20 * heartbeatEvery) // nothing changes, nothing is printed
	mu.Lock()
	cancel()
	cancelled = true
	mu.Unlock()
	time.Sleep(20 * heartbeatEvery) // cleaning up after the cancel
	hb.stop()
	mu.Lock()
	stopped := beforeCancel + afterCancel
	mu.Unlock()
	time.Sleep(5 * heartbeatEvery)

	mu.Lock()
	defer mu.Unlock()
	assert.GreaterOrEqual(t, beforeCancel, 5, "the ticker beats while nothing changes")
	assert.GreaterOrEqual(t, afterCancel, 5, "beats go on during cleanup after the cancel")
	assert.Equal(t, stopped, beforeCancel+afterCancel, "no beat after stop")
}
