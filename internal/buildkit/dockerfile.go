package buildkit

import (
	"strings"

	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/distribution/reference"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/solver/pb"
	"github.com/tonistiigi/fsutil"
)

// Dockerfile is one image to build from a Dockerfile, as `docker build`
// would, with BuildKit's own Dockerfile frontend.
type Dockerfile struct {
	// Context is the build context, a directory on the worker.
	Context string
	// File is the Dockerfile, a path on the worker.
	File string
	// Contexts are named build contexts (COPY --from=NAME), each a
	// directory on the worker.
	Contexts map[string]string
	// BuildArgs are ARG values.
	BuildArgs map[string]string
	// Target is the stage to build; "" means the last.
	Target string
	// Bases pins base images: a FROM reference as the Dockerfile writes it
	// (after ARG expansion) to the pinned reference to use instead
	// (name@sha256:…). See Bases.
	Bases map[string]string
	// Labels are set on the image, such as the commit it was built from.
	Labels map[string]string
	// Secrets are what RUN --mount=type=secret,id=ID reads, by id. They
	// travel over the session and are in no layer or cache key.
	Secrets map[string][]byte
	// Auth has registry credentials by host, for pulling bases.
	Auth map[string]Auth
	// Epoch is SOURCE_DATE_EPOCH: the image's and its files' timestamps,
	// so one commit builds one digest where the Dockerfile allows.
	Epoch time.Time
	// Check, if set, runs in a container of the built image before it is
	// exported; an error fails the build and nothing is written.
	Check func(ctx context.Context, ctr *Container) error
	// Layout is a directory the image is written to as an OCI image layout.
	Layout string
	// Progress receives the build's output, RUN steps included.
	Progress io.Writer
}

// Built is what BuildDockerfile made.
type Built struct {
	// Digest is the image manifest's digest, in Layout.
	Digest string
}

// BuildDockerfile builds d and writes the image to d.Layout. A `# syntax=`
// line is ignored: the frontend built into kiln's BuildKit is used, so a
// build never fetches and runs a frontend image (there may be no internet,
// and a frontend sees the build's secrets).
func (c *Client) BuildDockerfile(ctx context.Context, d Dockerfile) (*Built, error) {
	locals := map[string]fsutil.FS{}
	add := func(name, dir string) error {
		fs, err := fsutil.NewFS(dir)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		locals[name] = fs
		return nil
	}
	if err := add("context", d.Context); err != nil {
		return nil, err
	}
	if err := add("dockerfile", filepath.Dir(d.File)); err != nil {
		return nil, err
	}
	attrs := d.attrs()
	for _, name := range slices.Sorted(maps.Keys(d.Contexts)) {
		local := "ctx-" + name
		if err := add(local, d.Contexts[name]); err != nil {
			return nil, err
		}
		attrs["context:"+name] = "local:" + local
	}
	status := make(chan *client.SolveStatus)
	progressDone := printProgress(d.Progress, status)
	var checkErr error // BuildKit carries errors as text; keep the check's own
	resp, err := c.bk.Build(ctx, client.SolveOpt{
		LocalMounts: locals,
		Session:     attachables(d.Auth, d.Secrets),
		Exports: []client.ExportEntry{{
			Type:      client.ExporterOCI,
			OutputDir: d.Layout,
			Attrs:     map[string]string{"tar": "false", "rewrite-timestamp": "true"},
		}},
	}, "kiln", func(ctx context.Context, gw gateway.Client) (*gateway.Result, error) {
		res, err := gw.Solve(ctx, gateway.SolveRequest{Frontend: "dockerfile.v0", FrontendOpt: attrs})
		if err != nil || d.Check == nil {
			return res, err
		}
		checkErr = check(ctx, gw, res, d.Check)
		return res, checkErr
	}, status)
	<-progressDone
	if err != nil {
		var failed *checkError
		if errors.As(checkErr, &failed) {
			return nil, failed.err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, classify(errors.New(cleanError(err)))
	}
	digest := resp.ExporterResponse[exptypes.ExporterImageDigestKey]
	if digest == "" {
		return nil, errors.New("buildkit exported no image digest")
	}
	return &Built{Digest: digest}, nil
}

// attrs are the Dockerfile frontend's options.
func (d Dockerfile) attrs() map[string]string {
	attrs := map[string]string{
		"filename": filepath.Base(d.File),
		// Its presence makes the frontend ignore `# syntax=` lines.
		"cmdline": "kiln",
	}
	if d.Target != "" {
		attrs["target"] = d.Target
	}
	for k, v := range d.BuildArgs {
		attrs["build-arg:"+k] = v
	}
	if !d.Epoch.IsZero() {
		attrs["build-arg:SOURCE_DATE_EPOCH"] = strconv.FormatInt(d.Epoch.Unix(), 10)
	}
	for k, v := range d.Labels {
		attrs["label:"+k] = v
	}
	for from, pinned := range d.Bases {
		attrs["context:"+contextName(from)] = "docker-image://" + pinned
	}
	return attrs
}

// contextName is the name BuildKit's frontend looks a FROM image up by
// among the named contexts: its short form, without ":latest", so that
// "docker.io/library/alpine:latest" and "alpine" are one name.
func contextName(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return strings.TrimSuffix(reference.FamiliarString(named), ":latest")
}

// checkError carries a Check's failure through BuildKit unchanged.
type checkError struct{ err error }

func (e *checkError) Error() string { return e.err.Error() }
func (e *checkError) Unwrap() error { return e.err }

// check runs fn in a container of the built image, configured as the
// image says (its env, working directory and user).
func check(ctx context.Context, gw gateway.Client, res *gateway.Result, fn func(context.Context, *Container) error) error {
	ref, err := res.SingleRef()
	if err != nil {
		return err
	}
	ctr := &Container{srcDir: "/", srcMounts: []fsMount{{dest: "/", index: 0}}}
	if cfgJSON, ok := res.Metadata[exptypes.ExporterImageConfigKey]; ok {
		if ctr.Config, err = parseImageConfig(cfgJSON); err != nil {
			return err
		}
	}
	if err := ctr.boot(ctx, gw, []gateway.Mount{{Dest: "/", Ref: ref, MountType: pb.MountType_BIND}}); err != nil {
		return err
	}
	ctr.close = func() error { return ctr.release(ctx) }
	defer ctr.Close()
	if err := fn(ctx, ctr); err != nil {
		return &checkError{err}
	}
	return nil
}
