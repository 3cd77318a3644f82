package testkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-ci/kiln/internal/buildkit"
	"github.com/kiln-ci/kiln/internal/oci"
)

// Containers is a test's container runtime, all on this machine: a private
// buildkitd (runc, as root) and a loopback registry that holds a busybox
// base image, since tests have no internet to pull one from.
type Containers struct {
	// Daemon is the running buildkitd; Daemon.Address dials it.
	Daemon *buildkit.Daemon
	// Root is the daemon's state directory.
	Root string
	// Registry is the registry's host:port, reached over plain HTTP.
	Registry string
	// Busybox is the base image, pinned: <Registry>/busybox@sha256:….
	Busybox string
	// BusyboxTag names the same image by tag: <Registry>/busybox:1.
	BusyboxTag string
	server     *httptest.Server
}

// StartContainers starts a registry, pushes the busybox image to it, then
// starts buildkitd under root with that registry allowed over HTTP.
// buildkitd is KILN_BUILDKITD or the one on PATH (test/run puts kiln's own
// build there). Close stops both.
func StartContainers(ctx context.Context, root string) (*Containers, error) {
	c := &Containers{server: httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))}
	c.Registry = strings.TrimPrefix(c.server.URL, "http://")
	img, err := oci.BusyboxImage(oci.BusyboxPath)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.BusyboxTag = c.Registry + "/busybox:1"
	ref, err := name.ParseReference(c.BusyboxTag, name.Insecure)
	if err != nil {
		c.Close()
		return nil, err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		c.Close()
		return nil, fmt.Errorf("push busybox: %w", err)
	}
	digest, err := img.Digest()
	if err != nil {
		c.Close()
		return nil, err
	}
	c.Busybox = c.Registry + "/busybox@" + digest.String()
	c.Root = root
	c.Daemon, err = buildkit.StartDaemon(ctx, buildkit.DaemonOptions{
		Root:               root,
		Binary:             os.Getenv("KILN_BUILDKITD"),
		InsecureRegistries: []string{c.Registry},
	})
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Close stops buildkitd and the registry.
func (c *Containers) Close() {
	c.Daemon.Stop()
	c.server.Close()
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
