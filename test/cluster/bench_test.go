package cluster

// The cluster's benchmarks (issue 12): scale-out of the 30-run mix, intake
// latency and the cost of parked runs, on Temporal with PostgreSQL. They
// report numbers for docs/benchmarks.md and never fail on a timing.
//
//	go test ./test/cluster -run '^$' -bench BenchmarkCluster -benchtime 1x -timeout 40m

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/workflows"
)

// BenchmarkClusterScaleOut runs TestClusterManyWorkers' mix, 24 builds
// and 6 AMI runs against moto, on a fresh cluster of 1 worker and then of
// 3, and reports each wall time, from the first webhook to the last run's
// completion, and their ratio. The builds only wait, as a build waits on
// its tests' services or a download, so their slots bound them, not the
// 2 cores: the quick mix's builds sleep 1 s (pipeQuick), the slow mix's 15 s
// (pipeSlow).
func BenchmarkClusterScaleOut(b *testing.B) {
	for _, build := range []string{pipeQuick, pipeSlow} {
		wall := map[int]float64{}
		for _, n := range []int{1, 3} {
			b.Run(fmt.Sprintf("mix=%s/workers=%d", build, n), func(b *testing.B) {
				wall[n] = runMix(b, newCluster(b, n), build)
				b.ReportMetric(wall[n], "wall-s")
				if n == 3 && wall[1] > 0 { // a parent benchmark's own logs and metrics are not shown
					b.ReportMetric(wall[1]/wall[3], "1w/3w")
					b.Logf("mix %s: wall time 1 worker / 3 workers = %.2f (%.1fs / %.1fs)", build, wall[1]/wall[3], wall[1], wall[3])
				}
			})
		}
	}
}

// runMix starts the mix by webhooks, every amiEvery-th run an AMI run and
// the rest runs of build, waits until all completed, and returns the
// seconds from the first webhook to then.
func runMix(b *testing.B, c *cluster, build string) float64 {
	began := time.Now()
	var ids []string
	for i := range manyRuns {
		if i%amiEvery == amiEvery-1 {
			ids = append(ids, c.push(b, pipeAMI, c.commit(b)))
		} else {
			ids = append(ids, c.push(b, build, c.base))
		}
	}
	sent := time.Since(began)
	requireCompleted(b, c.waitRuns(b, ids, 15*time.Minute))
	wall := time.Since(began).Seconds()
	b.Logf("%d workers: %d webhooks sent in %.1fs, all runs completed %.1fs after the first; longest run of each pipeline: %s",
		len(c.workers), len(ids), sent.Seconds(), wall, c.longestRuns(b, ids))
	return wall
}

// longestRuns describes, per pipeline, the longest of the runs of ids,
// from its start to its close.
func (c *cluster) longestRuns(t testing.TB, ids []string) string {
	t.Helper()
	longest := map[string]time.Duration{}
	for _, id := range ids {
		d, err := c.client.DescribeWorkflowExecution(context.Background(), id, "")
		require.NoError(t, err, "describe %s", id)
		info := d.GetWorkflowExecutionInfo()
		pipeline, _, _ := strings.Cut(id, "/")
		longest[pipeline] = max(longest[pipeline], info.GetCloseTime().AsTime().Sub(info.GetStartTime().AsTime()))
	}
	var parts []string
	for _, p := range slices.Sorted(maps.Keys(longest)) {
		parts = append(parts, fmt.Sprintf("%s %.1fs", p, longest[p].Seconds()))
	}
	return strings.Join(parts, ", ")
}

// intakeStarts is how many webhooks, and as many SDK starts, the intake
// benchmark times per iteration.
const intakeStarts = 1000

