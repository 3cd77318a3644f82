package ami

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// memoLimit bounds a memo; past it the memo starts afresh. Entries are small
// and only save AWS calls, so forgetting them is harmless.
const memoLimit = 4096

// memoCallTimeout bounds a shared call. It runs on a context of its own, so
// it needs a bound of its own.
const memoCallTimeout = 2 * time.Minute

// Memo runs a function once per key on this worker until it succeeds:
// concurrent callers share the call in flight, later callers get its result,
// and a failure is not kept, so the next caller tries again. The distribute
// stage uses it for what every target of a run would otherwise repeat on the
// same source AMI (reading it, sharing it with an account), which is
// idempotent, so a memo lost to a restart only costs calls.
type Memo struct {
	flight singleflight.Group
	mu     sync.Mutex
	done   map[string]any
}

// Do returns the memoised value of key, calling fn when there is none. The
// call is shared by every caller of the key, so it does not run on the
// context of whichever caller started it, whose cancellation would fail all
// the others: it gets that context's values without its cancellation, and
// memoCallTimeout. Each caller still returns as soon as its own ctx ends.
func (m *Memo) Do(ctx context.Context, key string, fn func(context.Context) (any, error)) (any, error) {
	m.mu.Lock()
	v, ok := m.done[key]
	m.mu.Unlock()
	if ok {
		return v, nil
	}
	shared := context.WithoutCancel(ctx)
	ch := m.flight.DoChan(key, func() (any, error) {
		callCtx, cancel := context.WithTimeout(shared, memoCallTimeout)
		defer cancel()
		v, err := fn(callCtx)
		if err == nil {
			m.mu.Lock()
			if m.done == nil || len(m.done) >= memoLimit {
				m.done = map[string]any{}
			}
			m.done[key] = v
			m.mu.Unlock()
		}
		return v, err
	})
	select {
	case r := <-ch:
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
