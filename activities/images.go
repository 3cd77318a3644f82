package activities

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/bmatcuk/doublestar/v4"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.temporal.io/sdk/activity"

	"github.com/kiln-ci/kiln/internal/artifacts"
	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/internal/gitx"
	"github.com/kiln-ci/kiln/internal/oci"
)

// Errors of the image publishing; all permanent.
const (
	// ErrRegistryRefused: the registry refused kiln's credentials.
	ErrRegistryRefused = "RegistryRefused"
	// ErrInvalidImage: the image cannot be built as configured, e.g. no
	// artifact matches, the base image does not exist, or a tag is invalid.
	ErrInvalidImage = "InvalidImage"
	// ErrImageTestFailed: the image's test commands failed in a container
	// of it; nothing was pushed.
	ErrImageTestFailed = "ImageTestFailed"
)

// ImageInput asks for one configured image to be built and pushed.
type ImageInput struct {
	RunID    string      `json:"run_id"`
	Pipeline string      `json:"pipeline"`
	Event    event.Event `json:"event"`
	Plan     Plan        `json:"plan"`
	// Index is the image's position in publish.images.
	Index int `json:"index"`
	// Artifacts names the build's artifacts in the artifact store
	// (BuildResult.ArtifactsManifest); empty reads them from this worker's
	// disk.
	Artifacts artifacts.Digest `json:"artifacts,omitempty"`
}

// ImageResult is a pushed image.
type ImageResult struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	// Tags point at Digest now: the ones pushed and the ones already there,
	// in rule order.
	Tags []string `json:"tags"`
	// Skipped are tags that already pointed at this digest: nothing was pushed
	// for them.
	Skipped []string `json:"skipped,omitempty"`
	// Kept are write-once tags (the short SHA of a review run, say) that
	// already pointed at another image and were left there.
	Kept []string `json:"kept,omitempty"`
	// Behind are X.Y and X tags left at a newer release of their series.
	Behind []string `json:"behind,omitempty"`
	// Stale says the branch had moved past the run's commit: only the tags
	// that name the commit were pushed, and Withheld lists the moving tags
	// (latest, the branch) that were not, so an old run cannot roll them
	// back.
	Stale    bool     `json:"stale,omitempty"`
	Withheld []string `json:"withheld,omitempty"`
	// Bases are a Dockerfile's base images, each as the FROM line names it
	// and the digest it was built on.
	Bases map[string]string `json:"bases,omitempty"`
}

// imageProgress is PublishImage's heartbeat: it beats on a ticker from start
// to end, so reading and compressing large artifacts keeps the activity
// alive, and a push that stalls still shows where it stopped.
type imageProgress struct {
	Image   string `json:"image"`
	Step    string `json:"step"`
	Written int64  `json:"written,omitempty"`
	Total   int64  `json:"total,omitempty"`
}

