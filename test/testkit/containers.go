package testkit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/kiln-ci/kiln/internal/buildkit"
	"github.com/kiln-ci/kiln/internal/oci"
)

// Registry is a loopback OCI registry that holds a busybox base image,
// since tests have no internet to pull one from.
type Registry struct {
	// Host is the registry's host:port, reached over plain HTTP.
	Host string
	// Busybox is the base image, pinned: <Host>/busybox@sha256:….
	Busybox string
	// BusyboxTag names the same image by tag: <Host>/busybox:1.
	BusyboxTag string
	server     *httptest.Server
}

// StartRegistry starts a registry and pushes the busybox image, made from
// Debian's busybox-static, to it. Close stops it.
func StartRegistry(ctx context.Context) (*Registry, error) {
	r := &Registry{server: httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))}
	r.Host = strings.TrimPrefix(r.server.URL, "http://")
	r.BusyboxTag = r.Host + "/busybox:1"
	digest, err := oci.PushBusybox(ctx, r.BusyboxTag)
	if err != nil {
		r.Close()
		return nil, err
	}
	r.Busybox = r.Host + "/busybox@" + digest.String()
	return r, nil
}

// Close stops the registry.
func (r *Registry) Close() { r.server.Close() }

// Containers is a test's container runtime, all on this machine: a private
// buildkitd (runc, as root) and a Registry it may pull from over HTTP.
type Containers struct {
	// Daemon is the running buildkitd; Daemon.Address dials it.
	Daemon *buildkit.Daemon
	// Root is the daemon's state directory.
	Root string
	// Registry is the registry's host:port; Busybox and BusyboxTag name
	// its base image (see Registry).
	Registry, Busybox, BusyboxTag string
	reg                           *Registry
}

// StartContainers starts a registry with busybox, then buildkitd under
// root with that registry allowed over HTTP. buildkitd is KILN_BUILDKITD or
// the one on PATH (test/run puts kiln's own build there). Close stops both.
func StartContainers(ctx context.Context, root string) (*Containers, error) {
	reg, err := StartRegistry(ctx)
	if err != nil {
		return nil, err
	}
	c := &Containers{Registry: reg.Host, Busybox: reg.Busybox, BusyboxTag: reg.BusyboxTag, Root: root, reg: reg}
	c.Daemon, err = buildkit.StartDaemon(ctx, buildkit.DaemonOptions{
		Root:               root,
		Binary:             os.Getenv("KILN_BUILDKITD"),
		InsecureRegistries: []string{reg.Host},
	})
	if err != nil {
		reg.Close()
		return nil, err
	}
	return c, nil
}

// Close stops buildkitd and the registry.
func (c *Containers) Close() {
	c.Daemon.Stop()
	c.reg.Close()
}

// RequireContainers starts Containers for one test and stops them at its
// end. A machine that cannot run buildkitd skips the test only when it is
// not root: as root, test/run has installed runc and buildkitd, so their
// absence is a failure, never a silent skip.
func RequireContainers(t testing.TB) *Containers {
	t.Helper()
	c, err := StartContainers(context.Background(), t.TempDir())
	if errors.Is(err, buildkit.ErrUnavailable) && os.Geteuid() != 0 {
		t.Skipf("containers: %v", err)
	}
	if err != nil {
		t.Fatalf("containers: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// Running counts the containers this buildkitd has running.
func (c *Containers) Running() (int, error) { return RunningContainers(c.Root) }

// RunningContainers counts the containers a buildkitd with state under
// root has running.
func RunningContainers(root string) (int, error) {
	ids, err := buildkit.RunningContainers(root)
	return len(ids), err
}

// ReleaseBuildkit waits up to 15 s for each buildkitd whose root is under
// dir to exit (one a killed kiln took down with it is still shutting down),
// then unmounts what they left mounted there, so that dir can be removed.
func ReleaseBuildkit(dir string) {
	deadline := time.Now().Add(15 * time.Second)
	for len(buildkitdsUnder(dir)) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	_ = buildkit.ReleaseRoot(dir)
}

// buildkitdsUnder lists the pids of buildkitd processes with --root under dir.
func buildkitdsUnder(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !bytes.Contains(cmdline, []byte("buildkitd")) {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		for i, a := range args {
			if a == "--root" && i+1 < len(args) && strings.HasPrefix(args[i+1], dir) && ProcessAlive(pid) {
				out = append(out, pid)
			}
		}
	}
	return out
}
