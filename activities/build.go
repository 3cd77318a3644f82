package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/internal/artifacts"
	"github.com/kiln-ci/kiln/internal/buildspec"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/internal/gitx"
)

// BuildInput is everything the build stage needs; it is recorded in history.
type BuildInput struct {
	RunID    string      `json:"run_id"`
	Pipeline string      `json:"pipeline"`
	Event    event.Event `json:"event"`
	Plan     Plan        `json:"plan"`
	// ScheduledAt is when a schedule meant the run to start (FLOW_SCHEDULE).
	ScheduledAt time.Time `json:"scheduled_at,omitzero"`
	// Untrusted builds a change nobody trusted has approved yet: in its
	// image, without the secrets the stage or buildspec declare.
	Untrusted bool `json:"untrusted,omitempty"`
}

// BuildResult is what a build produced.
type BuildResult struct {
	LogPath      string                  `json:"log_path"`
	ArtifactsDir string                  `json:"artifacts_dir,omitempty"`
	Artifacts    []string                `json:"artifacts,omitempty"`
	Phases       []buildspec.PhaseResult `json:"phases"`
	Exported     map[string]string       `json:"exported,omitempty"`
	// ArtifactsQueue is the task queue of the worker whose disk holds the
	// artifacts; the publish stage's image builds run there when they can.
	ArtifactsQueue string `json:"artifacts_queue,omitempty"`
	// ArtifactsManifest names the artifacts in the artifact store
	// (kiln.yaml's artifacts), from which any worker can publish them; empty
	// when the worker has no store.
	ArtifactsManifest artifacts.Digest `json:"artifacts_manifest,omitempty"`
	// Reports are the buildspec's test reports. A failed build's are in
	// its BuildFailed error's details, since Temporal drops the result of
	// a failed activity.
	Reports []buildspec.ReportResult `json:"reports,omitempty"`
	// Image is the pinned image the build ran in (Plan.BuildImage), and
	// ImageDigest the manifest BuildKit ran of it (for a multi-platform
	// image, the platform's); both empty for a build on the worker.
	Image       string `json:"image,omitempty"`
	ImageDigest string `json:"image_digest,omitempty"`
}

// BuildProgress is the build's heartbeat: where it is, for the UI's pending
// activity view and for people reading a stuck run.
type BuildProgress struct {
	Step     string `json:"step"`
	Phase    string `json:"phase,omitempty"`
	Command  int    `json:"command,omitempty"`
	LogBytes int64  `json:"log_bytes"`
}

// heartbeatEvery is how often a long activity heartbeats. It must be well
// under the activity's heartbeat timeout, and it bounds how late a cancel
// arrives: Temporal tells an activity it was cancelled only in the answer to
// a heartbeat, which the worker sends at least every 5 s
// (worker.heartbeatThrottle): a superseded build stops within seconds.
var heartbeatEvery = time.Second // a var for tests

