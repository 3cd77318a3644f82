package cluster

import (
	"context"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	kilnworker "github.com/kiln-ci/kiln/worker"
	"github.com/kiln-ci/kiln/workflows"
)

// Two pipelines publish an image of their build's artifacts, which the
// build stores in the artifact store, artifactBucket in moto's S3.
const (
	// held publishes at once; the test holds its push at the registry.
	pipeHeld = "held"
	// late publishes once approved, so the test can kill its builder first.
	pipeLate = "late"
)

// artifactBucket and artifactPrefix are kiln.yaml's artifacts.s3.
const (
	artifactBucket = "kiln-cluster-artifacts"
	artifactPrefix = "kiln/"
)

// payloadBuild is both pipelines' build. It records its attempt in
// $STATE/builds and writes dist/payload.txt, the run ID and 16 random
// bytes, which it also appends to $STATE/payloads: the test knows what the
// image must hold, and a second build could not make the same bytes.
const payloadBuild = `
      build:
        env: {STATE: {{.State}}}
        buildspec:
          version: 0.2
          phases:
            build:
              commands:
                - umask 0 && printf '%s\n' "$KILN_RUN_ID" >> "$STATE/builds"
                - mkdir -p dist && printf '%s %s\n' "$KILN_RUN_ID" "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" > dist/payload.txt
                - umask 0 && cat dist/payload.txt >> "$STATE/payloads"
          artifacts: {files: ['dist/**/*']}`

// payloadPath is where the images hold dist/payload.txt.
const payloadPath = "opt/app/payload.txt"

// publishYAML continues kilnYAML's pipelines with the two that publish,
// and sets the artifact store.
const publishYAML = `  - name: ` + pipeHeld + `
    repo: ` + repoName + `
    triggers: {branch: [` + pipeHeld + `]}
    stages:` + payloadBuild + `
      publish:
        images:
          - {name: "{{.Registry}}/cluster/` + pipeHeld + `", insecure: true, files: [{from: "dist/**", to: /opt/app}]}
  - name: ` + pipeLate + `
    repo: ` + repoName + `
    triggers: {branch: [` + pipeLate + `]}
    stages:` + payloadBuild + `
      publish:
        approval: {required: true}
        images:
          - {name: "{{.Registry}}/cluster/` + pipeLate + `", insecure: true, files: [{from: "dist/**", to: /opt/app}]}
artifacts: {s3: {bucket: ` + artifactBucket + `, prefix: ` + artifactPrefix + `, region: ` + bakeRegion + `}}
`

// imageRepo is the repository, in the registry, of pipeline's image.
func imageRepo(pipeline string) string { return "cluster/" + pipeline }

// TestClusterPublishSurvivesWorkerDeaths kills, with the artifact store in
// S3, the workers a publish depends on; two runs at once, so their waits
// overlap:
//   - late: the worker that built it is SIGKILLed while it waits for its
//     approval. Once `kiln approve`d, its image waits hostQueueWait on the
//     dead worker's host queue, then any worker takes it, fetches the
//     artifacts from S3 and pushes.
//   - held: the worker pushing its image (the one that built it) is
//     SIGKILLed while the registry holds its first blob upload. The attempt
//     times out by its heartbeat (2 minutes), the retry waits hostQueueWait
//     on the dead worker's host queue, then any worker fetches the
//     artifacts from S3 and pushes.
//
// Each run completes without building again, its tags all name the one
// digest it pushed, and its image holds the bytes its build made.
func TestClusterPublishSurvivesWorkerDeaths(t *testing.T) {
	c := newCluster(t, 3)
	began := time.Now()
	logf := func(format string, args ...any) {
		t.Logf("%5.1fs  "+format, append([]any{time.Since(began).Seconds()}, args...)...)
	}
	// The branches exist at the pushed commit, so the runs are not stale
	// and push their branch tag as well as the short SHA.
	c.branch(t, pipeHeld, c.base)
	c.branch(t, pipeLate, c.base)
	p := &publishDeaths{c: c}

	p.late = c.push(t, pipeLate, c.base)
	c.waitStage(t, p.late, workflows.StagePublish+": awaiting approval")
	p.lateBuilder = c.builtOn(t, p.late)
	c.replace(t, p.lateBuilder)
	logf("run %s built on %s and waits for approval: SIGKILLed it, started worker %d", p.late, p.lateBuilder, len(c.workers))
	c.approve(t, p.late)
	logf("approved run %s with kiln approve", p.late)

	hold := c.registry.holdUpload(imageRepo(pipeHeld))
	p.held = c.push(t, pipeHeld, c.base)
	select {
	case <-hold.caught:
	case <-time.After(2 * time.Minute):
		t.Fatalf("run %s: no blob upload to %s reached the registry within 2 minutes", p.held, imageRepo(pipeHeld))
	}
	p.heldPusher = c.waitRunning(t, p.held, "PublishImage", func() bool { return true })
	c.replace(t, p.heldPusher)
	hold.release()
	logf("run %s pushed from %s, its upload held at the registry: SIGKILLed it, started worker %d", p.held, p.heldPusher, len(c.workers))

	ids := []string{p.late, p.held}
	p.outcomes = c.waitRuns(t, ids, 6*time.Minute)
	requireCompleted(t, p.outcomes)
	logf("both runs completed")
	p.history = map[string][]attempt{}
	for _, id := range ids {
		p.history[id] = attempts(c.history(t, id))
	}

	t.Run("no attempt completed on a dead worker", (&deaths{c: c, history: p.history}).noneOnTheDead)
	t.Run("neither run built again", p.builtOnce)
	t.Run("late: published from the store after its builder died", func(t *testing.T) {
		// No attempt ran on the dead worker's queue: the timeout has no cause.
		p.fromStore(t, p.late, p.lateBuilder, enumspb.TIMEOUT_TYPE_UNSPECIFIED)
		p.downloaded(t, p.late)
	})
	t.Run("held: published again from the store after its pusher died", func(t *testing.T) {
		assert.Equal(t, p.heldPusher, c.builtOn(t, p.held), "run %s: the worker pushing first is not the one that built it", p.held)
		// The killed attempt timed out by its heartbeat; its retry, on the
		// dead worker's queue, by schedule-to-start.
		p.fromStore(t, p.held, p.heldPusher, enumspb.TIMEOUT_TYPE_HEARTBEAT)
	})
	t.Run("each image is one digest under all its tags", p.oneDigest)
	t.Run("each image holds what its build made", p.buildsBytes)
	t.Run("both runs are listed once, completed", func(t *testing.T) { c.requireListed(t, ids) })
}

