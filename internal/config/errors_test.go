package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// head is a valid repos section, lines 1-4; cases put pipelines from line 5.
const head = `repos:
  - name: acme/widget
    clone_url: https://github.com/acme/widget.git
    webhook_secret: {env: WIDGET_SECRET}
`

// problem is what a case expects of one ValidationError: Msg need only be
// contained in the actual message.
type problem struct {
	line  int
	field string
	msg   string
}

// requireProblems parses src and checks it fails with exactly the problems
// given, in order.
func requireProblems(t *testing.T, src string, want ...problem) {
	t.Helper()
	cfg, err := Parse("kiln.yaml", []byte(src))
	require.Error(t, err)
	assert.Nil(t, cfg)
	var got ValidationErrors
	require.ErrorAs(t, err, &got)
	require.Len(t, got, len(want), "got:\n%v", err)
	for i, w := range want {
		assert.Equal(t, "kiln.yaml", got[i].File)
		assert.Equal(t, w.line, got[i].Line, "line of %v", got[i])
		assert.Equal(t, w.field, got[i].Field, "field of %v", got[i])
		assert.Contains(t, got[i].Msg, w.msg)
	}
}

func TestYAMLProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []problem
	}{
		// For parser errors yaml.v3 reports where the enclosing block starts,
		// counting from 0; the line is passed on as yaml reports it.
		{"bad indentation", "repos:\n  - name: acme/widget\n    clone_url: x\n  webhook_secret: {env: S}\n",
			[]problem{{1, "", "YAML syntax: did not find expected '-' indicator"}}},
		{"mapping value in a scalar", "repos:\n  - name: acme/widget\n    clone_url: http://x: y\n",
			[]problem{{3, "", "YAML syntax: mapping values are not allowed in this context"}}},
		{"tab indentation", "repos:\n\t- name: x\n",
			[]problem{{2, "", "YAML syntax: found character that cannot start any token"}}},
		{"two documents", head + "---\npipelines: []\n",
			[]problem{{5, "", "only one YAML document"}}},
		{"duplicate key", head + "repos: []\n",
			[]problem{{5, "repos", `duplicate field "repos" (first at line 1)`}}},
		{"nested duplicate key", `repos:
  - name: acme/widget
    name: acme/gadget
`, []problem{{3, "repos[0].name", `duplicate field "name" (first at line 2)`}}},
		{"key that is a list", head + "[a, b]: c\n",
			[]problem{{5, "", "field names must be plain strings"}}},
		{"merge of a scalar", head + "pipelines:\n  - <<: x\n",
			[]problem{{6, "pipelines[0]", "<< merges only mappings"}}},
		{"alias bomb", `a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
`,
			// The budget runs out in e, inside content aliased from line 1.
			[]problem{{1, "e[7][0][7][0][7]", "document expands to more than 100000 values"}}},
		{"empty file", "",
			[]problem{{1, "", "missing required field repos"}, {1, "", "missing required field pipelines"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { requireProblems(t, tt.src, tt.want...) })
	}
}

// anchors lets pipeline cd reuse ci's build stage and branch list.
const anchors = head + `pipelines:
  - name: ci
    repo: acme/widget
    triggers: {branch: &branches [main]}
    stages:
      build: &build
        buildspec: buildspec.yml
        timeout: 20m
  - name: cd
    repo: acme/widget
    triggers: {tag: *branches}
    stages:
      build:
        <<: *build
        timeout: 45m
`

func TestAnchorsAndMerges(t *testing.T) {
	cfg, err := Parse("kiln.yaml", []byte(anchors))
	require.NoError(t, err)
	cd := cfg.Pipelines[1]
	assert.Equal(t, []string{"main"}, cd.Triggers.Tag)
	assert.Equal(t, "buildspec.yml", cd.Stages.Build.Buildspec.Path)
	assert.Equal(t, Duration(45*time.Minute), cd.Stages.Build.Timeout)

	// A problem in a merged mapping is reported where it is written.
	bad := strings.Replace(anchors, "timeout: 20m", "timeout: 20", 1)
	requireProblems(t, bad,
		problem{12, "pipelines[0].stages.build.timeout", "must be a string, not a number"})
}
