package activities

import (
	"context"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/kiln-ci/kiln/internal/buildkit"
	"github.com/kiln-ci/kiln/internal/buildspec"
	"github.com/kiln-ci/kiln/internal/event"
)

// containerSrcDir is where a build in an image sees its checkout, as on
// CodeBuild: CODEBUILD_SRC_DIR and the working directory.
const containerSrcDir = "/codebuild/output/src"

// buildInContainer runs the buildspec in a container of the plan's pinned
// image, through BuildKit. The container gets a copy of the checkout, the
// buildspec's cache paths as cache mounts kept per pipeline, and the
// secrets over BuildKit's session; its environment is the image's, HOME
// and the stage's env, and nothing of the worker's. Artifacts and reports
// are read back out of it before it is closed; a cancelled or timed-out
// build ends every process in it.
func (a *Activities) buildInContainer(ctx context.Context, in BuildInput, spec *buildspec.Spec, src string, opts buildspec.RunOptions, res *BuildResult) (*buildspec.Result, error) {
	image := in.Plan.BuildImage
	if a.Containers == nil {
		// Planned on a worker with a runtime, retried on one without: another
		// worker may pick the next attempt up.
		return nil, fmt.Errorf("the build runs in %s and this worker has no container runtime: %v", image, a.NoContainers)
	}
	puller, err := a.imagePuller(ctx, in.Plan.Build.Environment)
	if err != nil {
		return nil, err
	}
	caches := containerCaches(cacheScope(in), spec.Cache.Paths, opts.Log)
	secrets := secretMap(opts.Secrets)
	fmt.Fprintf(opts.Log, "[kiln] starting a container of %s\n", image)
	ctr, err := a.Containers.Open(ctx, buildkit.ContainerSpec{
		Image: image, Source: src, SourceDir: containerSrcDir, Caches: caches,
		Secrets: secrets, Auth: containerAuth(puller), Progress: opts.Log,
	})
	if err != nil {
		return nil, classifyContainer(err, image)
	}
	// Closed only after Run, which reads artifacts and reports through it.
	defer func() {
		if err := ctr.Close(); err != nil {
			a.Log.Warn().Err(err).Str("run", in.RunID).Str("image", image).Msg("closing the build container")
		}
	}()
	res.Image, res.ImageDigest = image, ctr.Digest
	opts.Sandbox, opts.Dir = ctr, containerSrcDir
	opts.BaseEnv = append(containerEnv(ctr.Config.Env), mapEnv(in.Plan.Build.Env)...)
	return spec.Run(ctx, opts)
}

// containerEnv is a build shell's base environment in an image: the
// image's own, with the base a host build has (PATH, HOME, TMPDIR, LANG)
// where the image sets none.
func containerEnv(image []string) []string {
	env := slices.Clone(image)
	for _, kv := range []string{"PATH=" + defaultPath, "HOME=/root", "TMPDIR=/tmp", "LANG=C.UTF-8"} {
		if name, _, _ := strings.Cut(kv, "="); envValue(env, name) == "" {
			env = append(env, kv)
		}
	}
	return env
}

// cacheScope names whose caches a build shares: its pipeline's, and apart
// for pull-request runs, so that a pull request cannot leave a poisoned
// dependency in a cache the branch and tag runs, which publish and hold
// the pipeline's secrets, then build with.
func cacheScope(in BuildInput) string {
	if in.Event.Kind == event.KindReview {
		return in.Pipeline + "/review"
	}
	return in.Pipeline
}

// containerCaches turns the buildspec's cache.paths into cache mounts. A
// path is a directory, absolute or relative to the source directory, and
// may end in /* or /**/* as CodeBuild's do. Each is kept per scope (see
// cacheScope) and path, so runs of a pipeline share it and other pipelines
// never see it. Paths that would hide the checkout, or are globs kiln
// cannot mount, are logged and skipped.
func containerCaches(scope string, paths []string, log io.Writer) []buildkit.Cache {
	var out []buildkit.Cache
	for _, p := range paths {
		dir := p
		for _, suffix := range []string{"/**/*", "/**", "/*"} {
			dir = strings.TrimSuffix(dir, suffix)
		}
		if !path.IsAbs(dir) {
			dir = path.Join(containerSrcDir, dir)
		}
		dir = path.Clean(dir)
		switch {
		case strings.ContainsAny(dir, "*?[{"):
			fmt.Fprintf(log, "[kiln] cache path %q is not a directory; it is not kept\n", p)
			continue
		case dir == containerSrcDir || strings.HasPrefix(containerSrcDir, dir+"/") || dir == "/":
			fmt.Fprintf(log, "[kiln] cache path %q would hide the checkout; it is not kept\n", p)
			continue
		case slices.ContainsFunc(out, func(c buildkit.Cache) bool { return c.Path == dir }):
			continue
		}
		fmt.Fprintf(log, "[kiln] cache: %s is kept between runs of %s\n", dir, scope)
		out = append(out, buildkit.Cache{ID: "kiln/" + scope + dir, Path: dir})
	}
	return out
}
