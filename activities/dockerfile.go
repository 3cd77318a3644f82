package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/kiln-ci/kiln/internal/buildkit"
	"github.com/kiln-ci/kiln/internal/buildspec"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/gitx"
	"github.com/kiln-ci/kiln/internal/oci"
	"github.com/kiln-ci/kiln/internal/scrub"
)

// defaultImageTestTimeout bounds publish.images[].test.commands.
const defaultImageTestTimeout = 10 * time.Minute

// dockerfileBuild is one Dockerfile image build of a run: where its files
// and log go.
type dockerfileBuild struct {
	in      ImageInput
	cfg     config.ImagePublish
	pusher  *oci.Pusher
	work    string // the checkout and the OCI layout, removed afterwards
	log     io.Writer
	logPath string
}

// buildDockerfile builds a publish.images entry's Dockerfile with BuildKit,
// from a fresh checkout of the commit, with the build's artifacts as the
// named context "artifacts". Its bases are pinned to the digests they have
// now, and recorded; its test commands run in the new image before it is
// returned, and a failure pushes nothing. The image is read from an OCI
// layout on disk, so the caller pushes it with the same tag rules as any.
func (a *Activities) buildDockerfile(ctx context.Context, b dockerfileBuild, step func(string)) (v1.Image, map[string]string, error) {
	cfg, in := b.cfg, b.in
	src := filepath.Join(b.work, "src")
	step("checkout")
	fmt.Fprintf(b.log, "[kiln] checking out %s at %s\n", gitx.Redact(in.Plan.CloneURL), in.Plan.Commit)
	if err := checkout(ctx, in.Plan, src, b.log); err != nil {
		return nil, nil, err
	}
	dockerfileDir, context, text, err := dockerfilePaths(src, cfg)
	if err != nil {
		return nil, nil, err
	}
	step("resolve bases")
	bases, err := a.pinBases(ctx, b.pusher, text, cfg)
	if err != nil {
		return nil, nil, err
	}
	declared, err := resolveSecrets(ctx, fmt.Sprintf("publish.images[%d].secrets", in.Index), cfg.Secrets, buildspec.Env{})
	if err != nil {
		return nil, nil, err
	}
	epoch, err := gitx.CommitTime(ctx, src)
	if err != nil {
		return nil, nil, fmt.Errorf("commit time: %w", err)
	}
	contexts := map[string]string{}
	step("fetch artifacts")
	dir, err := a.buildArtifacts(ctx, in.RunID, in.Artifacts)
	if err != nil {
		return nil, nil, err
	}
	if dirExists(dir) {
		contexts["artifacts"] = dir
	} else {
		contexts["artifacts"], _ = os.MkdirTemp(b.work, "no-artifacts-")
	}
	progress := scrub.New(buildspec.SecretValues(declared)).Writer(b.log)
	defer progress.Flush()
	layoutDir := filepath.Join(b.work, "image")
	step("build")
	built, err := a.Containers.BuildDockerfile(ctx, buildkit.Dockerfile{
		Context: context, File: filepath.Join(dockerfileDir, filepath.Base(cfg.Dockerfile)), Contexts: contexts, BuildArgs: cfg.BuildArgs, Target: cfg.Target,
		Bases: bases, Labels: imageLabels(in.Plan), Secrets: secretMap(declared), Auth: containerAuth(b.pusher),
		Epoch: epoch, Layout: layoutDir, Progress: progress,
		Check: a.imageCheck(b, step),
	})
	if err != nil {
		return nil, nil, classifyDockerfile(ctx, err, cfg.Name, b.logPath)
	}
	img, err := layoutImage(layoutDir, built.Digest)
	if err != nil {
		return nil, nil, err
	}
	return img, bases, nil
}

// dockerfilePaths returns the directories BuildKit reads the Dockerfile
// and the context from, and the Dockerfile's text. All must stay inside
// the checkout, symlinks resolved: a context that is a link to / would
// copy the worker's files into the image.
func dockerfilePaths(src string, cfg config.ImagePublish) (dockerfileDir, context string, text []byte, err error) {
	ctxDir := cfg.Context
	if ctxDir == "" {
		ctxDir = filepath.Dir(cfg.Dockerfile)
	}
	text, err = readInRepo(src, cfg.Dockerfile)
	if errors.Is(err, os.ErrNotExist) {
		return "", "", nil, permanent(ErrInvalidImage, "%s: dockerfile %s is not in the repository at this commit", cfg.Name, cfg.Dockerfile)
	}
	if err == nil {
		if dockerfileDir, err = dirInRepo(src, filepath.Dir(cfg.Dockerfile)); err == nil {
			context, err = dirInRepo(src, ctxDir)
		}
	}
	switch {
	case errors.Is(err, errLeavesRepo):
		return "", "", nil, permanent(ErrInvalidImage, "%s: %v", cfg.Name, err)
	case errors.Is(err, os.ErrNotExist):
		return "", "", nil, permanent(ErrInvalidImage, "%s: context %s is not in the repository at this commit", cfg.Name, ctxDir)
	case err != nil:
		return "", "", nil, err
	}
	return dockerfileDir, context, text, nil
}

