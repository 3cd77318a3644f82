package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWarningsForGlobsThatNeverMatch: globs that no ref git allows can
// match are named, with why; globs that can match are not.
func TestWarningsForGlobsThatNeverMatch(t *testing.T) {
	cfg, err := Parse("kiln.yaml", []byte(`repos:
  - {name: acme/widget, clone_url: /srv/widget, webhook_secret: {env: W}}
pipelines:
  - name: p
    repo: acme/widget
    triggers:
      branch: [main, "release/**", "rc-[^0-9]*", "x@{a,b}", "refs/heads/main", "feature/", "a..b", "wip.lock", "my branch"]
      tag: ["v*", "refs/tags/v1"]
      review: {branches: ["**", "x~1"]}
    stages: {build: {buildspec: b.yml}}
`))
	require.NoError(t, err)
	assert.Equal(t, []string{
		`pipelines[0].triggers.branch[4]: "refs/heads/main" never matches: triggers match the branch's short name; write "main"`,
		`pipelines[0].triggers.branch[5]: "feature/" never matches: git allows no ref name that starts or ends with "/"`,
		`pipelines[0].triggers.branch[6]: "a..b" never matches: git allows no ref name with "..", "@{" or "//"`,
		`pipelines[0].triggers.branch[7]: "wip.lock" never matches: git allows no ref name that ends with ".lock" or "."`,
		`pipelines[0].triggers.branch[8]: "my branch" never matches: git allows no ref name with a space, ~, ^ or :`,
		`pipelines[0].triggers.tag[1]: "refs/tags/v1" never matches: triggers match the tag's short name; write "v1"`,
		`pipelines[0].triggers.review.branches[1]: "x~1" never matches: git allows no ref name with a space, ~, ^ or :`,
	}, cfg.Warnings())
}
