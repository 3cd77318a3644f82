package crash

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/test/awsproxy"
	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/workflows"
)

// runTimeout bounds the whole run: a bake of a few seconds, copies pending
// for pendingFor, then the 30 s heartbeat timeout and the retry's 5 s backoff
// on a busy machine.
const runTimeout = 4 * time.Minute

// TestWorkerKilledMidDistribution is the crash the distribute stage is built
// for: SIGKILL the worker while all six copies are pending, start a new one,
// and the run finishes with nothing done twice. Temporal notices the dead
// attempts by their heartbeat timeout and retries them on the new worker,
// which resumes each copy from its checkpoint (or finds it by its
// kiln:source tag) instead of copying again.
func TestWorkerKilledMidDistribution(t *testing.T) {
	f := setUp(t)
	began := time.Now()
	logf := func(format string, args ...any) {
		t.Logf("%5.1fs  "+format, append([]any{time.Since(began).Seconds()}, args...)...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()

	first := f.startWorker(t, 1)
	id, err := f.runs.Start(ctx, starter.ManualRun{Pipeline: pipeline, Ref: "main"})
	require.NoError(t, err)
	logf("started run %s", id)

	f.waitCopiesPending(t, first, 3*time.Minute)
	killedAt := time.Now()
	first.kill(t)
	firstCopy := f.firstDistributeCopy()
	require.Less(t, killedAt.Sub(firstCopy), pendingFor, "the copies must still be pending when the worker dies")
	logf("all %d copies started and tagged, %.1fs after the first; SIGKILLed the worker's process group",
		len(targets()), killedAt.Sub(firstCopy).Seconds())

	second := f.startWorker(t, 2)
	restartedAt := time.Now()
	logf("started a new worker; waiting for the heartbeat timeout and the retries")

	var res workflows.PipelineResult
	err = f.client().GetWorkflow(ctx, id, "").Get(ctx, &res)
	require.NoError(t, ctx.Err(), "run %s did not finish within %s", id, runTimeout)
	require.NoError(t, err, "run %s", id)
	doneAt := time.Now()
	logf("run %s completed", id)

	events := f.history(t, id)
	requests := f.proxy.Requests()
	require.NotNil(t, res.Distribution, "run %s has no distribution result", id)
	source := res.Distribution.Source.AMI

	t.Run("packer ran once", func(t *testing.T) {
		assert.Equal(t, []string{id}, f.packerRuns(t))
	})
	t.Run("every target has one AMI", func(t *testing.T) {
		require.NotEmpty(t, source)
		n := 0
		for _, tg := range targets() {
			ami := res.Distribution.AMIs[tg.account][tg.region]
			if assert.NotEmpty(t, ami, "%s has no AMI in the result", tg) {
				n++
			}
			assert.Equal(t, []string{ami}, copiesOf(t, f.moto.URL, tg.account, tg.region, source),
				"%s: the images tagged %s=%s", tg, activities.TagSource, source)
		}
		assert.Equal(t, len(targets()), n, "AMIs in the result: %v", res.Distribution.AMIs)
	})
	t.Run("nothing was copied twice", func(t *testing.T) {
		for _, tg := range targets() {
			assert.Equal(t, 1, countFor(requests, "CopyImage", tg), "CopyImage calls for %s", tg)
		}
		inTargets := func(r awsproxy.Request) bool { return slices.Contains(targetAccounts, r.Account) }
		assert.Equal(t, len(targets()), countFor(requests, "CopyImage", target{}, inTargets),
			"CopyImage calls into target accounts in all")
		assert.Zero(t, countFor(requests, "CopyImage", target{}, func(r awsproxy.Request) bool {
			return r.Time.After(restartedAt)
		}), "CopyImage calls after the restart")
	})
	t.Run("the killed copies were retried and resumed", func(t *testing.T) {
		attempts := testkit.ActivityAttempts(events, "CopyAMI")
		assert.Len(t, attempts, len(targets()), "CopyAMI activities")
		for _, a := range attempts {
			assert.EqualValues(t, 2, a, "every copy was in flight when the worker died: attempts %v", attempts)
		}
		assert.Equal(t, len(targets()), resumedCopies(second.output()), "copies the new worker resumed rather than made")
	})

	logMeasurements(t, measurement{
		began: began, killed: killedAt, restarted: restartedAt, done: doneAt,
		distributing: firstScheduled(events, "CopyAMI"), requests: requests,
	})
}

// waitCopiesPending waits until every target's CopyImage was answered 200
// and the new image tagged kiln:source, failing early if the worker dies.
// Waiting for the tag, not only the copy, keeps the test about kiln: moto
// ignores CopyImage's ClientToken and TagSpecifications, which on AWS cover
// a crash between the copy and the tag.
func (f *fixture) waitCopiesPending(t *testing.T, w *workerProc, timeout time.Duration) {
	t.Helper()
	ok := func(r awsproxy.Request) bool { return r.Status == 200 }
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ready := 0
		reqs := f.proxy.Requests()
		for _, tg := range targets() {
			if countFor(reqs, "CopyImage", tg, ok) > 0 && countFor(reqs, "CreateTags", tg, ok) > 0 {
				ready++
			}
		}
		if ready == len(targets()) {
			return
		}
		if w.exited() {
			t.Fatalf("the worker exited before the copies started:\n%s", lastLines(w.output(), 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the %d copies did not all start within %s", len(targets()), timeout)
}

// firstDistributeCopy is when the proxy received the first CopyImage into a
// target account (Packer's copy to its ami_regions is the bake's).
func (f *fixture) firstDistributeCopy() time.Time {
	for _, r := range f.proxy.Requests() {
		if r.Action == "CopyImage" && slices.Contains(targetAccounts, r.Account) {
			return r.Time
		}
	}
	return time.Time{}
}

// target is one destination of the distribution; the zero target matches
// every account and region.
type target struct{ account, region string }

func (tg target) String() string { return tg.account + "/" + tg.region }

// targets lists every account × region the pipeline copies to.
func targets() []target {
	var out []target
	for _, a := range targetAccounts {
		for _, r := range targetRegions {
			out = append(out, target{a, r})
		}
	}
	return out
}

// countFor counts the recorded calls of action made as tg's account in tg's
// region that satisfy every match.
func countFor(reqs []awsproxy.Request, action string, tg target, match ...func(awsproxy.Request) bool) int {
	n := 0
next:
	for _, r := range reqs {
		if r.Action != action || (tg.account != "" && r.Account != tg.account) || (tg.region != "" && r.Region != tg.region) {
			continue
		}
		for _, m := range match {
			if !m(r) {
				continue next
			}
		}
		n++
	}
	return n
}

// resumedCopies counts the copies a worker's log reports as resumed: made by
// an earlier attempt and only waited for.
func resumedCopies(log string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "AMI copied") && strings.Contains(line, "resumed=true") {
			n++
		}
	}
	return n
}
