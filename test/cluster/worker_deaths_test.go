package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/test/awsproxy"
)

// copyPending is how long the proxy holds the copies into copyAccount
// pending: long enough to kill the worker waiting on one, short enough
// that it is available when Temporal retries the killed attempt (after
// the copy's 30 s heartbeat timeout).
const copyPending = 20 * time.Second

// bystanders is how many quick runs are started while workers die.
const bystanders = 6

// TestClusterWorkerDeaths SIGKILLs, one after another, the worker running
// a build, the worker running a bake and the worker waiting on an AMI
// copy, each time starting a fresh worker in its place, while other runs
// come in. Every run completes; the killed attempts are retried, by their
// heartbeat timeouts, on workers that live; a bake that completed is never
// run again, the killed bake leaves one AMI, and the killed copy is resumed
// rather than copied again.
//
// Deaths around the publish stage (issue 12: a worker killed mid-push, and
// a publish after the building worker died) are
// TestClusterPublishSurvivesWorkerDeaths's, with the artifact store in S3.
func TestClusterWorkerDeaths(t *testing.T) {
	c := newCluster(t, 3)
	c.proxy.PendingWhere(copyPending, func(r awsproxy.Request) bool { return r.Account == copyAccount })
	began := time.Now()
	logf := func(format string, args ...any) {
		t.Logf("%5.1fs  "+format, append([]any{time.Since(began).Seconds()}, args...)...)
	}
	d := &deaths{c: c}
	bystand := func() {
		for range bystanders / 3 {
			d.others = append(d.others, c.push(t, pipeQuick, c.base))
		}
	}

	d.build = c.push(t, pipeSlow, c.base)
	w := c.waitRunning(t, d.build, "Build", func() bool { return c.builds(d.build) > 0 })
	c.replace(t, w)
	logf("run %s built on %s: SIGKILLed it, started worker %d", d.build, w, len(c.workers))
	bystand()

	d.bake = c.push(t, pipeSlowBake, c.commit(t))
	w = c.waitRunning(t, d.bake, "Bake", func() bool { return c.packerCount(t, d.bake) > 0 })
	c.replace(t, w)
	logf("run %s baked (packer running) on %s: SIGKILLed it, started worker %d", d.bake, w, len(c.workers))
	bystand()

	d.copy = c.push(t, pipeCopy, c.commit(t))
	w = c.waitRunning(t, d.copy, "CopyAMI", c.copiesStarted)
	c.replace(t, w)
	logf("run %s waited on AMI copies on %s: SIGKILLed it, started worker %d", d.copy, w, len(c.workers))
	bystand()

	ids := append([]string{d.build, d.bake, d.copy}, d.others...)
	d.outcomes = c.waitRuns(t, ids, 5*time.Minute)
	requireCompleted(t, d.outcomes)
	logf("all %d runs completed", len(ids))
	d.history = map[string][]attempt{}
	for _, id := range ids {
		d.history[id] = attempts(c.history(t, id))
	}
	t.Logf("activities completed, per worker:\n%s", describeSpread(c.spread(t, ids)))

	t.Run("no attempt completed on a dead worker", d.noneOnTheDead)
	t.Run("the killed build ran again elsewhere", d.buildRetried)
	t.Run("the killed bake left one AMI", d.oneAMI)
	t.Run("no bake ran again after it completed", d.noRebake)
	t.Run("the killed copy was resumed, not copied again", d.copyResumed)
	t.Run("every run is listed once, completed", func(t *testing.T) { c.requireListed(t, ids) })
}

// deaths is what TestClusterWorkerDeaths did and saw: the runs whose
// build, bake and copy it killed, the quick runs started meanwhile, how
// every run ended and the attempts in its history.
type deaths struct {
	c                 *cluster
	build, bake, copy string
	others            []string
	outcomes          map[string]outcome
	history           map[string][]attempt
}

// noneOnTheDead: no worker reported an attempt closed after it was killed.
func (d *deaths) noneOnTheDead(t *testing.T) {
	for id, as := range d.history {
		for _, a := range as {
			if w := d.c.workerOf(a.closedBy); w != nil && !w.killedAt.IsZero() && a.at.After(w.killedAt) {
				t.Errorf("run %s: %s attempt %d was reported closed by %s at %s, after it was killed at %s",
					id, a.activity, a.number, w, a.at.Format(time.TimeOnly), w.killedAt.Format(time.TimeOnly))
			}
		}
	}
}

// buildRetried: the killed build's retry completed on a live worker, and
// each attempt that started shows in $STATE/builds.
func (d *deaths) buildRetried(t *testing.T) {
	b := ofActivity(d.history[d.build], "Build")
	require.Len(t, b, 1, "Build activities of %s", d.build)
	assert.GreaterOrEqual(t, b[0].number, int32(2), "the killed build was retried")
	d.c.assertLives(t, b[0])
	assert.Equal(t, int(b[0].number), d.c.builds(d.build), "build attempts that started, and the attempt that completed")
}

