package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rs/zerolog"

	"github.com/kiln-ci/kiln/internal/buildkit"
	"github.com/kiln-ci/kiln/internal/buildspec"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/gitx"
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/worker"
	"github.com/kiln-ci/kiln/workflows"
)

// ctrBuildspec is the build both sides run: 300 files written by a shell
// loop (builtins only, so dash on the host and busybox's ash do the same
// work), an awk sum, a tar.gz of the checkout's input and of what it wrote,
// and artifacts. Every tool is in busybox and on the host.
const ctrBuildspec = `version: 0.2
phases:
  build:
    commands:
      - mkdir -p out/gen
      - i=0; while [ $i -lt 300 ]; do echo "line $i of $PWD" > out/gen/f$i.txt; i=$((i+1)); done
      - seq 1 50000 | awk '{s += $1} END {print s}' > out/sum.txt
      - head -c 2000000 /dev/urandom > out/noise.bin
      - tar -cf - input out/gen out/noise.bin | gzip -6 > out/bundle.tar.gz
      - gzip -dc out/bundle.tar.gz | tar -tf - | wc -l > out/count.txt
      - test "$(cat out/sum.txt)" = 1250025000 && test "$(cat out/count.txt)" -ge 340
artifacts:
  files: [out/sum.txt, out/count.txt, out/bundle.tar.gz]
`

// ctrArtifacts are the artifacts every run must leave.
const ctrArtifacts = "out/bundle.tar.gz,out/count.txt,out/sum.txt"

// ctrRepoFiles is the checkout: the buildspec and 40 input files of 4 KiB.
func ctrRepoFiles() fstest.MapFS {
	files := fstest.MapFS{"buildspec.yml": {Data: []byte(ctrBuildspec)}}
	for i := range 40 {
		files[fmt.Sprintf("input/part-%02d.txt", i)] = &fstest.MapFile{Data: []byte(strings.Repeat(fmt.Sprintf("input %d\n", i), 512))}
	}
	return files
}

// ctrPipelines are kiln.yaml's two pipelines, identical but for where the
// build runs.
const (
	ctrOnHost = "on-host"
	ctrInBox  = "in-busybox"
)

func ctrConfig(repo, image string) string {
	return fmt.Sprintf(`repos:
  - name: bench/ctr
    clone_url: %q
    webhook_secret: {env: UNUSED}
pipelines:
  - name: %s
    repo: bench/ctr
    triggers: {manual: true}
    stages: {build: {buildspec: buildspec.yml}}
  - name: %s
    repo: bench/ctr
    triggers: {manual: true}
    stages:
      build:
        buildspec: buildspec.yml
        environment: {image: %q, insecure: true}
`, repo, ctrOnHost, ctrInBox, image)
}

// ctrRig is the pipeline benchmark's fixture: buildkitd and a registry
// with busybox, the embedded Temporal server, and a kiln worker with a
// container runtime, building a local repository.
type ctrRig struct {
	ctrs *testkit.Containers
	tmp  *testkit.Temporal
	runs *starter.Runs
}

func newCtrRig(b *testing.B) *ctrRig {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := &ctrRig{ctrs: startContainers(b)}
	repo := filepath.Join(b.TempDir(), "repo")
	if _, err := gitx.InitRepo(ctx, repo, ctrRepoFiles(), "initial commit"); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Parse("kiln.yaml", []byte(ctrConfig(repo, r.ctrs.BusyboxTag)))
	if err != nil {
		b.Fatal(err)
	}
	if r.tmp, err = testkit.StartTemporal(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(r.tmp.Close)
	bk := dialBuildKit(b, r.ctrs)
	w := worker.New(r.tmp.Client, worker.Options{Config: cfg, DataDir: b.TempDir(), Containers: bk, Log: zerolog.Nop()})
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(w.Stop)
	r.runs = &starter.Runs{Client: r.tmp.Client}
	return r
}

// run runs pipeline at main, start to result, and checks that its build
// ran where it should and left the artifacts. It returns the build stage's
// own time, from the run's progress.
func (r *ctrRig) run(b *testing.B, pipeline string) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	id, err := r.runs.StartManual(ctx, pipeline, "main", "")
	if err != nil {
		b.Fatal(err)
	}
	var res workflows.PipelineResult
	if err := r.tmp.Client.GetWorkflow(ctx, id, "").Get(ctx, &res); err != nil {
		b.Fatalf("run %s: %v", id, err)
	}
	build := res.Build
	switch {
	case build == nil:
		b.Fatalf("run %s has no build result", id)
	case strings.Join(build.Artifacts, ",") != ctrArtifacts:
		b.Fatalf("run %s left artifacts %v", id, build.Artifacts)
	case (pipeline == ctrInBox) != (build.ImageDigest != ""):
		b.Fatalf("run %s of %s ran in image %q", id, pipeline, build.ImageDigest)
	}
	for _, st := range res.Progress.Stages {
		if st.Name == workflows.StageBuild {
			return st.End.Sub(st.Start)
		}
	}
	b.Fatalf("run %s: no build stage timing in %+v", id, res.Progress.Stages)
	return 0
}

