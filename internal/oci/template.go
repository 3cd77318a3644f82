package oci

import (
	"fmt"
	"strconv"
	"strings"
)

// expand fills a template's placeholders and checks the result is a tag.
// When a long branch or tag name would make it over 128 characters, that
// name is shortened, not the end of the result: "{branch}-{short_sha}"
// keeps its SHA.
func expand(template string, in TagInput) (string, error) {
	values := map[string]string{}
	for _, p := range placeholders.FindAllString(template, -1) {
		v, err := placeholder(p, in)
		if err != nil {
			return "", fmt.Errorf("tag template %q: %w", template, err)
		}
		values[p] = v
	}
	fit(template, values)
	out := placeholders.ReplaceAllStringFunc(template, func(p string) string { return values[p] })
	if !validTag.MatchString(out) {
		return "", fmt.Errorf("tag template %q gives %q, not a valid tag: use at most %d of [A-Za-z0-9_.-], not starting with . or -", template, out, maxTagLen)
	}
	return out, nil
}

// fit shortens the branch and tag names in values, longest first, until
// template filled with them is at most maxTagLen long. Other placeholders
// (the SHA, the pull request number) are never cut.
func fit(template string, values map[string]string) {
	count := map[string]int{}
	for _, p := range placeholders.FindAllString(template, -1) {
		count[p]++
	}
	length := func() int {
		n := len(placeholders.ReplaceAllString(template, ""))
		for p, c := range count {
			n += c * len(values[p])
		}
		return n
	}
	for length() > maxTagLen {
		longest := ""
		for _, p := range []string{"{branch}", "{tag}"} {
			if count[p] > 0 && len(values[p]) > len(values[longest]) {
				longest = p
			}
		}
		if longest == "" {
			return // nothing left to cut: expand reports the tag too long
		}
		values[longest] = values[longest][:len(values[longest])-1]
	}
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

// sanitize makes a branch or tag name usable inside an image tag. A tag
// may not start with "." or "-", and git allows both ("refs/heads/-wip"),
// so they are dropped from the front.
func sanitize(s string) string {
	s = strings.TrimLeft(invalidTag.ReplaceAllString(s, "-"), ".-")
	if len(s) > maxTagLen {
		s = s[:maxTagLen]
	}
	return s
}