// PublishImage builds the image from the build's artifacts on its base
// image, and pushes it with the tags its rules give this run. The image is
// reproducible (fixed timestamps, sorted files), so a retry builds the same
// digest, and tags that already point at it are left alone. A branch run
// whose branch has moved on pushes only the tags naming its commit.
func (a *Activities) PublishImage(ctx context.Context, in ImageInput) (*ImageResult, error) {
	cfg := in.Plan.Publish.Images[in.Index]
	hb := newHeartbeater(ctx, nil, imageProgress{Image: cfg.Name, Step: "prepare"}, nil)
	defer hb.stop()
	step := func(s string) { hb.set(func(cur *imageProgress) { *cur = imageProgress{Image: cfg.Name, Step: s} }) }
	tags, err := a.imageTags(ctx, cfg, in)
	if err != nil {
		return nil, err
	}
	p, err := a.pusher(ctx, cfg)
	if err != nil {
		return nil, err
	}
	res := &ImageResult{Name: cfg.Name}
	var built v1.Image
	if cfg.Dockerfile != "" {
		work := filepath.Join(a.workDir(), safeName(in.RunID), fmt.Sprintf("image-%d-%d", in.Index, activity.GetInfo(ctx).Attempt))
		defer os.RemoveAll(work) // after the push, which reads the layers from it
		built, res.Bases, err = a.dockerfileImage(ctx, dockerfileBuild{in: in, cfg: cfg, pusher: p, work: work}, step)
	} else {
		built, err = a.artifactImage(ctx, p, in, cfg, step)
	}
	if err != nil {
		return nil, err
	}
	step("check branch head")
	head, moved, err := branchHead(ctx, in.Plan, in.Event)
	if err != nil {
		return nil, err
	}
	if moved {
		if tags, res.Withheld, err = holdBackMoving(ctx, p, cfg.Name, tags, head); err != nil {
			return nil, classifyImage(err, "check the tags of "+cfg.Name)
		}
		res.Stale = len(res.Withheld) > 0
	}
	step("push")
	// The heartbeat ticks on, so a push stuck on a dead connection would
	// only end at the start-to-close timeout: a watchdog ends it when no
	// byte has gone up for pushStall, and the retry pushes what is missing.
	pushCtx, progressed, stopWatch := watchStall(ctx, pushStall)
	defer stopWatch()
	var last time.Time
	p.Progress = func(written, total int64) {
		progressed()
		if time.Since(last) >= time.Second || written == total {
			last = time.Now()
			hb.set(func(cur *imageProgress) { cur.Step, cur.Written, cur.Total = "push", written, total })
		}
	}
	if err := push(pushCtx, p, cfg.Name, built, tags, res); err != nil {
		if errors.Is(context.Cause(pushCtx), errPushStalled) {
			return nil, fmt.Errorf("push %s: %w", cfg.Name, context.Cause(pushCtx))
		}
		return nil, classifyImage(err, "push "+cfg.Name)
	}
	log := a.Log.Info()
	if res.Stale || len(res.Kept) > 0 || len(res.Behind) > 0 {
		log = a.Log.Warn()
	}
	log.Str("run", in.RunID).Str("ref", in.Event.Ref).Str("commit", in.Plan.Commit).Str("image", cfg.Name).
		Str("digest", res.Digest).Strs("tags", res.Tags).Strs("unchanged", res.Skipped).
		Strs("kept_elsewhere", res.Kept).Strs("behind_newer_release", res.Behind).
		Bool("stale", res.Stale).Strs("withheld", res.Withheld).Msg("image published")
	return res, nil
}

// artifactImage builds the image from the build's artifacts on its base.
func (a *Activities) artifactImage(ctx context.Context, p *oci.Pusher, in ImageInput, cfg config.ImagePublish, step func(string)) (v1.Image, error) {
	step("fetch artifacts")
	dir, err := a.buildArtifacts(ctx, in.RunID, in.Artifacts)
	if err != nil {
		return nil, err
	}
	files, err := imageFiles(dir, cfg.Files)
	if err != nil {
		return nil, err
	}
	step("build")
	built, err := p.Build(ctx, imageOf(cfg, in.Plan, files))
	if err != nil {
		return nil, classifyImage(err, "build "+cfg.Name)
	}
	return built, nil
}

// dockerfileImage builds a Dockerfile image in b.work, writing BuildKit's
// output to the image's log, <data-dir>/logs/<run>/image-<index>-<attempt>.log.
func (a *Activities) dockerfileImage(ctx context.Context, b dockerfileBuild, step func(string)) (v1.Image, map[string]string, error) {
	if a.Containers == nil {
		return nil, nil, permanent(ErrInvalidImage, "%s is built from a Dockerfile, and this worker has no container runtime: %v", b.cfg.Name, a.NoContainers)
	}
	attempt := activity.GetInfo(ctx).Attempt
	logPath := filepath.Join(a.DataDir, "logs", safeName(b.in.RunID), fmt.Sprintf("image-%d-%d.log", b.in.Index, attempt))
	logFile, err := createLog(logPath)
	if err != nil {
		return nil, nil, err
	}
	defer logFile.Close()
	b.log, b.logPath = logFile, logPath
	return a.buildDockerfile(ctx, b, step)
}

// pushStall is how long a push may go without a byte going up.
var pushStall = 3 * time.Minute