// Build checks out the commit into a fresh workspace and runs the buildspec,
// on the worker or, when the plan pinned a build image, in a container of
// it, with the secrets the stage and the buildspec declare. A failing
// command is a permanent BuildFailed error carrying the exit code, the log's
// last lines and the test reports; clone and I/O failures are retryable.
func (a *Activities) Build(ctx context.Context, in BuildInput) (*BuildResult, error) {
	info := activity.GetInfo(ctx)
	runDir := safeName(in.RunID)
	paths := a.paths("build", runDir, info.Attempt)
	log := a.Log.With().Str("run", in.RunID).Str("pipeline", in.Pipeline).Str("repo", in.Plan.Repo).
		Str("ref", in.Event.Ref).Str("commit", in.Plan.Commit).Int32("attempt", info.Attempt).Logger()
	if info.Attempt > 1 {
		if n := a.reapEarlierAttempts(in.RunID, runDir, info.Attempt); n > 0 {
			log.Warn().Int("processes", n).Msg("killed processes an earlier attempt left running")
		}
	}
	logFile, err := createLog(paths.Log)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	defer os.RemoveAll(paths.Work)
	out := &countingWriter{w: logFile}
	hb := newHeartbeater(ctx, out, BuildProgress{}, func(p *BuildProgress, n int64) { p.LogBytes = n })
	defer hb.stop()

	res := &BuildResult{LogPath: paths.Log}
	log.Info().Str("log", paths.Log).Str("image", in.Plan.BuildImage).Msg("build started")
	src := filepath.Join(paths.Work, "src")
	hb.set(func(p *BuildProgress) { *p = BuildProgress{Step: "checkout"} })
	fmt.Fprintf(out, "[kiln] checking out %s at %s\n", gitx.Redact(in.Plan.CloneURL), in.Plan.Commit)
	if err := checkout(ctx, in.Plan, src, out); err != nil {
		return nil, err
	}
	spec, err := loadBuildspec(src, in.Plan.Build.Buildspec)
	if err != nil {
		return nil, err
	}
	var secrets []buildspec.Secret
	if in.Untrusted {
		if in.Plan.BuildImage == "" {
			return nil, permanent(ErrInvalidRunRequest, "an untrusted change builds only in an image, and this pipeline builds on the worker")
		}
		fmt.Fprintln(out, "[kiln] an untrusted change, not approved yet: building in the image without the declared secrets")
	} else {
		hb.set(func(p *BuildProgress) { *p = BuildProgress{Step: "secrets"} })
		if secrets, err = resolveSecrets(ctx, "stages.build.secrets", in.Plan.Build.Secrets, spec.Env); err != nil {
			return nil, err
		}
	}
	runCtx, cancel := context.WithTimeout(ctx, in.Plan.BuildTimeout())
	defer cancel()
	opts := buildspec.RunOptions{
		Env:          EventEnv(in),
		Log:          out,
		ArtifactsDir: paths.Artifacts,
		Secrets:      secrets,
		Progress: func(p buildspec.Progress) {
			hb.set(func(b *BuildProgress) { *b = BuildProgress{Step: "buildspec", Phase: p.Phase, Command: p.Command} })
		},
	}
	var result *buildspec.Result
	if in.Plan.BuildImage != "" {
		hb.set(func(p *BuildProgress) { *p = BuildProgress{Step: "container"} })
		result, err = a.buildInContainer(runCtx, in, spec, src, opts, res)
	} else {
		result, err = a.buildOnHost(runCtx, in, spec, src, paths.Work, opts)
	}
	if result != nil {
		res.Phases, res.Exported = result.Phases, result.Exported
		res.Reports = result.Reports
		if len(result.Artifacts) > 0 {
			res.Artifacts, res.ArtifactsDir = result.Artifacts, paths.Artifacts
			res.ArtifactsQueue = a.HostQueue
		}
	}
	if err != nil {
		if workerStopping(ctx) {
			log.Info().Msg("build stopped with its worker; the run goes on when a worker polls again")
		} else {
			log.Warn().Err(err).Msg("build failed")
		}
		return res, a.classifyBuildError(ctx, runCtx, in, res, err)
	}
	if len(res.Artifacts) > 0 && a.Artifacts != nil {
		hb.set(func(p *BuildProgress) { *p = BuildProgress{Step: "store artifacts"} })
		if err := a.storeArtifacts(ctx, res, out); err != nil {
			log.Warn().Err(err).Msg("storing the artifacts failed")
			return res, err
		}
	}
	log.Info().Int("artifacts", len(res.Artifacts)).Str("manifest", string(res.ArtifactsManifest)).Msg("build succeeded")
	return res, nil
}

// storeArtifacts uploads a good build's artifacts to the artifact store, so
// any worker can publish them. It is content-addressed: a retry sends only
// what is missing. A failure is retryable, as the store may be back soon.
func (a *Activities) storeArtifacts(ctx context.Context, res *BuildResult, out io.Writer) error {
	start := time.Now()
	d, st, err := artifacts.Upload(ctx, a.Artifacts, res.ArtifactsDir, res.Artifacts, nil)
	if err != nil {
		return fmt.Errorf("store the artifacts in %s: %w", a.Artifacts, err)
	}
	countArtifactBytes(ctx, "upload", st.Moved)
	fmt.Fprintf(out, "[kiln] stored %d artifacts (%d bytes, %d sent) in %s in %s\n",
		st.Files, st.Bytes, st.Moved, a.Artifacts, time.Since(start).Round(time.Millisecond))
	res.ArtifactsManifest = d
	return nil
}