// BenchmarkClusterIntake times, against the PostgreSQL-backed server,
// a signed push POSTed to the real `kiln serve` process until it answers
// (once Temporal has made the start durable), alternated with a bare SDK
// start of the same workflow type. No kiln worker runs: an in-process stub
// worker completes the Pipeline workflows at once.
func BenchmarkClusterIntake(b *testing.B) {
	c := newCluster(b, 0)
	w := sdkworker.New(c.client, workflows.TaskQueue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(func(workflow.Context, workflows.PipelineInput) error { return nil },
		workflow.RegisterOptions{Name: workflows.PipelineWorkflowName})
	require.NoError(b, w.Start())
	b.Cleanup(w.Stop)
	waitAttributes(b, c.client)
	var seq atomic.Int64
	sdkStart := func() {
		_, err := c.client.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
			ID: fmt.Sprintf("%s/sdk-%d", pipeQuick, seq.Add(1)), TaskQueue: workflows.TaskQueue,
			WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		}, workflows.PipelineWorkflowName, workflows.PipelineInput{Pipeline: pipeQuick})
		require.NoError(b, err)
	}
	for range 20 { // warm both paths
		c.push(b, pipeQuick, c.base)
		sdkStart()
	}
	var hook, sdk []time.Duration
	b.ResetTimer()
	for range b.N * intakeStarts {
		t0 := time.Now()
		c.push(b, pipeQuick, c.base)
		hook = append(hook, time.Since(t0))
		t1 := time.Now()
		sdkStart()
		sdk = append(sdk, time.Since(t1))
	}
	b.StopTimer()
	b.ReportMetric(ms(pct(hook, 0.5)), "webhook-p50-ms")
	b.ReportMetric(ms(pct(hook, 0.99)), "webhook-p99-ms")
	b.ReportMetric(ms(pct(sdk, 0.5)), "sdk-p50-ms")
	b.ReportMetric(ms(pct(sdk, 0.99)), "sdk-p99-ms")
	b.ReportMetric(ms(pct(hook, 0.5))/ms(pct(sdk, 0.5)), "webhook/sdk-p50")
}

// waitAttributes waits until the server accepts a start that sets every
// kiln search attribute. temporalpg is ready once the frontend lists them,
// but the namespace cache the start checks them against can lag by seconds:
// a webhook right away fails with "no mapping defined for search
// attribute". A worker's start-up hides the lag; the intake benchmark has
// no worker.
func waitAttributes(t testing.TB, c client.Client) {
	t.Helper()
	var attrs []temporal.SearchAttributeUpdate
	for name := range workflows.SearchAttributes() {
		attrs = append(attrs, temporal.NewSearchAttributeKeyKeyword(name).ValueSet("probe"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	for i := 0; ctx.Err() == nil; i++ {
		_, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: fmt.Sprintf("probe-%d", i), TaskQueue: workflows.TaskQueue, TypedSearchAttributes: temporal.NewSearchAttributes(attrs...),
		}, workflows.PipelineWorkflowName, workflows.PipelineInput{Pipeline: pipeQuick})
		if err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	require.NoError(t, err, "a start with kiln's search attributes")
}

// parkedRuns is how many runs BenchmarkClusterParked parks.
const parkedRuns = 1000

// idleWindow is how long the parked benchmark samples a process's CPU.
const idleWindow = 30 * time.Second

// BenchmarkClusterParked parks 1,000 runs at the approval gate of
// untrusted pull requests, with one worker, and reports the worker's and
// the Temporal server's RSS and idle CPU before the runs and once all are
// parked, and the ratios of the two.
func BenchmarkClusterParked(b *testing.B) {
	c := newCluster(b, 1)
	pids := map[string]int{"worker": c.workers[0].proc.pid(), "temporal": c.temporal.proc.pid()}
	time.Sleep(10 * time.Second) // let start-up settle
	before := measure(b, pids)

	began := time.Now()
	parallel(b, 8, parkedRuns, func(i int) { c.pullRequest(b, i+1) })
	sent := time.Since(began)
	query := fmt.Sprintf("%s = '%s' AND %s = '%s: awaiting approval'", workflows.AttrRepo.GetName(), repoName,
		workflows.AttrStage.GetName(), workflows.StageBuild)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	var parked int64
	all := waitFor(ctx, time.Second, func() bool {
		resp, err := c.client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: namespace, Query: query})
		parked = resp.GetCount()
		return err == nil && parked == parkedRuns
	})
	require.True(b, all, "%d of %d runs parked", parked, parkedRuns)
	b.Logf("%d webhooks sent in %.1fs; all %d runs parked %.1fs after the first", parkedRuns, sent.Seconds(), parkedRuns, time.Since(began).Seconds())
	time.Sleep(10 * time.Second) // let the last tasks and visibility writes drain

	after := measure(b, pids)
	for _, name := range slices.Sorted(maps.Keys(pids)) {
		u0, u := before[name], after[name]
		b.Logf("%s: RSS %.0f → %.0f MiB (anonymous %.0f → %.0f MiB); CPU over %s idle %.0f → %.0f ms (%.2f%% → %.2f%% of a core)",
			name, u0.rssMiB, u.rssMiB, u0.anonMiB, u.anonMiB, idleWindow, u0.cpuMs, u.cpuMs, u0.cpuPct(), u.cpuPct())
		b.ReportMetric(u0.rssMiB, name+"-rss-0-MiB")
		b.ReportMetric(u.rssMiB, name+"-rss-1000-MiB")
		b.ReportMetric(u.rssMiB/u0.rssMiB, name+"-rss-ratio")
		b.ReportMetric(u0.cpuPct(), name+"-cpu-0-%")
		b.ReportMetric(u.cpuPct(), name+"-cpu-1000-%")
	}
}

