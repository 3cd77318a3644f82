package packer

import (
	"cmp"
	"slices"
	"strings"
)

// redacted replaces a secret in everything kiln logs or returns.
const redacted = "<sensitive>"

// scrubber removes secrets from text. It matches each secret both as it is
// and as packer escapes it in machine-readable lines (commas, newlines).
type scrubber struct{ r *strings.Replacer }

// minSecretLine is the shortest line of a multi-line secret scrubbed on its
// own: packer prints a multi-line value (a PEM key) one UI line at a time,
// so no single line holds the whole secret. Shorter lines ("-----", "}")
// are too common to replace.
const minSecretLine = 8

func newScrubber(secrets []string) scrubber {
	var olds []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		olds = append(olds, s)
		if e := escape(s); e != s {
			olds = append(olds, e)
		}
		for _, line := range strings.Split(s, "\n") {
			if line = strings.TrimSpace(line); len(line) >= minSecretLine && line != s {
				olds = append(olds, line)
				if e := escape(line); e != line {
					olds = append(olds, e)
				}
			}
		}
	}
	// Longest first: a Replacer tries patterns in argument order, and a
	// secret containing a shorter one must be removed whole.
	slices.SortFunc(olds, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	pairs := make([]string, 0, 2*len(olds))
	for _, o := range olds {
		pairs = append(pairs, o, redacted)
	}
	return scrubber{strings.NewReplacer(pairs...)}
}

// scrub returns s without any secret.
func (s scrubber) scrub(text string) string { return s.r.Replace(text) }

// scrubAll scrubs each element of ss in place and returns it.
func (s scrubber) scrubAll(ss []string) []string {
	for i := range ss {
		ss[i] = s.scrub(ss[i])
	}
	return ss
}
