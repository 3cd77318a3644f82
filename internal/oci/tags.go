// Package oci builds container images from files on disk and pushes them to
// OCI registries with go-containerregistry, without a Docker engine: kiln's
// publish stage. Images are reproducible (the same files, base and config
// give the same digest) and pushes are idempotent (a tag already at the
// digest is left alone, and blobs the registry has are not uploaded again).
// Each tag has a policy (see TagPolicy): tags that name a commit or a
// release are written once, X.Y and X only move forward, and the rest
// follow the newest run.
package oci

import (
	"fmt"
	"regexp"
	"strings"
)

// TagInput is what tag rules see of a run.
type TagInput struct {
	// Kind is kiln's event kind: "branch", "tag", "review", "manual",
	// "schedule" or "image".
	Kind string
	// Branch is set for branch pushes, for manual and scheduled runs of a
	// branch, and to the source branch for reviews. Tag is set for tags.
	Branch, Tag string
	// DefaultBranch is the repository's default branch, such as "main".
	// When it is empty no branch counts as the default, so nothing is
	// tagged "latest" by accident.
	DefaultBranch string
	// PR is the pull request number of a review run.
	PR int
	// Commit is the full commit SHA.
	Commit string
}

// TagRules say which tags an image gets. Each list holds templates with
// {branch}, {tag}, {pr}, {sha} and {short_sha}; a nil list keeps its
// default, so the zero value is the defaults. Branch and tag names are
// sanitized before they are substituted: every character outside
// [A-Za-z0-9_.-] becomes "-" (feature/x gives feature-x), leading "." and
// "-" are dropped, and a branch or tag name too long for a 128-character
// tag is shortened so the rest of the template still fits.
type TagRules struct {
	// DefaultBranch is for runs of the default branch; default
	// {"{branch}", "latest"}.
	DefaultBranch []string
	// Branch is for runs of any other branch; default {"{branch}"}.
	Branch []string
	// Tag is for pushed tags; default {"{tag}"}.
	Tag []string
	// SemverMinor and SemverMajor also tag a release vX.Y.Z (or X.Y.Z) as
	// X.Y and X, without the "v", as Docker Hub images do. Pre-releases
	// (v1.2.3-rc.1) and builds (v1.2.3+b5) get neither. Off by default.
	SemverMinor, SemverMajor bool
	// Review is for pull request runs; default {"pr-{pr}"}.
	Review []string
	// ShortSHA also tags every image with the first 7 characters of the
	// commit SHA. nil means true.
	ShortSHA *bool
}

const maxTagLen = 128

