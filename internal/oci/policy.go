package oci

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// RevisionLabel is the image label that names the commit an image was
// built from. Push compares it to tell a rebuild of the same commit from
// another commit under a WriteOnce tag.
const RevisionLabel = "org.opencontainers.image.revision"

// keepExisting decides for a WriteOnce or IfAbsent tag that points at
// another image than the one being pushed: it is kept there (true), or, for
// a WriteOnce tag at another commit's image, the push fails with
// ErrTagConflict.
func (p *Pusher) keepExisting(ctx context.Context, puller *remote.Puller, tag name.Tag, policy TagPolicy, existing v1.Hash, image v1.Image, digest v1.Hash) (bool, error) {
	if policy == IfAbsent {
		return true, nil
	}
	ours, err := revision(image)
	if err != nil {
		return false, fmt.Errorf("push %s: read the image's config: %w", tag.Name(), err)
	}
	theirs, err := p.revisionAt(ctx, puller, tag)
	if err != nil {
		return false, err
	}
	if ours != "" && theirs == ours {
		return true, nil // the same commit rebuilt, on a newer base say
	}
	what := "an image with no " + RevisionLabel + " label"
	if theirs != "" {
		what = "an image of commit " + theirs
	}
	return false, fmt.Errorf("tag %s is write-once and already points at %s (%s); refusing to move it to %s: %w",
		tag.Name(), existing, what, digest, ErrTagConflict)
}

// RevisionAt returns the revision label (the commit) of the image repo:tag
// points at; "" when the tag does not exist, or names an index or an image
// without the label.
func (p *Pusher) RevisionAt(ctx context.Context, repo, tag string) (string, error) {
	t, err := name.NewTag(repo+":"+tag, p.nameOptions()...)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	puller, err := remote.NewPuller(p.remoteOptions(ctx)...)
	if err != nil {
		return "", err
	}
	rev, err := p.revisionAt(ctx, puller, t)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return rev, err
}

// revisionAt returns the revision label of the image tag points at, or ""
// for an index or an image without one.
func (p *Pusher) revisionAt(ctx context.Context, puller *remote.Puller, tag name.Tag) (string, error) {
	desc, err := puller.Get(ctx, tag)
	if err != nil {
		return "", classify(err, "read image", tag.Name(), p.secrets())
	}
	if !desc.MediaType.IsImage() {
		return "", nil
	}
	img, err := desc.Image()
	if err != nil {
		return "", classify(err, "read image", tag.Name(), p.secrets())
	}
	rev, err := revision(img)
	if err != nil {
		return "", classify(err, "read image config", tag.Name(), p.secrets())
	}
	return rev, nil
}

func revision(img v1.Image) (string, error) {
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	return cfg.Config.Labels[RevisionLabel], nil
}

// forward drops the Forward tags whose release is older than the newest
// release of their series among the repository's tags, and returns them
// as behind. The repository is listed only when there are Forward tags.
func (p *Pusher) forward(ctx context.Context, puller *remote.Puller, r name.Repository, tags []Tag) (keep []Tag, behind []string, err error) {
	var existing []string
	for _, t := range tags {
		if t.Policy == Forward && existing == nil {
			existing, err = p.listTags(ctx, puller, r)
			if errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrInvalid) {
				// The registry will not list tags (no list permission, or
				// no list API): without knowing the newest release, a
				// Forward tag could move back, so none moves; the rest of
				// the push goes on.
				for _, t := range tags {
					if t.Policy == Forward {
						behind = append(behind, t.Name)
					} else {
						keep = append(keep, t)
					}
				}
				return keep, behind, nil
			}
			if err != nil {
				return nil, nil, err
			}
		}
	}
	for _, t := range tags {
		if t.Policy == Forward {
			if newest := newestInSeries(existing, t.Name); newest != "" && compareVersions(t.Release, newest) < 0 {
				behind = append(behind, t.Name)
				continue
			}
		}
		keep = append(keep, t)
	}
	return keep, behind, nil
}

// listTags lists the repository's tags; a repository the registry does not
// have yet has none.
func (p *Pusher) listTags(ctx context.Context, puller *remote.Puller, r name.Repository) ([]string, error) {
	tags, err := puller.List(ctx, r)
	if err != nil && !isNotFound(err) {
		return nil, classify(err, "list tags of", r.Name(), p.secrets())
	}
	if tags == nil {
		tags = []string{}
	}
	return tags, nil
}

// newestInSeries returns the newest release X.Y.Z (without "v") among tags
// in the series of prefix: "1" is the series of every 1.*.*, "1.2" of every
// 1.2.*. Pre-releases and other tags do not count. It returns "" when the
// series has no release.
func newestInSeries(tags []string, prefix string) string {
	newest := ""
	for _, t := range tags {
		m := release.FindStringSubmatch(t)
		if m == nil {
			continue
		}
		v := m[1] + "." + m[2] + "." + m[3]
		if strings.HasPrefix(v, prefix+".") && (newest == "" || compareVersions(v, newest) > 0) {
			newest = v
		}
	}
	return newest
}

// compareVersions compares two releases X.Y.Z by number, as -1, 0 or +1.
// The release pattern allows no leading zeros, so a longer number is a
// bigger one and numbers of any size compare without overflow.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, y := as[i], bs[i]
		switch {
		case len(x) != len(y):
			if len(x) < len(y) {
				return -1
			}
			return 1
		case x != y:
			return strings.Compare(x, y)
		}
	}
	return 0
}
