// Package intaketest helps test kiln's webhook intakes without a Temporal
// server: a fake starter and a fuzz check of the answers. It imports
// nothing heavy, so a fuzzed test binary stays small and fast.
package intaketest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
)

// StartCall is one call a FakeStarter received.
type StartCall struct {
	Pipeline string
	Event    event.Event
	// Deadline is the context's deadline; zero when it had none.
	Deadline time.Time
}

// FakeStarter stands in for the Temporal starter behind an intake: it
// records StartRun calls and, like Temporal under kiln's workflow ID policy,
// reports a run whose ID it has seen before as already started. Dup makes
// every start a duplicate; Err fails every start, and ErrFor the starts of
// the pipelines it names. It records comment approvals too, each as
// "repo#number@commit by who", and answers each with one run,
// "kiln/pr-<number>/<commit>".
type FakeStarter struct {
	Dup    bool
	Err    error
	ErrFor map[string]error

	mu        sync.Mutex
	calls     []StartCall
	approvals []string
	seen      map[string]bool
}

// StartRun records the call and answers as described on FakeStarter.
func (f *FakeStarter) StartRun(ctx context.Context, p *config.Pipeline, ev event.Event) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	deadline, _ := ctx.Deadline()
	f.calls = append(f.calls, StartCall{Pipeline: p.Name, Event: ev, Deadline: deadline})
	id := "kiln/" + p.Name + "/" + ev.DeliveryID
	if err := f.ErrFor[p.Name]; err != nil {
		return id, false, err
	}
	if f.Err != nil {
		return "", false, f.Err
	}
	if f.seen == nil {
		f.seen = map[string]bool{}
	}
	dup := f.Dup || f.seen[id]
	f.seen[id] = true
	return id, dup, nil
}

// Calls returns the calls so far, oldest first.
func (f *FakeStarter) Calls() []StartCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]StartCall(nil), f.calls...)
}

// ApprovePullRequest records the approval and answers with one run, as
// the real starter does when a run of the commit waits.
func (f *FakeStarter) ApprovePullRequest(_ context.Context, repo string, number int, commit, by string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.approvals = append(f.approvals, fmt.Sprintf("%s#%d@%s by %s", repo, number, commit, by))
	return []string{fmt.Sprintf("kiln/pr-%d/%s", number, commit)}, nil
}

// Approvals returns the approvals so far, oldest first.
func (f *FakeStarter) Approvals() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.approvals...)
}