// buildOnHost runs the buildspec on the worker, in the checkout, with the
// minimal base environment hostSandbox gives.
func (a *Activities) buildOnHost(ctx context.Context, in BuildInput, spec *buildspec.Spec, src, work string, opts buildspec.RunOptions) (*buildspec.Result, error) {
	sh, err := a.hostSandbox(in.Pipeline, work, src)
	if err != nil {
		return nil, err
	}
	defer sh.Release()
	if len(spec.Cache.Paths) > 0 {
		fmt.Fprintln(opts.Log, "[kiln] cache.paths are kept only for builds in an image (stages.build.environment)")
	}
	opts.Dir, opts.Sandbox, opts.BaseEnv = src, sh.Sandbox, append(sh.BaseEnv, mapEnv(in.Plan.Build.Env)...)
	return spec.Run(ctx, opts)
}

// classifyBuildError decides whether a failure is the build's (permanent) or the
// machine's (retryable), and words it for people. A failed build's test
// reports ride in its error's details.
func (a *Activities) classifyBuildError(ctx, runCtx context.Context, in BuildInput, res *BuildResult, err error) error {
	var cmdErr *buildspec.CommandError
	var appErr *temporal.ApplicationError
	switch {
	case ctx.Err() != nil:
		return ctx.Err() // cancelled or timed out by Temporal: it decides what next
	case errors.Is(runCtx.Err(), context.DeadlineExceeded):
		return permanent(ErrBuildTimedOut, "build timed out after %s (stages.build.timeout); log: %s", in.Plan.BuildTimeout(), res.LogPath)
	case errors.As(err, &appErr):
		return appErr // already classified: the build image
	case errors.As(err, &cmdErr):
		msg := fmt.Sprintf("%v\nlog: %s", err, res.LogPath)
		if len(res.Reports) > 0 {
			return temporal.NewNonRetryableApplicationError(msg, ErrBuildFailed, nil, res.Reports)
		}
		return permanent(ErrBuildFailed, "%s", msg)
	default:
		return fmt.Errorf("build: %w (log: %s)", err, res.LogPath)
	}
}

// loadBuildspec parses the inline buildspec, or the file in the checkout. A path
// must stay inside the repository.
func loadBuildspec(src string, b config.BuildspecSource) (*buildspec.Spec, error) {
	if b.Inline != "" {
		spec, err := buildspec.Parse("kiln.yaml (inline buildspec)", []byte(b.Inline))
		if err != nil {
			return nil, permanent(ErrInvalidBuildspec, "%v", err)
		}
		return spec, nil
	}
	if !filepath.IsLocal(b.Path) {
		return nil, permanent(ErrInvalidBuildspec, "buildspec path %q leaves the repository", b.Path)
	}
	data, err := readInRepo(src, b.Path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, permanent(ErrInvalidBuildspec, "buildspec %s is not in the repository at this commit", b.Path)
	case errors.Is(err, errLeavesRepo):
		return nil, permanent(ErrInvalidBuildspec, "buildspec %v", err)
	case err != nil:
		return nil, err
	}
	spec, err := buildspec.Parse(b.Path, data)
	if err != nil {
		return nil, permanent(ErrInvalidBuildspec, "%v", err)
	}
	return spec, nil
}

func createLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.Create(path)
}

// envValue is name's value in env, or "".
func envValue(env []string, name string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

func mapEnv(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

// safeName turns a workflow ID into one path component.
func safeName(id string) string {
	return strings.NewReplacer("/", "_", "\\", "_", "..", "_").Replace(id)
}

// countingWriter counts bytes written to the log for the heartbeat.
type countingWriter struct {
	mu sync.Mutex
	w  io.Writer
	n  int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) count() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// workerStopping says whether the worker running the activity is shutting
// down, as on Ctrl-C: an activity it interrupts has not failed, and Temporal
// gives it to the next worker.
func workerStopping(ctx context.Context) bool {
	select {
	case <-activity.GetWorkerStopChannel(ctx):
		return true
	default:
		return false
	}
}
