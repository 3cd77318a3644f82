package oci

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image describes one image to build: Files as one new layer on Base, and
// config on top of the base's.
type Image struct {
	// Repository is where the image goes, without a tag, such as
	// "registry.example.com/acme/app". Build does not use it; it is for
	// the caller's Push.
	Repository string
	// Base is the base image reference, such as "alpine:3.20" or
	// "alpine@sha256:…". "" or "scratch" means an empty image. A base named
	// by tag makes the result only as reproducible as the tag is stable.
	Base string
	// Files are added as one layer. Build reads them to digest the layer
	// and Push reads them again to upload it, so they must not change in
	// between. No files means no new layer.
	Files []File
	// Env entries ("KEY=value") replace the base's entry for the same KEY
	// and are otherwise appended.
	Env []string
	// Entrypoint and Cmd replace the base's when set. Setting Entrypoint
	// without Cmd clears the base's Cmd, as a Dockerfile ENTRYPOINT does.
	Entrypoint, Cmd []string
	// WorkingDir replaces the base's when set.
	WorkingDir string
	// Labels are merged over the base's, such as
	// org.opencontainers.image.revision for the commit.
	Labels map[string]string
	// Platform picks the image from a multi-platform base, as
	// "os/arch[/variant]"; default "linux/amd64". A single-platform base
	// must match it.
	Platform string
	// Created dates the image and its files; zero means the Unix epoch.
	// Set it from the commit time for a date that means something and is
	// still reproducible.
	Created time.Time
}

// Build makes img without pushing it. It is deterministic: files are
// written sorted by target, owned by root and dated img.Created, so the same
// files, base and config give the same digest on every worker.
func (p *Pusher) Build(ctx context.Context, img Image) (v1.Image, error) {
	what := "image"
	if img.Repository != "" {
		what += " " + img.Repository
	}
	platform := img.Platform
	if platform == "" {
		platform = "linux/amd64"
	}
	plat, err := v1.ParsePlatform(platform)
	if err != nil {
		return nil, fmt.Errorf("%s: platform %q: %w: %w", what, platform, ErrInvalid, err)
	}
	created := img.Created.UTC()
	if img.Created.IsZero() {
		created = time.Unix(0, 0).UTC()
	}
	entries, err := planLayer(img.Files)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	base, err := p.base(ctx, img.Base, *plat)
	if err != nil {
		return nil, err
	}
	out := base
	if len(entries) > 0 {
		if out, err = appendLayer(base, entries, created); err != nil {
			return nil, fmt.Errorf("%s: layer: %w", what, err)
		}
	}
	cfg, err := out.ConfigFile()
	if err != nil {
		return nil, classify(err, "read config of base image", img.Base, p.secrets())
	}
	cfg = cfg.DeepCopy()
	configure(cfg, img, *plat, created)
	return mutate.ConfigFile(out, cfg)
}

// base fetches the base image for plat, or makes an empty one.
func (p *Pusher) base(ctx context.Context, ref string, plat v1.Platform) (v1.Image, error) {
	if ref == "" || ref == "scratch" {
		return empty.Image, nil
	}
	r, err := name.ParseReference(ref, p.nameOptions()...)
	if err != nil {
		return nil, fmt.Errorf("base image %q: %w: %w", ref, ErrInvalid, err)
	}
	desc, err := remote.Get(r, append(p.remoteOptions(ctx), remote.WithPlatform(plat))...)
	if err != nil {
		return nil, classify(err, "pull base image", r.Name(), p.secrets())
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, classify(err, "pull base image", r.Name(), p.secrets())
		}
		if ok, err := hasPlatform(idx, plat); err != nil {
			return nil, classify(err, "pull base image", r.Name(), p.secrets())
		} else if !ok {
			return nil, fmt.Errorf("base image %s has no %s image: %w", r.Name(), plat.String(), ErrNotFound)
		}
	}
	img, err := desc.Image()
	if err != nil {
		return nil, classify(err, "pull base image", r.Name(), p.secrets())
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, classify(err, "pull base image", r.Name(), p.secrets())
	}
	if cfg.Architecture != "" && (cfg.OS != plat.OS || cfg.Architecture != plat.Architecture) {
		return nil, fmt.Errorf("base image %s is %s/%s, not %s: %w", r.Name(), cfg.OS, cfg.Architecture, plat.String(), ErrNotFound)
	}
	return img, nil
}

// hasPlatform reports whether idx holds an image for plat. A child with no
// platform counts as linux/amd64, as ggcr and Docker treat it.
func hasPlatform(idx v1.ImageIndex, plat v1.Platform) (bool, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return false, err
	}
	for _, d := range m.Manifests {
		p := v1.Platform{OS: "linux", Architecture: "amd64"}
		if d.Platform != nil {
			p = *d.Platform
		}
		if p.OS == plat.OS && p.Architecture == plat.Architecture && (plat.Variant == "" || p.Variant == plat.Variant) {
			return true, nil
		}
	}
	return false, nil
}

// appendLayer adds entries to base as one gzipped layer of the media type
// family the base uses, so an OCI base stays an OCI image.
func appendLayer(base v1.Image, entries []entry, created time.Time) (v1.Image, error) {
	mt, err := base.MediaType()
	if err != nil {
		return nil, err
	}
	layerType := types.DockerLayer
	if mt == types.OCIManifestSchema1 {
		layerType = types.OCILayer
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeLayer(pw, entries, created)) }()
		return pr, nil
	}, tarball.WithMediaType(layerType))
	if err != nil {
		return nil, err
	}
	return mutate.Append(base, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "kiln publish: add files"},
	})
}

// configure applies img's config to cfg, the base's config with the new
// layer already in its rootfs.
func configure(cfg *v1.ConfigFile, img Image, plat v1.Platform, created time.Time) {
	cfg.Created = v1.Time{Time: created}
	if cfg.OS == "" {
		cfg.OS, cfg.Architecture, cfg.Variant = plat.OS, plat.Architecture, plat.Variant
	}
	if cfg.RootFS.Type == "" {
		cfg.RootFS.Type = "layers"
	}
	c := &cfg.Config
	c.Env = mergeEnv(c.Env, img.Env)
	if img.Entrypoint != nil {
		c.Entrypoint, c.Cmd = img.Entrypoint, nil
	}
	if img.Cmd != nil {
		c.Cmd = img.Cmd
	}
	if img.WorkingDir != "" {
		c.WorkingDir = img.WorkingDir
	}
	if len(img.Labels) > 0 && c.Labels == nil {
		c.Labels = make(map[string]string, len(img.Labels))
	}
	for k, v := range img.Labels {
		c.Labels[k] = v
	}
}

// mergeEnv sets each KEY=value of set in env, in place when env has KEY.
func mergeEnv(env, set []string) []string {
	out := append([]string(nil), env...)
	for _, kv := range set {
		key, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, old := range out {
			if k, _, _ := strings.Cut(old, "="); k == key {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}
