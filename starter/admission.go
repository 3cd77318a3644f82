package starter

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Overloaded is the error of a start kiln refused, or could not confirm in
// time, because Temporal is not keeping up. Nothing was started, so the
// sender may retry after RetryAfter, and the run's ID keeps the retry from
// starting it twice. Intakes answer it with 503 and Retry-After.
type Overloaded struct {
	RetryAfter time.Duration
	Reason     string
}

func (e *Overloaded) Error() string {
	return fmt.Sprintf("kiln is over capacity: %s; retry after %s", e.Reason, e.RetryAfter)
}

// retryAfter is what an overloaded kiln asks senders to wait.
const retryAfter = 30 * time.Second

// DefaultMaxStarting bounds the starts in flight to Temporal at once, so a
// flood cannot pile up goroutines and RPCs without end: past it, starts wait
// in kiln, and one whose wait cannot fit half its answer budget is refused
// at once. It is a flood guard, not a throttle: measured on 2 cores, a limit
// of 64 refused deliveries at 200/s that no limit answered, because the
// server gets through concurrent starts faster than queued ones
// (docs/benchmarks.md).
const DefaultMaxStarting = 1024

// admission hands out the slots for starts in flight and watches how many
// it refuses, to warn an operator.
type admission struct {
	slots chan struct{}
	log   zerolog.Logger

	mu sync.Mutex
	// window counts starts since since; warned says the window's first
	// refusal was logged.
	since             time.Time
	attempts, refused int
	warned            bool
}

// warnEvery is the window over which refusals are counted and reported.
const warnEvery = 10 * time.Second

func newAdmission(size int, log zerolog.Logger) *admission {
	if size <= 0 {
		size = DefaultMaxStarting
	}
	return &admission{slots: make(chan struct{}, size), log: log, since: time.Now()}
}

// acquire waits for a slot until wait has passed or ctx ends; release gives
// it back. On timeout it returns *Overloaded.
func (a *admission) acquire(ctx context.Context, wait time.Duration) (release func(), err error) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case a.slots <- struct{}{}:
		a.note(false)
		return func() { <-a.slots }, nil
	case <-t.C:
		a.note(true)
		return nil, &Overloaded{RetryAfter: retryAfter,
			Reason: fmt.Sprintf("%d starts already in flight to Temporal for %s", cap(a.slots), wait.Round(100*time.Millisecond))}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// refusedLate counts a start refused after it got its slot (Temporal did
// not confirm it in time, or refused it for lack of resources); acquire
// counted the start itself.
func (a *admission) refusedLate() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refused++
	if !a.warned {
		a.warned = true
		a.warn("kiln is over capacity: answering webhooks 503 with Retry-After", time.Since(a.since))
	}
}

// note counts a start, and warns on the first refusal of a window and,
// when the window closes, with how many it refused in all.
func (a *admission) note(refused bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	if elapsed := now.Sub(a.since); elapsed >= warnEvery {
		if a.refused > 0 {
			a.warn("webhook starts were refused for overload", elapsed)
		}
		a.since, a.attempts, a.refused, a.warned = now, 0, 0, false
	}
	a.attempts++
	if !refused {
		return
	}
	a.refused++
	if !a.warned {
		a.warned = true
		a.warn("kiln is over capacity: answering webhooks 503 with Retry-After", now.Sub(a.since))
	}
}

func (a *admission) warn(msg string, elapsed time.Duration) {
	a.log.Warn().
		Int("refused", a.refused).
		Int("starts", a.attempts).
		Str("rate", fmt.Sprintf("%.0f/s", float64(a.attempts)/max(elapsed.Seconds(), 1))).
		Dur("window", elapsed.Round(time.Second)).
		Int("in_flight_limit", cap(a.slots)).
		Msg(msg)
}