// pullRequest delivers a signed pull_request opened, number n into the
// parked branch, by an author with no association with the repository, and
// returns the ID of the run it started.
func (c *cluster) pullRequest(t testing.TB, n int) string {
	t.Helper()
	repo := map[string]any{"name": "app", "full_name": repoName, "clone_url": c.repo, "default_branch": "main",
		"owner": map[string]any{"login": "cluster"}}
	body, err := json.Marshal(map[string]any{
		"action": "opened", "number": n, "repository": repo, "sender": map[string]any{"login": "outsider"},
		"pull_request": map[string]any{
			"number": n, "title": "change " + strconv.Itoa(n), "user": map[string]any{"login": "outsider"},
			"author_association": "NONE",
			"head":               map[string]any{"ref": "change-" + strconv.Itoa(n), "sha": c.base, "repo": repo},
			"base":               map[string]any{"ref": pipeParked, "sha": c.base, "repo": repo},
		},
	})
	require.NoError(t, err)
	req, err := testkit.GitHubDelivery(c.hook, hookSecret, "pull_request", testkit.NewDeliveryID(), body)
	require.NoError(t, err)
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	require.NoError(t, err, "webhook to kiln serve")
	defer resp.Body.Close()
	var out struct {
		Started []struct {
			WorkflowID string `json:"workflow_id"`
		} `json:"started"`
	}
	require.Equal(t, http.StatusOK, resp.StatusCode, "kiln serve's answer to pull request #%d", n)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	require.Len(t, out.Started, 1, "runs pull request #%d started", n)
	return out.Started[0].WorkflowID
}

// usage is a process's resident memory, all of it and its anonymous part
// (heap and stacks, not the mapped binary), and the CPU it used over
// idleWindow.
type usage struct {
	rssMiB, anonMiB, cpuMs float64
}

// cpuPct is the CPU used as a percentage of one core.
func (u usage) cpuPct() float64 { return 100 * u.cpuMs / float64(idleWindow.Milliseconds()) }

// measure samples the CPU of each of pids over the same idleWindow, and
// their memory at its end.
func measure(t testing.TB, pids map[string]int) map[string]usage {
	t.Helper()
	ticks := map[string]int64{}
	for name, pid := range pids {
		ticks[name] = cpuTicks(t, pid)
	}
	time.Sleep(idleWindow)
	out := map[string]usage{}
	for name, pid := range pids {
		out[name] = usage{rssMiB: statusKiB(t, pid, "VmRSS") / 1024, anonMiB: statusKiB(t, pid, "RssAnon") / 1024,
			cpuMs: float64(cpuTicks(t, pid)-ticks[name]) * 1000 / clockTicks}
	}
	return out
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux architecture Go runs on.
const clockTicks = 100

// cpuTicks is pid's utime+stime, from /proc/<pid>/stat.
func cpuTicks(t testing.TB, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	// The command name, in parentheses, may hold spaces; utime and stime
	// are the 12th and 13th fields after it.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	require.NoError(t, err1)
	require.NoError(t, err2)
	return utime + stime
}

// statusKiB is the field key (VmRSS, RssAnon) of /proc/<pid>/status.
func statusKiB(t testing.TB, pid int, key string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			kib, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			require.NoError(t, err)
			return kib
		}
	}
	t.Fatalf("no %s in /proc/%d/status", key, pid)
	return 0
}

// parallel calls fn(0) … fn(n-1) on c goroutines, and stops t if one
// failed it.
func parallel(t testing.TB, c, n int, fn func(int)) {
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range c {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && !t.Failed(); i = int(next.Add(1) - 1) {
				fn(i)
			}
		})
	}
	wg.Wait()
	if t.Failed() { // fn's require calls only stopped their own goroutine
		t.FailNow()
	}
}

// pct is the p-th quantile of ds.
func pct(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
