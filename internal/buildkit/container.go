package buildkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	gwpb "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/solver/pb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"

	"github.com/kiln-ci/kiln/internal/buildspec"
)

// ContainerSpec is a container for a build's shells: an image with the
// build's source, caches and secrets.
type ContainerSpec struct {
	// Image is the image reference, best pinned by digest.
	Image string
	// Source is the checkout on the worker; it is copied in at SourceDir,
	// writable. What the build writes there stays in the container and is
	// read back through Container.Source.
	Source, SourceDir string
	// Caches are kept between containers with the same ID (BuildKit cache
	// mounts): CodeBuild's local cache.
	Caches []Cache
	// Secrets are what StartShell's secret environment variables are read
	// from, by name, over the session: they are in no build definition.
	Secrets map[string][]byte
	// Auth has the credentials for pulling Image, by registry host.
	Auth map[string]Auth
	// Progress receives BuildKit's own progress (the pull); nil drops it.
	Progress io.Writer
}

// Cache is one cache mount.
type Cache struct {
	// ID names the cache; containers that mount the same ID share it.
	ID string
	// Path is where it is mounted in the container.
	Path string
}

// ImageConfig is what a container takes from its image's config.
type ImageConfig struct {
	Env        []string
	WorkingDir string
	User       string
}

// parseImageConfig reads an image's config JSON.
func parseImageConfig(cfgJSON []byte) (ImageConfig, error) {
	var img ocispecs.Image
	if err := json.Unmarshal(cfgJSON, &img); err != nil {
		return ImageConfig{}, fmt.Errorf("image config: %w", err)
	}
	return ImageConfig{Env: img.Config.Env, WorkingDir: img.Config.WorkingDir, User: img.Config.User}, nil
}

// Container is a running BuildKit container that a buildspec runs in: it
// is a buildspec.Sandbox. Its first process is an idle init that holds the
// container open, so a shell that a command ended can be replaced, as on
// the worker. Close kills everything in it.
type Container struct {
	// Config is the image's config: its Env, WorkingDir and User.
	Config ImageConfig
	// Digest is the image's digest, as BuildKit resolved it.
	Digest string

	ctr       gateway.Container
	srcMounts []fsMount // the source mount and the cache mounts under it
	srcDir    string
	secrets   []string // names, for SecretEnv
	initStdin io.Closer
	initOnce  sync.Once
	alive     context.Context // done once the init, and so the container, has ended
	closeOnce sync.Once
	closeErr  error
	close     func() error
}

// Open starts a container for spec. The container lives in a BuildKit
// session of its own until Close, or until ctx ends.
func (c *Client) Open(ctx context.Context, spec ContainerSpec) (*Container, error) {
	src, err := fsutil.NewFS(spec.Source)
	if err != nil {
		return nil, fmt.Errorf("container source: %w", err)
	}
	opened := make(chan *Container, 1)
	release, done := make(chan struct{}), make(chan error, 1)
	ctr := &Container{srcDir: spec.SourceDir}
	ctr.close = func() error {
		close(release)
		// Releasing kills the init, and the session may report that kill
		// (as text, over gRPC) as its end: that is the close going well.
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), context.Canceled.Error()) {
			return err
		}
		return nil
	}
	for name := range spec.Secrets {
		ctr.secrets = append(ctr.secrets, name)
	}
	status := make(chan *client.SolveStatus)
	progressDone := printProgress(spec.Progress, status)
	go func() {
		_, err := c.bk.Build(ctx, client.SolveOpt{
			LocalMounts: map[string]fsutil.FS{"src": src},
			Session:     attachables(spec.Auth, spec.Secrets),
		}, "kiln", func(ctx context.Context, gw gateway.Client) (*gateway.Result, error) {
			if err := ctr.start(ctx, gw, spec); err != nil {
				return nil, err
			}
			opened <- ctr
			<-release
			return gateway.NewResult(), ctr.release(ctx)
		}, status)
		<-progressDone
		done <- err
	}()
	select {
	case ctr := <-opened:
		return ctr, nil
	case err := <-done:
		return nil, classify(fmt.Errorf("container from %s: %s", spec.Image, cleanError(err)))
	}
}

// start resolves the image, copies the source in, and starts the init.
func (c *Container) start(ctx context.Context, gw gateway.Client, spec ContainerSpec) error {
	_, dgst, cfgJSON, err := gw.ResolveImageConfig(ctx, spec.Image, sourceresolver.Opt{
		ImageOpt: &sourceresolver.ResolveImageOpt{ResolveMode: llb.ResolveModeDefault.String()},
	})
	if err != nil {
		return err
	}
	c.Digest = dgst.String()
	if c.Config, err = parseImageConfig(cfgJSON); err != nil {
		return err
	}
	root, err := solveRef(ctx, gw, llb.Image(spec.Image))
	if err != nil {
		return err
	}
	srcRef, err := solveRef(ctx, gw, llb.Local("src", llb.SharedKeyHint(spec.Source)))
	if err != nil {
		return err
	}
	mounts := []gateway.Mount{
		{Dest: "/", Ref: root, MountType: pb.MountType_BIND},
		{Dest: spec.SourceDir, Ref: srcRef, MountType: pb.MountType_BIND},
	}
	c.srcMounts = []fsMount{{dest: spec.SourceDir, index: 1}}
	for _, cm := range spec.Caches {
		if cm.Path == spec.SourceDir || strings.HasPrefix(cm.Path, spec.SourceDir+"/") {
			// Outputs there (target/, node_modules/) are read through it.
			c.srcMounts = append(c.srcMounts, fsMount{dest: cm.Path, index: len(mounts)})
		}
		// PRIVATE: a second build of the pipeline running at the same time
		// gets a cache of its own rather than waiting for, or writing over,
		// the first's.
		mounts = append(mounts, gateway.Mount{Dest: cm.Path, MountType: pb.MountType_CACHE,
			CacheOpt: &pb.CacheOpt{ID: cm.ID, Sharing: pb.CacheSharingOpt_PRIVATE}})
	}
	return c.boot(ctx, gw, mounts)
}

