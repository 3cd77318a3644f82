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
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/bmatcuk/doublestar/v4"
	"github.com/google/go-containerregistry/pkg/name"
	"go.temporal.io/sdk/activity"

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
)

// ImageInput asks for one configured image to be built and pushed.
type ImageInput struct {
	RunID    string      `json:"run_id"`
	Pipeline string      `json:"pipeline"`
	Event    event.Event `json:"event"`
	Plan     Plan        `json:"plan"`
	// Index is the image's position in publish.images.
	Index int `json:"index"`
}

// ImageResult is a pushed image.
type ImageResult struct {
	Name   string   `json:"name"`
	Digest string   `json:"digest"`
	Tags   []string `json:"tags"`
	// Skipped are tags that already pointed at this digest: nothing was pushed
	// for them.
	Skipped []string `json:"skipped,omitempty"`
}

// imageProgress is PublishImage's heartbeat: a push of large layers keeps
// the activity alive while bytes move, and one that stalls times out.
type imageProgress struct {
	Image   string `json:"image"`
	Step    string `json:"step"`
	Written int64  `json:"written,omitempty"`
	Total   int64  `json:"total,omitempty"`
}

// PublishImage builds the image from the build's artifacts on its base
// image, and pushes it with the tags its rules give this run. The image is
// reproducible (fixed timestamps, sorted files), so a retry builds the same
// digest, and tags that already point at it are left alone.
func (a *Activities) PublishImage(ctx context.Context, in ImageInput) (*ImageResult, error) {
	cfg := in.Plan.Publish.Images[in.Index]
	artifacts := a.paths("build", safeName(in.RunID), 1).Artifacts
	files, err := imageFiles(artifacts, cfg.Files)
	if err != nil {
		return nil, err
	}
	tags, err := a.imageTags(ctx, cfg, in)
	if err != nil {
		return nil, err
	}
	p, err := a.pusher(ctx, cfg)
	if err != nil {
		return nil, err
	}
	img := oci.Image{Repository: cfg.Name, Base: cfg.Base, Files: files, Entrypoint: cfg.Entrypoint, Cmd: cfg.Cmd,
		WorkingDir: cfg.WorkingDir, Labels: map[string]string{
			"org.opencontainers.image.revision": in.Plan.Commit,
			"org.opencontainers.image.source":   in.Plan.Repo,
		}}
	for _, k := range slices.Sorted(maps.Keys(cfg.Env)) {
		img.Env = append(img.Env, k+"="+cfg.Env[k])
	}
	activity.RecordHeartbeat(ctx, imageProgress{Image: cfg.Name, Step: "build"})
	built, err := p.Build(ctx, img)
	if err != nil {
		return nil, classifyImage(err, "build "+cfg.Name)
	}
	activity.RecordHeartbeat(ctx, imageProgress{Image: cfg.Name, Step: "push"})
	var last time.Time
	p.Progress = func(written, total int64) {
		if time.Since(last) >= time.Second || written == total {
			last = time.Now()
			activity.RecordHeartbeat(ctx, imageProgress{Image: cfg.Name, Step: "push", Written: written, Total: total})
		}
	}
	pushed, err := p.Push(ctx, cfg.Name, built, tags)
	if err != nil {
		return nil, classifyImage(err, "push "+cfg.Name)
	}
	a.Log.Info().Str("run", in.RunID).Str("image", cfg.Name).Str("digest", pushed.Digest).
		Strs("tags", pushed.Tags).Strs("unchanged", pushed.Skipped).Msg("image published")
	return &ImageResult{Name: cfg.Name, Digest: pushed.Digest, Tags: tags, Skipped: pushed.Skipped}, nil
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

// imageTags applies the image's tag rules to the run's event.
func (a *Activities) imageTags(ctx context.Context, cfg config.ImagePublish, in ImageInput) ([]string, error) {
	rules := oci.TagRules{}
	if t := cfg.Tags; t != nil {
		rules = oci.TagRules{DefaultBranch: t.DefaultBranch, Branch: t.Branch, Tag: t.Tag, SemverMinor: t.SemverMinor,
			SemverMajor: t.SemverMajor, Review: t.Review, ShortSHA: t.ShortSHA}
	}
	ev := in.Event
	ti := oci.TagInput{Kind: string(ev.Kind), Branch: ev.Branch, Tag: ev.Tag, PR: prNumber(ev), Commit: in.Plan.Commit}
	if ev.Kind == event.KindImage {
		ti.Kind = string(event.KindBranch)
	}
	if ev.Branch != "" {
		def, err := gitx.DefaultBranch(ctx, in.Plan.CloneURL)
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

// classifyImage makes refusals and missing images permanent.
func classifyImage(err error, what string) error {
	switch {
	case errors.Is(err, oci.ErrUnauthorized):
		return permanent(ErrRegistryRefused, "%s: %v", what, err)
	case errors.Is(err, oci.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		return permanent(ErrInvalidImage, "%s: %v", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