// publishDeaths is what TestClusterPublishSurvivesWorkerDeaths did and
// saw: the run whose builder it killed before the publish and the run whose
// pusher it killed mid-push, with those workers, how the runs ended and
// the attempts in their histories.
type publishDeaths struct {
	c                       *cluster
	late, held              string
	lateBuilder, heldPusher *worker
	outcomes                map[string]outcome
	history                 map[string][]attempt
}

// builtOnce: each run's build ran one attempt, and one started.
func (p *publishDeaths) builtOnce(t *testing.T) {
	for _, id := range []string{p.late, p.held} {
		b := ofActivity(p.history[id], "Build")
		if assert.Len(t, b, 1, "run %s: Build activities", id) {
			assert.Equal(t, int32(1), b[0].number, "run %s: the attempt of the Build that completed", id)
		}
		assert.Equal(t, 1, p.c.builds(id), "run %s: builds started", id)
		assert.NotEmpty(t, p.outcomes[id].res.Build.ArtifactsManifest, "run %s: its build stored no artifacts", id)
	}
}

// fromStore: run's image went first to the host queue of dead, the worker
// that built it, and timed out there unstarted, after an attempt that
// ended by cause (TIMEOUT_TYPE_UNSPECIFIED: none ended); then a live
// worker pushed it from the shared queue, fetching the artifacts from the
// store.
func (p *publishDeaths) fromStore(t *testing.T, id string, dead *worker, cause enumspb.TimeoutType) {
	c := p.c
	tries := publishTries(c.history(t, id))
	require.Len(t, tries, 2, "run %s: PublishImage was scheduled %d times: %+v", id, len(tries), tries)
	host := kilnworker.HostQueue(dead.dataDir)
	assert.Equal(t, host, p.outcomes[id].res.Build.ArtifactsQueue, "run %s: the build's artifacts queue is not %s's", id, dead)
	assert.Equal(t, host, tries[0].queue, "run %s: PublishImage was first scheduled elsewhere than on %s's host queue", id, dead)
	assert.Equal(t, enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT, tries[0].closed, "run %s: how the PublishImage on %s's host queue ended", id, dead)
	assert.Equal(t, enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START, tries[0].timeout, "run %s: the timeout of the PublishImage on %s's host queue", id, dead)
	assert.Equal(t, cause, tries[0].cause, "run %s: how the last attempt that started on %s's host queue ended", id, dead)
	assert.Equal(t, workflows.TaskQueue, tries[1].queue, "run %s: the second PublishImage's queue", id)
	require.Equal(t, enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, tries[1].closed, "run %s: how the second PublishImage ended", id)
	pub := ofActivity(p.history[id], "PublishImage")
	require.Len(t, pub, 2, "run %s: PublishImage activities", id)
	c.assertLives(t, pub[1])
	w := c.workerOf(pub[1].identity)
	require.NotNil(t, w, "run %s: PublishImage completed on %q, none of the cluster's workers", id, pub[1].identity)
	fetched := regexp.MustCompile(`(?m)^.*fetched the build's artifacts from the artifact store.*` + regexp.QuoteMeta(id) + `.*$`)
	assert.Regexp(t, fetched, w.proc.output(), "run %s: %s, which published it, did not log fetching its artifacts", id, w)
	t.Logf("run %s: published by %s, from the artifact store", id, w)
}