// boot makes the container from mounts and starts its init.
func (c *Container) boot(ctx context.Context, gw gateway.Client, mounts []gateway.Mount) error {
	var err error
	c.ctr, err = gw.NewContainer(ctx, gateway.NewContainerRequest{Mounts: mounts, NetMode: pb.NetMode_UNSET})
	if err != nil {
		return err
	}
	initIn, initOut := io.Pipe()
	c.initStdin = initOut
	// The init only waits: on end of input (Close) it exits, and with it
	// everything else in the container.
	init, err := c.ctr.Start(context.WithoutCancel(ctx), gateway.StartRequest{
		Args: []string{"/bin/sh", "-c", "read kiln_init || :"}, Env: c.Config.Env, Cwd: "/",
		Stdin: initIn, Stdout: discard{}, Stderr: discard{},
	})
	if err != nil {
		c.ctr.Release(context.WithoutCancel(ctx))
		return fmt.Errorf("start the container (the image needs /bin/sh): %w", err)
	}
	// alive ends with the init: BuildKit would wait for ever to exec into
	// a container that is gone.
	var dead context.CancelFunc
	c.alive, dead = context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		_ = init.Wait()
		dead()
	}()
	return nil
}

func solveRef(ctx context.Context, gw gateway.Client, st llb.State) (gateway.Reference, error) {
	def, err := st.Marshal(ctx)
	if err != nil {
		return nil, err
	}
	res, err := gw.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB(), Evaluate: true})
	if err != nil {
		return nil, err
	}
	return res.SingleRef()
}

// StartShell execs a build shell in the container; its secrets come over
// the session as secret environment variables.
func (c *Container) StartShell(ctx context.Context, p buildspec.ShellSpec) (buildspec.ShellProcess, error) {
	var secretEnv []*pb.SecretEnv
	for _, s := range p.Secrets {
		secretEnv = append(secretEnv, &pb.SecretEnv{ID: s.Name, Name: s.Name})
	}
	proc, err := c.ctr.Start(c.alive, gateway.StartRequest{
		Args: p.Argv(true), Env: p.Env, Cwd: p.Dir, User: c.Config.User, SecretEnv: secretEnv,
		Stdin: p.Stdin, Stdout: p.Stdout, Stderr: nopCloser{p.Stderr},
	})
	if err != nil {
		p.Stdin.Close()
		p.Stdout.Close()
		return nil, fmt.Errorf("start %s in the container: %s", p.Shell[0], cleanError(err))
	}
	cp := &containerProcess{proc: proc, endAll: c.endInit, exited: make(chan struct{})}
	go func() {
		err := proc.Wait()
		cp.status = exitStatus(err)
		// The gateway closes neither stream: the shell's records end here.
		p.Stdout.Close()
		p.Stdin.Close()
		close(cp.exited)
	}()
	return cp, nil
}

// Source reads the source directory back out of the container: the
// checkout as the build left it.
func (c *Container) Source() (fs.FS, error) {
	return &containerFS{ctr: c.ctr, base: c.srcDir, mounts: c.srcMounts}, nil
}

// endInit ends the init's input: it exits, and the kernel ends every other
// process in the container's PID namespace.
func (c *Container) endInit() {
	c.initOnce.Do(func() { c.initStdin.Close() })
}

// Close ends the container (and its session, for one Open started),
// killing whatever still runs.
func (c *Container) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.close() })
	return c.closeErr
}

// release ends the init and releases the container. Its context must
// outlive the caller's, which may be why the container is going.
func (c *Container) release(ctx context.Context) error {
	c.endInit()
	return c.ctr.Release(context.WithoutCancel(ctx))
}

// containerProcess is a shell exec'd into a container.
type containerProcess struct {
	proc   gateway.ContainerProcess
	endAll func()
	exited chan struct{}
	status int
}

// Kill gives a shell whose script has ended a moment to exit, then ends
// the container's init, which takes every process in the container with
// it: a cancelled build, or a background process that holds the shell's
// output open. The container's files stay readable until Close.
func (p *containerProcess) Kill(grace time.Duration) {
	select {
	case <-p.exited:
		return
	case <-time.After(min(grace, time.Second)):
	}
	p.endAll()
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second): // Close ends it for good
	}
}

func (p *containerProcess) ExitStatus() int {
	select {
	case <-p.exited:
		return p.status
	default:
		return -1
	}
}

// exitStatus turns the gateway's process error into a shell status.
func exitStatus(err error) int {
	if err == nil {
		return 0
	}
	var exit *gwpb.ExitError
	if errors.As(err, &exit) {
		return int(exit.ExitCode)
	}
	return 128 + int(syscall.SIGKILL)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) Close() error                { return nil }

// nopCloser keeps the shared log open when the gateway is done with it.
type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
