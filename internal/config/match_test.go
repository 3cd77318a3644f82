package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/event"
)

// matchConfig has one pipeline per trigger style, over two repositories.
const matchConfig = `repos:
  - {name: Acme/Widget, clone_url: https://github.com/acme/widget.git, webhook_secret: {env: W}}
  - {name: acme/gadget, clone_url: https://github.com/acme/gadget.git, webhook_secret: {env: G}}
pipelines:
  - name: pushes
    repo: acme/widget
    triggers: {branch: [main, "release/*"]}
    stages: {build: {buildspec: b.yml}}
  - name: releases
    repo: acme/widget
    triggers: {tag: ["v*"], manual: false}
    stages: {build: {buildspec: b.yml}}
  - name: reviews-to-main
    repo: acme/widget
    triggers: {review: {branches: [main]}}
    cancel_superseded: false
    stages: {build: {buildspec: b.yml}}
  - name: all-reviews
    repo: acme/widget
    triggers: {review: {}}
    stages: {build: {buildspec: b.yml}}
  - name: nightly
    repo: acme/widget
    triggers: {schedule: [{cron: "@daily", ref: main}], manual: true}
    cancel_superseded: true
    stages: {build: {buildspec: b.yml}}
  - name: gadget
    repo: acme/gadget
    triggers: {branch: ["*"]}
    stages: {build: {buildspec: b.yml}}
  - name: deep
    repo: acme/gadget
    triggers: {branch: ["team/**"], tag: ["**"]}
    stages: {build: {buildspec: b.yml}}
`

func TestMatch(t *testing.T) {
	cfg, err := Parse("kiln.yaml", []byte(matchConfig))
	require.NoError(t, err)

	review := func(target string) event.Event {
		return event.Event{Kind: event.KindReview, Repo: "acme/widget",
			PullRequest: &event.PullRequest{Number: 7, TargetBranch: target}}
	}
	tests := []struct {
		name string
		ev   event.Event
		want []string
	}{
		{"branch", event.Event{Kind: event.KindBranch, Repo: "acme/widget", Branch: "main"}, []string{"pushes"}},
		{"branch glob", event.Event{Kind: event.KindBranch, Repo: "acme/widget", Branch: "release/1.0"}, []string{"pushes"}},
		{"glob stops at slash", event.Event{Kind: event.KindBranch, Repo: "acme/widget", Branch: "release/1.0/fix"}, nil},
		{"other branch", event.Event{Kind: event.KindBranch, Repo: "acme/widget", Branch: "dev"}, nil},
		{"repo name ignores case", event.Event{Kind: event.KindBranch, Repo: "ACME/WIDGET", Branch: "main"}, []string{"pushes"}},
		{"other repo", event.Event{Kind: event.KindBranch, Repo: "acme/gadget", Branch: "main"}, []string{"gadget"}},
		{"** crosses slashes", event.Event{Kind: event.KindBranch, Repo: "acme/gadget", Branch: "team/a/b/c"}, []string{"deep"}},
		{"** matches one level", event.Event{Kind: event.KindBranch, Repo: "acme/gadget", Branch: "team/a"}, []string{"deep"}},
		{"** alone matches every tag", event.Event{Kind: event.KindTag, Repo: "acme/gadget", Tag: "releases/2026/café"}, []string{"deep"}},
		{"unknown repo", event.Event{Kind: event.KindBranch, Repo: "evil/widget", Branch: "main"}, nil},
		{"tag glob", event.Event{Kind: event.KindTag, Repo: "acme/widget", Tag: "v1.2.0"}, []string{"releases"}},
		{"other tag", event.Event{Kind: event.KindTag, Repo: "acme/widget", Tag: "nightly-1"}, nil},
		{"review to main", review("main"), []string{"reviews-to-main", "all-reviews"}},
		{"review to dev", review("dev"), []string{"all-reviews"}},
		{"review without pull request", event.Event{Kind: event.KindReview, Repo: "acme/widget"}, nil},
		{"manual defaults to allowed", event.Event{Kind: event.KindManual, Repo: "acme/widget", Branch: "main"},
			[]string{"pushes", "reviews-to-main", "all-reviews", "nightly"}},
		{"schedule", event.Event{Kind: event.KindSchedule, Repo: "acme/widget", Schedule: "main"}, []string{"nightly"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, p := range cfg.Match(tt.ev) {
				got = append(got, p.Name)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestCancelsSuperseded(t *testing.T) {
	cfg, err := Parse("kiln.yaml", []byte(matchConfig))
	require.NoError(t, err)
	tests := []struct {
		pipeline string // cancel_superseded
		kind     event.Kind
		want     bool
	}{
		{"pushes", event.KindReview, true}, // unset
		{"pushes", event.KindBranch, false},
		{"pushes", event.KindTag, false},
		{"pushes", event.KindManual, false},
		{"reviews-to-main", event.KindReview, false}, // false
		{"reviews-to-main", event.KindBranch, false},
		{"nightly", event.KindReview, true}, // true
		{"nightly", event.KindBranch, true},
		{"nightly", event.KindTag, false},
		{"nightly", event.KindSchedule, false},
	}
	for _, tt := range tests {
		p := cfg.Pipeline(tt.pipeline)
		require.NotNil(t, p, tt.pipeline)
		assert.Equal(t, tt.want, p.CancelsSuperseded(tt.kind), "%s on %s", tt.pipeline, tt.kind)
	}
}

func TestLookups(t *testing.T) {
	cfg, err := Parse("kiln.yaml", []byte(matchConfig))
	require.NoError(t, err)
	assert.Equal(t, "Acme/Widget", cfg.Repo("acme/WIDGET").Name)
	assert.Nil(t, cfg.Repo("acme/nothing"))
	assert.Equal(t, "gadget", cfg.Pipeline("gadget").Name)
	assert.Nil(t, cfg.Pipeline("Gadget"))
	assert.False(t, cfg.Pipeline("releases").Triggers.ManualAllowed())
	assert.True(t, cfg.Pipeline("nightly").Triggers.ManualAllowed())
}
