package config

import (
	"fmt"
	"regexp"
	"strings"
)

// Warnings lists what in cfg is valid but surely not what its author
// meant: branch and tag globs no ref name git allows can match. kiln
// validate prints them, and kiln dev and kiln serve log them.
func (c *Config) Warnings() []string {
	var out []string
	for i, p := range c.Pipelines {
		check := func(field string, globs []string, kind string) {
			for j, g := range globs {
				if why := neverMatches(g, kind); why != "" {
					out = append(out, fmt.Sprintf("pipelines[%d].triggers.%s[%d]: %q never matches: %s", i, field, j, g, why))
				}
			}
		}
		check("branch", p.Triggers.Branch, "branch")
		check("tag", p.Triggers.Tag, "tag")
		if p.Triggers.Review != nil {
			check("review.branches", p.Triggers.Review.Branches, "branch")
		}
	}
	return out
}

// globSyntax matches a glob's character classes and alternatives.
var globSyntax = regexp.MustCompile(`\[[^\]]*\]|\{[^}]*\}`)

// neverMatches says why no name git allows for a branch or tag can match
// glob g, or "" when some can. Triggers match the short name (main, v1.0),
// and git refuses names with "..", "@{", "//", a leading or trailing "/",
// a trailing ".lock" or ".", and the characters space, ~, ^, : and \.
func neverMatches(g, kind string) string {
	if strings.HasPrefix(g, "refs/") {
		return fmt.Sprintf("triggers match the %s's short name; write %q", kind, g[strings.Index(g[len("refs/"):], "/")+len("refs/")+1:])
	}
	// Classes ([^0-9]) and alternatives ({a,b}) are glob syntax, not names.
	g = globSyntax.ReplaceAllString(g, "x")
	switch {
	case strings.Contains(g, ".."), strings.Contains(g, "@{"), strings.Contains(g, "//"):
		return "git allows no ref name with \"..\", \"@{\" or \"//\""
	case strings.HasPrefix(g, "/"), strings.HasSuffix(g, "/"):
		return "git allows no ref name that starts or ends with \"/\""
	case strings.HasSuffix(g, ".lock"), strings.HasSuffix(g, "."):
		return "git allows no ref name that ends with \".lock\" or \".\""
	case strings.ContainsAny(g, " ~^:"):
		return "git allows no ref name with a space, ~, ^ or :"
	}
	return ""
}