// oneAMI: the killed bake's retry made the run's only AMI, in the bake
// region and in the template's ami_regions.
func (d *deaths) oneAMI(t *testing.T) {
	c := d.c
	b := ofActivity(d.history[d.bake], "Bake")
	require.Len(t, b, 1, "Bake activities of %s", d.bake)
	assert.GreaterOrEqual(t, b[0].number, int32(2), "the killed bake was retried")
	c.assertLives(t, b[0])
	ami := d.outcomes[d.bake].res.Bake.AMI()
	assert.Equal(t, []string{ami}, c.imagesTagged(t, "", bakeRegion, activities.TagRun, d.bake),
		"AMIs tagged %s=%s in %s", activities.TagRun, d.bake, bakeRegion)
	assert.Len(t, c.imagesTagged(t, "", "us-west-2", activities.TagRun, d.bake), 1,
		"AMIs tagged %s=%s in us-west-2 (the template's ami_regions)", activities.TagRun, d.bake)
	t.Logf("packer ran %d times for %s", c.packerCount(t, d.bake), d.bake)
}

// noRebake: no packer started for a run after its bake completed, and the
// copy run, whose worker died after its bake, baked once.
func (d *deaths) noRebake(t *testing.T) {
	c := d.c
	for _, id := range []string{d.bake, d.copy} {
		b := ofActivity(d.history[id], "Bake")
		require.Len(t, b, 1, "Bake activities of %s", id)
		for _, p := range c.packerRuns(t) {
			assert.False(t, p.run == id && p.at.After(b[0].at), "run %s: packer started at %s, after the bake completed at %s",
				id, p.at.Format(time.StampMilli), b[0].at.Format(time.StampMilli))
		}
	}
	assert.Equal(t, int32(1), ofActivity(d.history[d.copy], "Bake")[0].number, "run %s: Bake attempts", d.copy)
	assert.Equal(t, 1, c.packerCount(t, d.copy), "run %s: packer runs", d.copy)
}

// copyResumed: the killed copy was retried on a live worker, which waited
// on the image the first attempt made: one CopyImage and one image per
// region.
func (d *deaths) copyResumed(t *testing.T) {
	c := d.c
	res := d.outcomes[d.copy].res
	require.NotNil(t, res.Distribution, "run %s has no distribution", d.copy)
	src := res.Distribution.Source.AMI
	retried := 0
	for _, a := range ofActivity(d.history[d.copy], "CopyAMI") {
		if a.number > 1 {
			retried++
			c.assertLives(t, a)
		}
	}
	assert.Positive(t, retried, "no CopyAMI of %s was retried, though its worker was killed", d.copy)
	for _, region := range copyRegions {
		ami := res.Distribution.AMIs[copyAccount][region]
		assert.NotEmpty(t, ami, "run %s: no AMI in %s/%s", d.copy, copyAccount, region)
		assert.Equal(t, []string{ami}, c.imagesTagged(t, copyAccount, region, activities.TagSource, src),
			"%s/%s: images tagged %s=%s", copyAccount, region, activities.TagSource, src)
		assert.Equal(t, 1, c.calls("CopyImage", copyAccount, region, ok), "%s/%s: CopyImage calls", copyAccount, region)
	}
}

// assertLives checks that the attempt a completed on a worker of the
// cluster that the test has not killed.
func (c *cluster) assertLives(t *testing.T, a attempt) {
	t.Helper()
	w := c.workerOf(a.identity)
	if assert.NotNil(t, w, "%s attempt %d ran on %q, none of the cluster's workers", a.activity, a.number, a.identity) {
		assert.True(t, w.killedAt.IsZero(), "%s attempt %d ran on %s, which the test killed", a.activity, a.number, w)
	}
}

// replace SIGKILLs w and starts a new worker in its place.
func (c *cluster) replace(t *testing.T, w *worker) {
	t.Helper()
	c.kill(t, w)
	c.startWorker(t)
}

// waitRunning waits until a worker has started the named activity of run
// and ready reports it under way, and returns that worker. It fails the
// test if that does not happen within two minutes.
func (c *cluster) waitRunning(t *testing.T, run, activity string, ready func() bool) *worker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var w *worker
	found := waitFor(ctx, 100*time.Millisecond, func() bool {
		if !ready() {
			return false
		}
		w = c.pendingOn(t, run, activity)
		return w != nil && w.killedAt.IsZero()
	})
	if !found {
		d, err := c.client.DescribeWorkflowExecution(context.Background(), run, "")
		status := enumspb.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED
		if err == nil {
			status = d.GetWorkflowExecutionInfo().GetStatus()
		}
		t.Fatalf("run %s (status %s): no live worker ran %s under way within 2 minutes", run, status, activity)
	}
	return w
}

// packerCount is how many times packer ran for run.
func (c *cluster) packerCount(t *testing.T, run string) int {
	n := 0
	for _, p := range c.packerRuns(t) {
		if p.run == run {
			n++
		}
	}
	return n
}

// copiesStarted reports whether every copy into copyAccount was made and
// tagged with its source, so a worker waiting on one is mid-copy.
func (c *cluster) copiesStarted() bool {
	for _, region := range copyRegions {
		if c.calls("CopyImage", copyAccount, region, ok) == 0 || c.calls("CreateTags", copyAccount, region, ok) == 0 {
			return false
		}
	}
	return true
}

// ok matches the requests AWS (moto) answered 200.
func ok(r awsproxy.Request) bool { return r.Status == 200 }
