package activities

import (
	"sync"

	"golang.org/x/sync/singleflight"
)

// memoLimit bounds a memo; past it the memo starts afresh. Entries are small
// and only save AWS calls, so forgetting them is harmless.
const memoLimit = 4096

// memo runs a function once per key on this worker until it succeeds:
// concurrent callers share the call in flight, later callers get its result,
// and a failure is not kept, so the next caller tries again. The distribute
// stage uses it for what every target of a run would otherwise repeat on the
// same source AMI (reading it, sharing it with an account), which is
// idempotent, so a memo lost to a restart only costs calls.
type memo struct {
	flight singleflight.Group
	mu     sync.Mutex
	done   map[string]any
}

func (m *memo) do(key string, fn func() (any, error)) (any, error) {
	m.mu.Lock()
	v, ok := m.done[key]
	m.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err, _ := m.flight.Do(key, func() (any, error) {
		v, err := fn()
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
	return v, err
}