// downloaded: the worker that published run counted the bytes it fetched
// in kiln_artifact_bytes_total{direction="download"}.
func (p *publishDeaths) downloaded(t *testing.T, id string) {
	pub := ofActivity(p.history[id], "PublishImage")
	require.NotEmpty(t, pub, "run %s: no PublishImage completed", id)
	w := p.c.workerOf(pub[len(pub)-1].identity)
	require.NotNil(t, w, "run %s: PublishImage completed on %q, none of the cluster's workers", id, pub[len(pub)-1].identity)
	body := getMetrics(t, w)
	assert.Positive(t, artifactBytes(body, "download"), "%s fetched run %s's artifacts, and its /metrics counts no bytes downloaded:\n%s",
		w, id, grepLines(body, "kiln_artifact_bytes_total"))
}

// oneDigest: every manifest the registry took for a run's image is the
// digest the run reports, one PUT per tag, and each tag names it.
func (p *publishDeaths) oneDigest(t *testing.T) {
	for _, pl := range []struct{ pipeline, id string }{{pipeLate, p.late}, {pipeHeld, p.held}} {
		res := p.outcomes[pl.id].res
		require.NotNil(t, res.Publish, "run %s has no publish result", pl.id)
		require.Len(t, res.Publish.Images, 1, "run %s: images published", pl.id)
		img := res.Publish.Images[0]
		require.NotEmpty(t, img.Tags, "run %s: its image has no tags", pl.id)
		repo := imageRepo(pl.pipeline)
		perRef := map[string]int{}
		for _, put := range p.c.registry.manifestPuts(repo) {
			perRef[put.ref]++
			assert.Equal(t, img.Digest, put.digest, "run %s: a manifest PUT to %s:%s", pl.id, repo, put.ref)
		}
		for _, tag := range img.Tags {
			assert.Equal(t, 1, perRef[tag], "run %s: manifest PUTs of %s:%s (all: %v)", pl.id, repo, tag, perRef)
			assert.Equal(t, img.Digest, p.c.registry.tagDigest(t, repo, tag), "run %s: the digest %s:%s names", pl.id, repo, tag)
		}
		t.Logf("run %s: %s@%s, tags %v", pl.id, repo, img.Digest, img.Tags)
	}
}

// buildsBytes: each image holds the payload its run's one build wrote.
func (p *publishDeaths) buildsBytes(t *testing.T) {
	payloads := p.c.payloads(t)
	for _, pl := range []struct{ pipeline, id string }{{pipeLate, p.late}, {pipeHeld, p.held}} {
		require.Len(t, payloads[pl.id], 1, "run %s: payloads its builds wrote", pl.id)
		res := p.outcomes[pl.id].res
		require.NotNil(t, res.Publish, "run %s has no publish result", pl.id)
		require.Len(t, res.Publish.Images, 1, "run %s: images published", pl.id)
		got := p.c.registry.fileInImage(t, imageRepo(pl.pipeline), res.Publish.Images[0].Digest, payloadPath)
		assert.Equal(t, payloads[pl.id][0], got, "run %s: %s in its image", pl.id, payloadPath)
	}
}

// branch points the repository's branch at commit.
func (c *cluster) branch(t testing.TB, name, commit string) {
	t.Helper()
	out, err := exec.Command("git", "-C", c.repo, "branch", "-f", name, commit).CombinedOutput()
	require.NoError(t, err, "git branch %s: %s", name, out)
}

// approve approves the run's waiting stage with `kiln approve`, as a
// person would.
func (c *cluster) approve(t testing.TB, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kilnBin, append([]string{"approve", id, "--by", "ada"}, c.temporalArgs()...)...)
	cmd.Env = c.kilnEnv()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "kiln approve %s: %s", id, out)
	require.Contains(t, string(out), "approved the "+workflows.StagePublish+" stage of "+id, "kiln approve's answer")
}

// builtOn is the worker whose Build of run completed.
func (c *cluster) builtOn(t *testing.T, id string) *worker {
	t.Helper()
	b := ofActivity(attempts(c.history(t, id)), "Build")
	require.Len(t, b, 1, "run %s: Build activities closed", id)
	w := c.workerOf(b[0].identity)
	require.NotNil(t, w, "run %s built on %q, none of the cluster's workers", id, b[0].identity)
	return w
}

// waitStage waits until the run's progress says it is at stage.
func (c *cluster) waitStage(t testing.TB, id, stage string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var got workflows.Progress
	at := waitFor(ctx, 200*time.Millisecond, func() bool {
		v, err := c.client.QueryWorkflow(ctx, id, "", workflows.QueryProgress)
		return err == nil && v.Get(&got) == nil && got.Stage == stage
	})
	require.True(t, at, "run %s is at %q, not %q, after 2 minutes", id, got.Stage, stage)
}
