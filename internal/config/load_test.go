package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// fullConfig uses every field kiln.yaml has.
const fullConfig = `# kiln.yaml
repos:
  - name: acme/widget
    clone_url: https://github.com/acme/widget.git
    webhook_secret: {env: WIDGET_WEBHOOK_SECRET}
  - name: acme/gadget
    clone_url: git@github.com:acme/gadget.git
    webhook_secret: {file: /run/secrets/gadget}
pipelines:
  - name: widget-ci
    repo: acme/widget
    triggers:
      review: {branches: [main]}
      branch: [main, "release/*"]
      tag: ["v*"]
      schedule:
        - {name: nightly, cron: "0 3 * * *", ref: main, timezone: Europe/Berlin}
        - {cron: "@daily", ref: release/1.0}
      manual: false
    cancel_superseded: true
    stages:
      build:
        buildspec: buildspec.yml
        timeout: 30m
        env: {FOO: bar, PORT: 8080}
  - name: gadget.review
    repo: Acme/Gadget
    triggers:
      review: {}
    stages:
      build:
        buildspec:
          version: 0.2
          phases:
            build:
              commands: [make test]
`

func wantFullConfig() *Config {
	yes, no := true, false
	return &Config{
		File: "kiln.yaml",
		Repos: []Repo{
			{Name: "acme/widget", CloneURL: "https://github.com/acme/widget.git",
				WebhookSecret: SecretRef{Env: "WIDGET_WEBHOOK_SECRET"}},
			{Name: "acme/gadget", CloneURL: "git@github.com:acme/gadget.git",
				WebhookSecret: SecretRef{File: "/run/secrets/gadget"}},
		},
		Pipelines: []Pipeline{{
			Name: "widget-ci", Repo: "acme/widget", CancelSuperseded: &yes,
			Triggers: Triggers{
				Review: &ReviewTrigger{Branches: []string{"main"}},
				Branch: []string{"main", "release/*"},
				Tag:    []string{"v*"},
				Schedule: []ScheduleTrigger{
					{Name: "nightly", Cron: "0 3 * * *", Ref: "main", TimeZone: "Europe/Berlin"},
					{Name: "release/1.0", Cron: "@daily", Ref: "release/1.0"},
				},
				Manual: &no,
			},
			Stages: Stages{Build: &BuildStage{
				Buildspec: BuildspecSource{Path: "buildspec.yml"},
				Timeout:   Duration(30 * time.Minute),
				Env:       map[string]string{"FOO": "bar", "PORT": "8080"},
			}},
		}, {
			Name: "gadget.review", Repo: "Acme/Gadget",
			Triggers: Triggers{Review: &ReviewTrigger{}},
			Stages: Stages{Build: &BuildStage{
				Buildspec: BuildspecSource{
					Inline: "version: 0.2\nphases:\n    build:\n        commands: [make test]\n",
					Line:   33,
				},
				Timeout: Duration(DefaultBuildTimeout),
			}},
		}},
	}
}

func TestParseFullConfig(t *testing.T) {
	cfg, err := Parse("kiln.yaml", []byte(fullConfig))
	require.NoError(t, err)
	assert.Equal(t, wantFullConfig(), cfg)
}

