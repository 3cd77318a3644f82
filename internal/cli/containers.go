package cli

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/rs/zerolog"

	"github.com/kiln-ci/kiln/internal/buildkit"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/oci"
)

// containers is a worker's container runtime, or why it has none.
type containers struct {
	client *buildkit.Client
	daemon *buildkit.Daemon
	// err says why there is no runtime; pipelines that need one fail their
	// plan with it.
	err error
}

// startContainers dials the buildkitd at address or, with none given,
// starts one under dataDir/buildkit. It never fails the worker: without a
// runtime it logs one line saying why, and only pipelines that need
// containers fail, with that reason.
func startContainers(ctx context.Context, address, dataDir string, insecure []string, log zerolog.Logger) *containers {
	c := &containers{}
	started := time.Now()
	if address == "" {
		c.daemon, c.err = buildkit.StartDaemon(ctx, buildkit.DaemonOptions{
			Root: filepath.Join(dataDir, "buildkit"), InsecureRegistries: insecure,
		})
		if c.err == nil {
			address = c.daemon.Address
		}
	}
	if c.err == nil {
		c.client, c.err = buildkit.Dial(ctx, address)
	}
	if c.err != nil {
		c.daemon.Stop()
		c.daemon = nil
		if !errors.Is(c.err, buildkit.ErrUnavailable) {
			c.err = errors.Join(buildkit.ErrUnavailable, c.err)
		}
		log.Warn().Err(c.err).Msg("no container runtime: builds with an image and Dockerfile images will fail; host builds run")
		return c
	}
	log.Info().Str("buildkit", address).Bool("started", c.daemon != nil).Dur("took", time.Since(started)).Msg("container runtime ready")
	if c.daemon != nil && !c.daemon.Network.Isolated {
		log.Warn().Str("why", c.daemon.Network.Why).Msg("builds in containers share the worker's network: they can reach what listens on it, and its cloud metadata")
	}
	return c
}

// stop closes the client and stops a daemon kiln started.
func (c *containers) stop() {
	if c.client != nil {
		c.client.Close()
	}
	c.daemon.Stop()
}

// insecureRegistries are the registries kiln's buildkitd reaches over plain
// HTTP: the images config marks insecure, and any on loopback, as kiln's
// own image pushes do.
func insecureRegistries(cfg *config.Config, extra ...string) []string {
	hosts := append([]string(nil), extra...)
	add := func(ref string, insecure bool) {
		r, err := name.ParseReference(ref)
		if err != nil {
			return
		}
		host := r.Context().RegistryStr()
		if insecure || oci.Loopback(host) {
			hosts = append(hosts, host)
		}
	}
	for _, p := range cfg.Pipelines {
		if b := p.Stages.Build; b != nil && b.Environment != nil {
			add(b.Environment.Image, b.Environment.Insecure)
		}
		if pub := p.Stages.Publish; pub != nil {
			for _, img := range pub.Images {
				add(img.Name, img.Insecure)
				if img.Base != "" {
					add(img.Base, img.Insecure)
				}
			}
		}
	}
	slices.Sort(hosts)
	return slices.Compact(hosts)
}