// errPushStalled ends a push that stopped moving; it is retried.
var errPushStalled = errors.New("the push stalled")

// watchStall returns a context that is cancelled (cause errPushStalled)
// when moved has not been called for d, moved itself, and stop, which ends
// the watch.
func watchStall(ctx context.Context, d time.Duration) (context.Context, func(), func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	var mu sync.Mutex
	last := time.Now()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(d / 4)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				mu.Lock()
				idle := time.Since(last)
				mu.Unlock()
				if idle >= d {
					cancel(fmt.Errorf("%w: no byte went up for %s", errPushStalled, d.Round(time.Second)))
					return
				}
			}
		}
	}()
	moved := func() {
		mu.Lock()
		last = time.Now()
		mu.Unlock()
	}
	var once sync.Once
	return ctx, moved, func() { once.Do(func() { close(done); cancel(nil) }) }
}

// push pushes built under tags and fills res; with no tags left (a stale
// run without a short-SHA tag) it only records the digest.
func push(ctx context.Context, p *oci.Pusher, repo string, built v1.Image, tags []oci.Tag, res *ImageResult) error {
	if len(tags) == 0 {
		d, err := built.Digest()
		res.Digest = d.String()
		return err
	}
	pushed, err := p.Push(ctx, repo, built, tags)
	if err != nil {
		return err
	}
	res.Digest, res.Skipped, res.Kept, res.Behind = pushed.Digest, pushed.Skipped, pushed.Kept, pushed.Behind
	at := map[string]bool{}
	for _, t := range append(pushed.Tags, pushed.Skipped...) {
		at[t] = true
	}
	res.Tags = []string{}
	for _, t := range tags {
		if at[t.Name] {
			res.Tags = append(res.Tags, t.Name)
		}
	}
	return nil
}

// holdBackMoving is for a run whose branch has moved on to head ("" when
// the branch is gone): it holds back each tag that moves with the branch
// and already points at the head's image, so the old run does not roll it
// back. A moving tag the head has not published yet still moves: the
// head's run moves it on when it publishes, and a pipeline with no such run
// (scheduled, image-triggered) is not left behind.
func holdBackMoving(ctx context.Context, p *oci.Pusher, repo string, tags []oci.Tag, head string) (keep []oci.Tag, held []string, err error) {
	for _, t := range tags {
		if !t.Moves() {
			keep = append(keep, t)
			continue
		}
		rev := ""
		if head != "" {
			if rev, err = p.RevisionAt(ctx, repo, t.Name); err != nil {
				return nil, nil, err
			}
		}
		if head == "" || rev == head {
			held = append(held, t.Name)
		} else {
			keep = append(keep, t)
		}
	}
	return keep, held, nil
}

// imageOf is the image config describes, labelled with the commit and
// repository it was built from.
func imageOf(cfg config.ImagePublish, plan Plan, files []oci.File) oci.Image {
	img := oci.Image{Repository: cfg.Name, Base: cfg.Base, Files: files, Entrypoint: cfg.Entrypoint, Cmd: cfg.Cmd,
		WorkingDir: cfg.WorkingDir, Labels: imageLabels(plan)}
	for _, k := range slices.Sorted(maps.Keys(cfg.Env)) {
		img.Env = append(img.Env, k+"="+cfg.Env[k])
	}
	return img
}

// imageFiles maps the artifacts each rule matches into the image: a file
// keeps its path below the pattern's fixed directory, under the rule's To,
// as `COPY dist/ /app/` would.
func imageFiles(root string, rules []config.ImageFile) ([]oci.File, error) {
	var out []oci.File
	for _, r := range rules {
		base, _ := doublestar.SplitPattern(r.From)
		matches, err := doublestar.Glob(os.DirFS(root), r.From, doublestar.WithFilesOnly())
		if err != nil {
			return nil, permanent(ErrInvalidImage, "files.from %q: %v", r.From, err)
		}
		if len(matches) == 0 {
			return nil, permanent(ErrInvalidImage, "files.from %q matches no build artifact; the build's artifacts.files must include it", r.From)
		}
		sort.Strings(matches)
		for _, m := range matches {
			rel := m
			if base != "." {
				rel = m[len(base)+1:]
			}
			out = append(out, oci.File{Source: filepath.Join(root, filepath.FromSlash(m)), Target: path.Join(r.To, rel)})
		}
	}
	return out, nil
}

