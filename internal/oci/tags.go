// Package oci builds container images from files on disk and pushes them to
// OCI registries with go-containerregistry, without a Docker engine: kiln's
// publish stage. Images are reproducible (the same files, base and config
// give the same digest) and pushes are idempotent (a tag already at the
// digest is left alone, and blobs the registry has are not uploaded again).
package oci

import (
	"fmt"
	"regexp"
	"strconv"
)

// TagInput is what tag rules see of a run.
type TagInput struct {
	// Kind is kiln's event kind: "branch", "tag", "review", "manual" or
	// "schedule".
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
// [A-Za-z0-9_.-] becomes "-" (feature/x gives feature-x), and a result over
// 128 characters is cut to 128.
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
	release      = regexp.MustCompile(`^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)
	placeholders = regexp.MustCompile(`\{[^{}]*\}`)
)

// Tags returns the tags an image of the run gets, in rule order: the
// templates of the rule for the run's kind, then X.Y and X for a semver
// release, then the short SHA. Duplicates are dropped, keeping the first.
// Manual and scheduled runs follow the tag rules when Tag is set and the
// branch rules otherwise. It fails on an unknown kind, on a placeholder the
// run has no value for, and on a template that does not make a valid tag.
func Tags(r TagRules, in TagInput) ([]string, error) {
	templates, err := r.templates(in)
	if err != nil {
		return nil, err
	}
	var tags []string
	for _, t := range templates {
		tag, err := expand(t, in)
		if err != nil {
			return nil, err
		}
		tags = append(tags, tag)
	}
	if tagKind(in) == "tag" {
		if m := release.FindStringSubmatch(in.Tag); m != nil {
			if r.SemverMinor {
				tags = append(tags, m[1]+"."+m[2])
			}
			if r.SemverMajor {
				tags = append(tags, m[1])
			}
		}
	}
	if r.ShortSHA == nil || *r.ShortSHA {
		tag, err := expand("{short_sha}", in)
		if err != nil {
			return nil, err
		}
		tags = append(tags, tag)
	}
	if len(tags) == 0 {
		return nil, fmt.Errorf("tag rules give no tags for this %s run", in.Kind)
	}
	return dedupe(tags), nil
}

// tagKind says which rule a run follows: "default_branch", "branch", "tag"
// or "review", or "" for a kind kiln does not know.
func tagKind(in TagInput) string {
	switch in.Kind {
	case "review":
		return "review"
	case "tag":
		return "tag"
	case "manual", "schedule":
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

// expand fills a template's placeholders and checks the result is a tag.
func expand(template string, in TagInput) (string, error) {
	var err error
	out := placeholders.ReplaceAllStringFunc(template, func(p string) string {
		v, perr := placeholder(p, in)
		if perr != nil && err == nil {
			err = fmt.Errorf("tag template %q: %w", template, perr)
		}
		return v
	})
	if err != nil {
		return "", err
	}
	if len(out) > maxTagLen {
		out = out[:maxTagLen]
	}
	if !validTag.MatchString(out) {
		return "", fmt.Errorf("tag template %q gives %q, not a valid tag: use [A-Za-z0-9_.-], not starting with . or -", template, out)
	}
	return out, nil
}

func placeholder(p string, in TagInput) (string, error) {
	need := func(v, what string) (string, error) {
		if v == "" {
			return "", fmt.Errorf("%s: this %s run has no %s", p, in.Kind, what)
		}
		return sanitize(v), nil
	}
	switch p {
	case "{branch}":
		return need(in.Branch, "branch")
	case "{tag}":
		return need(in.Tag, "tag")
	case "{pr}":
		if in.PR <= 0 {
			return "", fmt.Errorf("%s: this %s run has no pull request", p, in.Kind)
		}
		return strconv.Itoa(in.PR), nil
	case "{sha}", "{short_sha}":
		if !hexSHA.MatchString(in.Commit) {
			return "", fmt.Errorf("%s: commit %q is not a hex SHA", p, in.Commit)
		}
		if p == "{short_sha}" {
			return in.Commit[:7], nil
		}
		return in.Commit, nil
	}
	return "", fmt.Errorf("unknown placeholder %s (known: {branch}, {tag}, {pr}, {sha}, {short_sha})", p)
}

// sanitize makes a branch or tag name usable inside an image tag.
func sanitize(s string) string {
	s = invalidTag.ReplaceAllString(s, "-")
	if len(s) > maxTagLen {
		s = s[:maxTagLen]
	}
	return s
}

func dedupe(tags []string) []string {
	seen := make(map[string]bool, len(tags))
	out := tags[:0]
	for _, t := range tags {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}
