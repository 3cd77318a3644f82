package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	bkclient "github.com/moby/buildkit/client"

	"github.com/kiln-ci/kiln/internal/buildkit"
	"github.com/kiln-ci/kiln/internal/buildspec"
)

// The container benchmarks need root, runc and buildkitd, as
// test/dockerfile does. Each reports its own figures in ms (medians) and
// their ratio to a baseline timed in the same iterations; ns/op is zeroed
// where it would only be the sum of both. Run them alone:
//
//	go test ./test/bench -run '^$' -bench Container -benchtime 20x -count 5 -timeout 60m

// BenchmarkContainerPipeline runs one buildspec as a whole pipeline run,
// start to result through Temporal, on the worker and in busybox,
// alternating which goes first. The image's first pull happens before the
// timer starts: a worker's cache is warm after its first build.
func BenchmarkContainerPipeline(b *testing.B) {
	r := newCtrRig(b)
	r.run(b, ctrOnHost)
	r.run(b, ctrInBox)
	var host, box, hostStage, boxStage latencies
	b.ResetTimer()
	for i := range b.N {
		order := []string{ctrOnHost, ctrInBox}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, p := range order {
			settle(b)
			t0 := time.Now()
			stage := r.run(b, p)
			wall := time.Since(t0)
			if p == ctrOnHost {
				host.add(wall)
				hostStage.add(stage)
			} else {
				box.add(wall)
				boxStage.add(stage)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(host.pct(0.5), "host-ms")
	b.ReportMetric(box.pct(0.5), "busybox-ms")
	b.ReportMetric(box.pct(0.5)/host.pct(0.5), "busybox/host")
	b.ReportMetric(box.pct(0.5)-host.pct(0.5), "busybox-host-ms")
	b.ReportMetric(hostStage.pct(0.5), "host-stage-ms")
	b.ReportMetric(boxStage.pct(0.5), "busybox-stage-ms")
}

// BenchmarkContainerBuildspec runs the same buildspec without Temporal or
// git: buildspec.Run on the host, in a fresh copy of the checkout, against
// Open, Run and Close of a busybox container, each timed. It also times
// Open and Close of a container with an empty source and no commands: a
// container's fixed cost. Each command's median on both sides is logged.
func BenchmarkContainerBuildspec(b *testing.B) {
	ctrs := startContainers(b)
	bk := dialBuildKit(b, ctrs)
	spec, err := buildspec.Parse("buildspec.yml", []byte(ctrBuildspec))
	if err != nil {
		b.Fatal(err)
	}
	scratch, empty := b.TempDir(), b.TempDir()
	src := filepath.Join(scratch, "src")
	writeTree(b, src, ctrRepoFiles())
	runInBox(b, bk, ctrs.Busybox, spec, src, scratch, newCmdClock()) // the image's first pull
	var host, box, boxOpen, boxRun, boxClose, empties latencies
	hostCmds, boxCmds := newCmdClock(), newCmdClock()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		work := filepath.Join(scratch, fmt.Sprint("host-", i))
		writeTree(b, work, ctrRepoFiles())
		b.StartTimer()
		settle(b)
		t0 := time.Now()
		res, err := spec.Run(context.Background(), buildspec.RunOptions{
			Dir: work, ArtifactsDir: filepath.Join(scratch, fmt.Sprint("host-art-", i)), Progress: hostCmds.progress(),
		})
		host.add(time.Since(t0))
		checkRun(b, "host", res, err)

		settle(b)
		opened, ran, closed := runInBox(b, bk, ctrs.Busybox, spec, src, filepath.Join(scratch, fmt.Sprint("box-art-", i)), boxCmds)
		box.add(opened + ran + closed)
		boxOpen.add(opened)
		boxRun.add(ran)
		boxClose.add(closed)

		settle(b)
		t1 := time.Now()
		openClose(b, bk, ctrs.Busybox, empty)
		empties.add(time.Since(t1))
		b.StopTimer()
		clearDir(b, scratch, "src")
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(host.pct(0.5), "host-ms")
	b.ReportMetric(box.pct(0.5), "busybox-ms")
	b.ReportMetric(box.pct(0.5)/host.pct(0.5), "busybox/host")
	b.ReportMetric(box.pct(0.5)-host.pct(0.5), "busybox-host-ms")
	b.ReportMetric(boxOpen.pct(0.5), "busybox-open-ms")
	b.ReportMetric(boxRun.pct(0.5), "busybox-run-ms")
	b.ReportMetric(boxClose.pct(0.5), "busybox-close-ms")
	b.ReportMetric(empties.pct(0.5), "empty-open+close-ms")
	var cmds strings.Builder
	for n := 1; n <= len(spec.Phases.Build.Commands); n++ {
		fmt.Fprintf(&cmds, " %d: %.1f/%.1f;", n, hostCmds.median(n), boxCmds.median(n))
	}
	b.Logf("median ms per command, host/busybox:%s", cmds.String())
}

// dfContext is the benchmarked Dockerfile's build context: COPYs of the
// context, a RUN loop, a RUN that compresses, and one that hashes.
var dfContext = fstest.MapFS{
	"Dockerfile": {Data: []byte(`ARG BASE
FROM ${BASE}
COPY input/ /src/input/
RUN mkdir -p /out && i=0; while [ $i -lt 500 ]; do echo "line $i" >> /out/lines.txt; i=$((i+1)); done
RUN head -c 2000000 /dev/urandom > /out/noise.bin && tar -C / -cf - src out | gzip -6 > /out/bundle.tar.gz
COPY app.sh /app/app.sh
RUN sha256sum /out/* /app/app.sh > /app/SUMS
WORKDIR /app
`)},
	"app.sh": {Data: []byte("#!/bin/sh\ncat SUMS\n"), Mode: 0o755},
}

// BenchmarkContainerDockerfile builds one Dockerfile on busybox cold, after
// pruning all of BuildKit's cache (the base's layers included, so it is
// pulled again from the loopback registry), then again from cache. Both
// export the image to a fresh OCI layout, as the publish stage does.
func BenchmarkContainerDockerfile(b *testing.B) {
	ctrs := startContainers(b)
	bk := dialBuildKit(b, ctrs)
	raw, err := bkclient.New(context.Background(), ctrs.Daemon.Address)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { raw.Close() })
	scratch := b.TempDir()
	ctxDir := filepath.Join(scratch, "context")
	writeTree(b, ctxDir, dfContext)
	writeTree(b, ctxDir, ctrRepoFiles())
	build := func(i int, kind string) (string, string, time.Duration) {
		var progress bytes.Buffer
		t0 := time.Now()
		built, err := bk.BuildDockerfile(context.Background(), buildkit.Dockerfile{
			Context: ctxDir, File: filepath.Join(ctxDir, "Dockerfile"),
			BuildArgs: map[string]string{"BASE": ctrs.BusyboxTag},
			Bases:     map[string]string{ctrs.BusyboxTag: ctrs.Busybox},
			Epoch:     time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			Layout:    filepath.Join(scratch, fmt.Sprintf("%s-%d", kind, i)),
			Progress:  &progress,
		})
		took := time.Since(t0)
		if err != nil {
			b.Fatalf("%s build: %v\n%s", kind, err, progress.String())
		}
		return built.Digest, progress.String(), took
	}
	var cold, cached latencies
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		if err := raw.Prune(context.Background(), nil, bkclient.PruneAll); err != nil {
			b.Fatalf("prune: %v", err)
		}
		b.StartTimer()
		settle(b)
		d1, p1, t1 := build(i, "cold")
		settle(b)
		d2, p2, t2 := build(i, "cached")
		b.StopTimer()
		switch {
		case d1 != d2:
			b.Fatalf("cold built %s, cached %s", d1, d2)
		case strings.Contains(p1, "CACHED"):
			b.Fatalf("the cold build used the cache:\n%s", p1)
		case strings.Count(p2, "CACHED") < 5:
			b.Fatalf("the cached build ran steps again:\n%s", p2)
		}
		cold.add(t1)
		cached.add(t2)
		clearDir(b, scratch, "context")
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(cold.pct(0.5), "cold-ms")
	b.ReportMetric(cached.pct(0.5), "cached-ms")
	b.ReportMetric(cold.pct(0.5)/cached.pct(0.5), "cold/cached")
}

// BenchmarkContainerDaemonStart times StartDaemon, which returns once
// ListWorkers answers, on a fresh root and then on the same root again
// after the first daemon pulled busybox, ran a container and stopped: a
// worker's restart. Stop is timed too.
func BenchmarkContainerDaemonStart(b *testing.B) {
	ctrs := startContainers(b) // for its registry; its own daemon is stopped
	ctrs.Daemon.Stop()
	scratch, empty := b.TempDir(), b.TempDir()
	// start returns the daemon, how long StartDaemon took, and when a
	// probe polling every 5 ms first had an answer: StartDaemon itself
	// polls every 100 ms.
	start := func(root string) (*buildkit.Daemon, time.Duration, time.Duration) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		address := "unix://" + filepath.Join(root, "buildkitd.sock")
		t0 := time.Now()
		ready := probeReady(ctx, address, t0)
		d, err := buildkit.StartDaemon(ctx, buildkit.DaemonOptions{
			Root: root, Binary: os.Getenv("KILN_BUILDKITD"), InsecureRegistries: []string{ctrs.Registry},
		})
		took := time.Since(t0)
		switch {
		case err != nil:
			b.Fatal(err)
		case d.Address != address:
			b.Fatalf("the daemon is at %s, the probe polls %s", d.Address, address)
		}
		select {
		case at := <-ready:
			return d, took, at
		case <-time.After(5 * time.Second):
			b.Fatalf("the probe had no answer from %s", address)
			return nil, 0, 0
		}
	}
	stop := func(d *buildkit.Daemon) time.Duration {
		t0 := time.Now()
		d.Stop()
		return time.Since(t0)
	}
	var fresh, warm, freshReady, warmReady, lag, stopped latencies
	b.ResetTimer()
	for i := range b.N {
		root := filepath.Join(scratch, fmt.Sprint("root-", i))
		settle(b)
		d, took, ready := start(root)
		fresh.add(took)
		freshReady.add(ready)
		lag.add(took - ready)
		b.StopTimer()
		useDaemon(b, d, ctrs.Busybox, empty)
		b.StartTimer()
		stopped.add(stop(d))
		settle(b)
		d, took, ready = start(root)
		warm.add(took)
		warmReady.add(ready)
		lag.add(took - ready)
		stopped.add(stop(d))
		b.StopTimer()
		if err := os.RemoveAll(root); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(fresh.pct(0.5), "fresh-ms")
	b.ReportMetric(warm.pct(0.5), "warm-ms")
	b.ReportMetric(warm.pct(0.5)/fresh.pct(0.5), "warm/fresh")
	b.ReportMetric(freshReady.pct(0.5), "fresh-ready-ms")
	b.ReportMetric(warmReady.pct(0.5), "warm-ready-ms")
	b.ReportMetric(lag.pct(0.5), "poll-lag-ms")
	b.ReportMetric(lag.pct(1), "poll-lag-max-ms")
	b.ReportMetric(stopped.pct(0.5), "stop-ms")
}