// imageTags applies the image's tag rules to the run's event. An
// image-triggered run follows the tag rules when its ref is a tag and the
// branch rules otherwise, as manual runs do.
func (a *Activities) imageTags(ctx context.Context, cfg config.ImagePublish, in ImageInput) ([]oci.Tag, error) {
	rules := oci.TagRules{}
	if t := cfg.Tags; t != nil {
		rules = oci.TagRules{DefaultBranch: t.DefaultBranch, Branch: t.Branch, Tag: t.Tag, SemverMinor: t.SemverMinor,
			SemverMajor: t.SemverMajor, Review: t.Review, ShortSHA: t.ShortSHA}
	}
	ev := in.Event
	ti := oci.TagInput{Kind: string(ev.Kind), Branch: ev.Branch, Tag: ev.Tag, PR: prNumber(ev), Commit: in.Plan.Commit}
	if ev.Branch != "" {
		ti.DefaultBranch = in.Plan.DefaultBranch
	}
	if ev.Branch != "" && ti.DefaultBranch == "" {
		// The plan looks it up only for a pipeline with dependents.
		remote, err := in.Plan.Remote()
		if err != nil {
			return nil, err
		}
		def, err := gitx.DefaultBranch(ctx, remote)
		if err != nil && !errors.Is(err, gitx.ErrNotFound) {
			return nil, err
		}
		ti.DefaultBranch = def
	}
	tags, err := oci.Tags(rules, ti)
	if err != nil {
		return nil, permanent(ErrInvalidImage, "tags of %s: %v", cfg.Name, err)
	}
	return tags, nil
}

// pusher carries the image's registry credentials: from config, or from
// ecr:GetAuthorizationToken for an ECR repository.
func (a *Activities) pusher(ctx context.Context, cfg config.ImagePublish) (*oci.Pusher, error) {
	ref, err := name.NewRepository(cfg.Name)
	if err != nil {
		return nil, permanent(ErrInvalidImage, "image name %q: %v", cfg.Name, err)
	}
	p := &oci.Pusher{Insecure: cfg.Insecure, Auth: map[string]oci.Auth{}}
	host := ref.RegistryStr()
	switch {
	case cfg.Auth != nil:
		auth := oci.Auth{Username: cfg.Auth.Username}
		if auth.Password, err = secret(cfg.Auth.Password); err == nil {
			auth.Token, err = secret(cfg.Auth.Token)
		}
		if err != nil {
			return nil, permanent(ErrRegistryRefused, "credentials for %s: %v", host, err)
		}
		p.Auth[host] = auth
	default:
		if region, ok := oci.ECRRegion(cfg.Name); ok {
			awsCfg, err := awsx.Config(ctx, region)
			if err != nil {
				return nil, err
			}
			auth, err := oci.ECRAuth(ctx, ecr.NewFromConfig(awsCfg))
			if err != nil {
				return nil, classifyImage(err, "log in to "+host)
			}
			p.Auth[host] = auth
		}
	}
	return p, nil
}

// secret resolves an optional secret: an unset reference is "".
func secret(ref config.SecretRef) (string, error) {
	if ref == (config.SecretRef{}) {
		return "", nil
	}
	b, err := ref.Resolve()
	return string(b), err
}

// classifyImage makes refusals, missing and invalid images, and write-once
// tag conflicts permanent.
func classifyImage(err error, what string) error {
	switch {
	case errors.Is(err, oci.ErrUnauthorized):
		return permanent(ErrRegistryRefused, "%s: %v", what, err)
	case errors.Is(err, oci.ErrNotFound), errors.Is(err, fs.ErrNotExist),
		errors.Is(err, oci.ErrInvalid), errors.Is(err, oci.ErrTagConflict):
		return permanent(ErrInvalidImage, "%s: %v", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