// pinBases resolves each base image of the Dockerfile to the digest its
// registry serves now, so the build uses exactly what the result records.
func (a *Activities) pinBases(ctx context.Context, p *oci.Pusher, dockerfile []byte, cfg config.ImagePublish) (map[string]string, error) {
	refs, err := buildkit.Bases(dockerfile, cfg.BuildArgs)
	if err != nil {
		return nil, permanent(ErrInvalidImage, "%s: %v", cfg.Name, err)
	}
	bases := map[string]string{}
	for _, ref := range refs {
		pinned, err := p.Pin(ctx, ref)
		if err != nil {
			return nil, classifyImage(err, fmt.Sprintf("%s: base image %s", cfg.Name, ref))
		}
		bases[ref] = pinned
	}
	return bases, nil
}

// imageCheck runs the image's test commands in a container of it, in its
// working directory with its environment, before anything is pushed.
func (a *Activities) imageCheck(b dockerfileBuild, step func(string)) func(context.Context, *buildkit.Container) error {
	t := b.cfg.Test
	if t == nil || len(t.Commands) == 0 {
		return nil
	}
	return func(ctx context.Context, ctr *buildkit.Container) error {
		step("test")
		timeout := time.Duration(t.Timeout)
		if timeout <= 0 {
			timeout = defaultImageTestTimeout
		}
		runCtx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		dir := ctr.Config.WorkingDir
		if dir == "" {
			dir = "/"
		}
		spec := &buildspec.Spec{Version: "0.2", Phases: buildspec.Phases{Build: &buildspec.Phase{Commands: t.Commands}}}
		fmt.Fprintf(b.log, "[kiln] testing the image in a container of it\n")
		_, err := spec.Run(runCtx, buildspec.RunOptions{Dir: dir, Sandbox: ctr, BaseEnv: ctr.Config.Env,
			Env: EventEnv(BuildInput{RunID: b.in.RunID, Pipeline: b.in.Pipeline, Event: b.in.Event, Plan: b.in.Plan}), Log: b.log})
		var cmdErr *buildspec.CommandError
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(runCtx.Err(), context.DeadlineExceeded):
			return permanent(ErrImageTestFailed, "%s: the image's test commands timed out after %s (test.timeout); nothing was pushed\nlog: %s", b.cfg.Name, timeout, b.logPath)
		case errors.As(err, &cmdErr):
			return permanent(ErrImageTestFailed, "%s: the image's test failed, so nothing was pushed: %v\nlog: %s", b.cfg.Name, err, b.logPath)
		}
		return err
	}
}

// imageLabels label an image, from artifacts or a Dockerfile, with the
// commit and repository it was built from; the publish stage's tag rules
// read the revision.
func imageLabels(plan Plan) map[string]string {
	return map[string]string{oci.RevisionLabel: plan.Commit, "org.opencontainers.image.source": plan.Repo}
}

// layoutImage reads the built image from the OCI layout BuildKit wrote.
func layoutImage(dir, digest string) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("read the built image: %w", err)
	}
	h, err := v1.NewHash(digest)
	if err != nil {
		return nil, fmt.Errorf("read the built image: %w", err)
	}
	return p.Image(h)
}

// classifyDockerfile makes a build that cannot succeed as it stands
// permanent: a Dockerfile error, a failing RUN, a missing base or a refused
// login. The daemon going away is left to a retry.
func classifyDockerfile(ctx context.Context, err error, image, logPath string) error {
	var app interface{ NonRetryable() bool }
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &app):
		return err
	case errors.Is(err, buildkit.ErrUnauthorized):
		return permanent(ErrRegistryRefused, "%s: %v\nlog: %s", image, err, logPath)
	case errors.Is(err, buildkit.ErrImageNotFound), errors.Is(err, buildkit.ErrInvalid), isBuildStepFailure(err):
		return permanent(ErrInvalidImage, "%s: %v\nlog: %s", image, err, logPath)
	}
	return fmt.Errorf("%s: build: %w (log: %s)", image, err, logPath)
}

// isBuildStepFailure reports a RUN that exited non-zero: BuildKit says
// `process "…" did not complete successfully: exit code: N`.
func isBuildStepFailure(err error) bool {
	return strings.Contains(err.Error(), "did not complete successfully: exit code: ")
}

func dirExists(dir string) bool {
	fi, err := os.Stat(dir)
	return err == nil && fi.IsDir()
}