var (
	validTag   = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	invalidTag = regexp.MustCompile(`[^A-Za-z0-9_.-]`)
	hexSHA     = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
	// release is a plain semantic version, with no pre-release or build.
	release = regexp.MustCompile(`^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)
	// version is an exact semantic version, pre-releases and builds too.
	version      = regexp.MustCompile(`^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)([-+][0-9A-Za-z.+-]*)?$`)
	placeholders = regexp.MustCompile(`\{[^{}]*\}`)
)

// TagPolicy says what Push does with a tag that already points at another
// image.
type TagPolicy string

const (
	// Moving tags follow the newest run that has them: branch names,
	// latest, pr-N and other templates without the commit in them.
	Moving TagPolicy = "moving"
	// WriteOnce tags name one commit or release: the short and full SHA,
	// templates holding either, and a tag run's exact version (v1.2.3).
	// Push writes them once and fails with ErrTagConflict rather than
	// move one to another commit's image; one already at an image of the
	// same commit (a rebuild on a newer base) is left there and reported
	// in PushResult.Kept.
	WriteOnce TagPolicy = "write_once"
	// IfAbsent is WriteOnce for review runs, whose commits nobody has
	// vouched for yet: a tag at another image is left there and reported
	// in PushResult.Kept instead of failing the run. A fork's commit whose
	// short SHA matches a release's cannot take the release's tag.
	IfAbsent TagPolicy = "if_absent"
	// Forward tags are a release's X.Y and X. They move only to a release
	// no older than the newest of their series whose version tag the
	// repository holds, so a backport (v1.1.5 after v1.2.0) leaves "1"
	// where it is.
	Forward TagPolicy = "forward"
)

// Tag is one tag an image gets, and how Push may move it.
type Tag struct {
	Name   string
	Policy TagPolicy
	// Release is, for a Forward tag, the version X.Y.Z (without "v") the
	// run publishes.
	Release string
}

// Moves reports whether the tag follows newer runs (Moving and Forward),
// as opposed to naming one commit. A run that is no longer the head of its
// branch pushes only the tags that do not move.
func (t Tag) Moves() bool { return t.Policy == Moving || t.Policy == Forward }

// TagNames returns the names of tags, in order.
func TagNames(tags []Tag) []string {
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = t.Name
	}
	return out
}

// Tags returns the tags an image of the run gets, in rule order: the
// templates of the rule for the run's kind, then X.Y and X for a semver
// release, then the short SHA. Duplicates are dropped, keeping the first.
// Manual, scheduled and image-triggered runs follow the tag rules when Tag
// is set and the branch rules otherwise. It fails on an unknown kind, on a
// placeholder the run has no value for, and on a template that does not
// make a valid tag.
func Tags(r TagRules, in TagInput) ([]Tag, error) {
	templates, err := r.templates(in)
	if err != nil {
		return nil, err
	}
	once := WriteOnce
	if tagKind(in) == "review" {
		once = IfAbsent
	}
	var tags []Tag
	for _, t := range templates {
		name, err := expand(t, in)
		if err != nil {
			return nil, err
		}
		policy := Moving
		if namesCommit(t, in) {
			policy = once
		}
		tags = append(tags, Tag{Name: name, Policy: policy})
	}
	if tagKind(in) == "tag" {
		if m := release.FindStringSubmatch(in.Tag); m != nil {
			version := m[1] + "." + m[2] + "." + m[3]
			if r.SemverMinor {
				tags = append(tags, Tag{Name: m[1] + "." + m[2], Policy: Forward, Release: version})
			}
			if r.SemverMajor {
				tags = append(tags, Tag{Name: m[1], Policy: Forward, Release: version})
			}
		}
	}
	if r.ShortSHA == nil || *r.ShortSHA {
		name, err := expand("{short_sha}", in)
		if err != nil {
			return nil, err
		}
		tags = append(tags, Tag{Name: name, Policy: once})
	}
	if len(tags) == 0 {
		return nil, fmt.Errorf("tag rules give no tags for this %s run", in.Kind)
	}
	return dedupe(tags), nil
}

// namesCommit reports whether template makes a tag that names one commit:
// it holds the SHA, or it is a tag run's exact version.
func namesCommit(template string, in TagInput) bool {
	if strings.Contains(template, "{sha}") || strings.Contains(template, "{short_sha}") {
		return true
	}
	return tagKind(in) == "tag" && strings.Contains(template, "{tag}") && version.MatchString(in.Tag)
}

// tagKind says which rule a run follows: "default_branch", "branch", "tag"
// or "review", or "" for a kind kiln does not know.
func tagKind(in TagInput) string {
	switch in.Kind {
	case "review":
		return "review"
	case "tag":
		return "tag"
	case "manual", "schedule", "image":
		if in.Tag != "" {
			return "tag"
		}
	case "branch":
	default:
		return ""
	}
	if in.DefaultBranch != "" && in.Branch == in.DefaultBranch {
		return "default_branch"
	}
	return "branch"
}

func (r TagRules) templates(in TagInput) ([]string, error) {
	pick := func(set, def []string) []string {
		if set != nil {
			return set
		}
		return def
	}
	switch tagKind(in) {
	case "default_branch":
		return pick(r.DefaultBranch, []string{"{branch}", "latest"}), nil
	case "branch":
		return pick(r.Branch, []string{"{branch}"}), nil
	case "tag":
		return pick(r.Tag, []string{"{tag}"}), nil
	case "review":
		return pick(r.Review, []string{"pr-{pr}"}), nil
	}
	return nil, fmt.Errorf("tag rules: unknown run kind %q", in.Kind)
}

// dedupe drops later tags of a name already seen, keeping the first's
// place and the strictest policy any rule gave the name: a tag that one
// rule makes write-once never moves, one that only moves forward never
// moves back.
func dedupe(tags []Tag) []Tag {
	seen := make(map[string]int, len(tags))
	out := tags[:0]
	for _, t := range tags {
		i, dup := seen[t.Name]
		switch {
		case !dup:
			seen[t.Name] = len(out)
			out = append(out, t)
		case strictness(t.Policy) > strictness(out[i].Policy):
			out[i] = t
		}
	}
	return out
}

func strictness(p TagPolicy) int {
	switch p {
	case Forward:
		return 1
	case WriteOnce, IfAbsent:
		return 2
	}
	return 0
}