func TestConfigRoundTrips(t *testing.T) {
	cfg, err := Parse("kiln.yaml", []byte(fullConfig))
	require.NoError(t, err)
	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)

	again, err := Parse("kiln.yaml", out)
	require.NoError(t, err, "marshalled config:\n%s", out)
	// Only the inline buildspec's position may move.
	again.Pipelines[1].Stages.Build.Buildspec.Line = cfg.Pipelines[1].Stages.Build.Buildspec.Line
	assert.Equal(t, cfg, again)
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kiln.yaml")
	require.NoError(t, os.WriteFile(path, []byte(fullConfig), 0o600))
	cfg, err := Load(path)
	require.NoError(t, err)
	assert.Equal(t, path, cfg.File)
	assert.Len(t, cfg.Pipelines, 2)

	_, err = Load(filepath.Join(t.TempDir(), "missing.yaml"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestDefaults(t *testing.T) {
	cfg := &Config{Pipelines: []Pipeline{{
		Triggers: Triggers{Schedule: []ScheduleTrigger{{Ref: "main"}, {Name: "weekly", Ref: "dev"}}},
		Stages:   Stages{Build: &BuildStage{}},
	}, {
		Stages: Stages{Build: &BuildStage{Timeout: Duration(time.Minute)}},
	}}}
	cfg.Defaults()
	p := cfg.Pipelines
	assert.Equal(t, Duration(DefaultBuildTimeout), p[0].Stages.Build.Timeout)
	assert.Equal(t, Duration(time.Minute), p[1].Stages.Build.Timeout)
	assert.Equal(t, "main", p[0].Triggers.Schedule[0].Name)
	assert.Equal(t, "weekly", p[0].Triggers.Schedule[1].Name)
}

func TestValidationErrorFormat(t *testing.T) {
	tests := []struct {
		err  ValidationError
		want string
	}{
		{ValidationError{"kiln.yaml", 14, "pipelines[0].triggers.branch[1]", `"[" is not a valid glob`},
			`kiln.yaml:14: pipelines[0].triggers.branch[1]: "[" is not a valid glob`},
		{ValidationError{"kiln.yaml", 1, "", "missing required field repos"},
			"kiln.yaml:1: missing required field repos"},
		{ValidationError{"kiln.yaml", 0, "", "YAML syntax: x"}, "kiln.yaml: YAML syntax: x"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.err.Error())
	}
}

func TestErrorsAreValidationErrors(t *testing.T) {
	_, err := Parse("kiln.yaml", []byte("repos: []\npipelines: []\n"))
	var list ValidationErrors
	require.ErrorAs(t, err, &list)
	assert.Len(t, list, 2)
	var one ValidationError
	require.True(t, errors.As(err, &one))
	assert.Equal(t, "repos", one.Field)
	assert.Equal(t, "kiln.yaml:1: repos: must list at least one entry\n"+
		"kiln.yaml:2: pipelines: must list at least one entry", err.Error())
}

// TestBuildspecAsMultiLineString: codecommit-flow-ci writes its buildspec
// as a heredoc, which in kiln.yaml is a multi-line string. It is an inline
// buildspec, not a path; kiln validate parses it, and it marshals back as a
// block that parses to the same config.
func TestBuildspecAsMultiLineString(t *testing.T) {
	const doc = `repos:
  - {name: acme/widget, clone_url: /srv/git/widget.git, webhook_secret: {env: W}}
pipelines:
  - name: block
    repo: acme/widget
    triggers: {branch: [main]}
    stages:
      build:
        buildspec: |
          version: 0.2
          phases:
            build:
              commands:
                - make
`
	cfg, err := Parse("kiln.yaml", []byte(doc))
	require.NoError(t, err)
	b := cfg.Pipelines[0].Stages.Build.Buildspec
	assert.Empty(t, b.Path)
	assert.Equal(t, "version: 0.2\nphases:\n  build:\n    commands:\n      - make\n", b.Inline)
	assert.Equal(t, 10, b.Line)
	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	again, err := Parse("kiln.yaml", out)
	require.NoError(t, err, "marshalled:\n%s", out)
	again.Pipelines[0].Stages.Build.Buildspec.Line = b.Line
	assert.Equal(t, cfg, again)

	bad := strings.Replace(doc, "version: 0.2", "version: 0.3", 1)
	_, err = Parse("kiln.yaml", []byte(bad))
	require.Error(t, err, "kiln validate parses an inline buildspec")
	assert.Contains(t, err.Error(), "pipelines[0].stages.build.buildspec")
	assert.Contains(t, err.Error(), "0.3")
}