// startContainers starts buildkitd and the busybox registry for one
// benchmark function.
func startContainers(b *testing.B) *testkit.Containers {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctrs, err := testkit.StartContainers(ctx, filepath.Join(b.TempDir(), "buildkit"))
	if err != nil {
		b.Fatalf("containers: %v", err)
	}
	b.Cleanup(ctrs.Close)
	return ctrs
}

func dialBuildKit(b *testing.B, ctrs *testkit.Containers) *buildkit.Client {
	b.Helper()
	bk, err := buildkit.Dial(context.Background(), ctrs.Daemon.Address)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bk.Close() })
	return bk
}

// writeTree writes files under dir.
func writeTree(b *testing.B, dir string, files fstest.MapFS) {
	b.Helper()
	for name, f := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := os.WriteFile(p, f.Data, mode); err != nil {
			b.Fatal(err)
		}
	}
}

// openClose opens a container of image and closes it at once.
func openClose(b *testing.B, bk *buildkit.Client, image, src string) {
	b.Helper()
	ctr, err := bk.Open(context.Background(), buildkit.ContainerSpec{Image: image, Source: src, SourceDir: "/src"})
	if err == nil {
		err = ctr.Close()
	}
	if err != nil {
		b.Fatal(err)
	}
}

// runInBox runs spec in a busybox container of src, as the build activity
// does, collects its artifacts into artifacts, and times the three steps.
func runInBox(b *testing.B, bk *buildkit.Client, image string, spec *buildspec.Spec, src, artifacts string, cmds *cmdClock) (opened, ran, closed time.Duration) {
	b.Helper()
	ctx := context.Background()
	t0 := time.Now()
	ctr, err := bk.Open(ctx, buildkit.ContainerSpec{Image: image, Source: src, SourceDir: ctrSrcDir})
	if err != nil {
		b.Fatal(err)
	}
	t1 := time.Now()
	env := ctr.Config.Env
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "PATH=") }) {
		env = append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	res, err := spec.Run(ctx, buildspec.RunOptions{Dir: ctrSrcDir, Sandbox: ctr, BaseEnv: env, ArtifactsDir: artifacts, Progress: cmds.progress()})
	t2 := time.Now()
	if cerr := ctr.Close(); err == nil {
		err = cerr
	}
	checkRun(b, "busybox", res, err)
	return t1.Sub(t0), t2.Sub(t1), time.Since(t2)
}

// ctrSrcDir is where the container sees the checkout, as the build
// activity mounts it.
const ctrSrcDir = "/codebuild/output/src"

// cmdClock times each command of a buildspec across runs, by its number,
// from the Progress a run reports.
type cmdClock struct {
	mu    sync.Mutex
	start map[int]time.Time
	took  map[int]*latencies
}

func newCmdClock() *cmdClock {
	return &cmdClock{start: map[int]time.Time{}, took: map[int]*latencies{}}
}

func (c *cmdClock) progress() func(buildspec.Progress) {
	return func(p buildspec.Progress) {
		if p.Command == 0 {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if !p.Done {
			c.start[p.Command] = time.Now()
			return
		}
		if c.took[p.Command] == nil {
			c.took[p.Command] = &latencies{}
		}
		c.took[p.Command].add(time.Since(c.start[p.Command]))
	}
}

// median is command n's median time in ms.
func (c *cmdClock) median(n int) float64 {
	if c.took[n] == nil {
		return 0
	}
	return c.took[n].pct(0.5)
}

func checkRun(b *testing.B, where string, res *buildspec.Result, err error) {
	b.Helper()
	if err != nil {
		b.Fatalf("%s: %v", where, err)
	}
	if got := strings.Join(res.Artifacts, ","); got != ctrArtifacts {
		b.Fatalf("%s: artifacts %s", where, got)
	}
}

// settle flushes what earlier steps wrote, off the clock, so their
// writeback (and the discards of what clearDir removed) does not land in
// the next timed step: on this disk a loop creating 300 files took from
// 15 to 230 ms depending on what was written just before it.
func settle(b *testing.B) {
	b.StopTimer()
	syscall.Sync()
	b.StartTimer()
}

// clearDir removes everything in dir but keep, so scratch space does not
// grow with b.N.
func clearDir(b *testing.B, dir, keep string) {
	b.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != keep {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// probeReady polls the daemon at address every 5 ms from t0 and sends how
// long after t0 it first listed its workers; nothing if ctx ends first.
func probeReady(ctx context.Context, address string, t0 time.Time) <-chan time.Duration {
	out := make(chan time.Duration, 1)
	go func() {
		for ctx.Err() == nil {
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			err := buildkit.Ping(pctx, address)
			cancel()
			if err == nil {
				out <- time.Since(t0)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return out
}

// useDaemon gives a daemon's root what a worker's has after a build: the
// base image pulled and a container run.
func useDaemon(b *testing.B, d *buildkit.Daemon, image, src string) {
	b.Helper()
	bk, err := buildkit.Dial(context.Background(), d.Address)
	if err != nil {
		b.Fatal(err)
	}
	defer bk.Close()
	openClose(b, bk, image, src)
}
