package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPublishProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []problem
	}{
		{"inputs missing", head + `pipelines:
  - name: img
    repo: acme/widget
    triggers: {manual: true}
    stages:
      publish:
        images:
          - {name: registry.local/acme/app, files: [{from: "**", to: /app}]}
          - {name: registry.local/acme/df, dockerfile: Dockerfile, base: alpine:3.20}
          - {name: registry.local/acme/up, dockerfile: ../Dockerfile, context: /etc}
        cloudformation: {bucket: templates, templates: [cfn/app.yaml], account: "222222222222"}
`, []problem{
			{12, "pipelines[0].stages.publish.images[0].files", "add a build stage"},
			{13, "pipelines[0].stages.publish.images[1].base", "a Dockerfile names its own base"},
			{14, "pipelines[0].stages.publish.images[2].context", `"/etc" leaves the repository`},
			{14, "pipelines[0].stages.publish.images[2].dockerfile", `"../Dockerfile" leaves the repository`},
			{15, "pipelines[0].stages.publish.cloudformation", "add a bake stage"},
			{15, "pipelines[0].stages.publish.cloudformation.account", "account 222222222222 is not a distribution target"},
		}},
		{"files or dockerfile", head + `pipelines:
  - name: img
    repo: acme/widget
    triggers: {manual: true}
    stages:
      build: {buildspec: b.yml}
      publish:
        images: [{name: registry.local/acme/app}]
`, []problem{
			{12, "pipelines[0].stages.publish.images[0]", "missing required field files"},
			{12, "pipelines[0].stages.publish.images[0]", "missing required field dockerfile"},
		}},
		{"image triggers", head + `pipelines:
  - name: base
    repo: acme/widget
    triggers: {image: [{name: registry.local/acme/app}]}
    stages:
      build: {buildspec: b.yml}
      publish: {images: [{name: registry.local/acme/base, files: [{from: "**", to: /}]}]}
  - name: app
    repo: acme/widget
    triggers: {image: [{name: registry.local/acme/base}, {name: registry.local/acme/nope}]}
    stages:
      build: {buildspec: b.yml}
      publish: {images: [{name: registry.local/acme/app, files: [{from: "**", to: /}]}]}
  - name: copycat
    repo: acme/widget
    triggers: {manual: true}
    stages:
      build: {buildspec: b.yml}
      publish: {images: [{name: registry.local/acme/app, files: [{from: "**", to: /}]}]}
`, []problem{
			{8, "pipelines[0].triggers.image", "image triggers form a cycle, which would rebuild forever: base → app → base"},
			{14, "pipelines[1].triggers.image[1].name", "no pipeline publishes image registry.local/acme/nope (published: registry.local/acme/app, registry.local/acme/base)"},
			{23, "pipelines[2].stages.publish.images[0].name", `image registry.local/acme/app is also published by pipeline "app"`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { requireProblems(t, tt.src, tt.want...) })
	}
}

// TestAMITriggers: an AMI trigger names another pipeline that bakes and
// tests, and a cycle through image and AMI triggers is refused with its
// path, saying which trigger each step is.
func TestAMITriggers(t *testing.T) {
	const bakes = "{build: {buildspec: b.yml}, bake: {template: ami.pkr.hcl, region: us-east-1}, test: {commands: [\"true\"]}"
	requireProblems(t, head+`pipelines:
  - name: base
    repo: acme/widget
    triggers: {image: [{name: r.local/tools}]}
    stages: `+bakes+`}
  - name: app
    repo: acme/widget
    triggers: {ami: [{pipeline: base}, {pipeline: app}, {pipeline: untested}, {pipeline: nope}]}
    stages: `+bakes+`, publish: {images: [{name: r.local/tools, files: [{from: "**", to: /}]}]}}
  - name: untested
    repo: acme/widget
    triggers: {manual: true}
    stages: {build: {buildspec: b.yml}, bake: {template: ami.pkr.hcl, region: us-east-1}}
`,
		problem{8, "pipelines[0].triggers.image", "image and AMI triggers form a cycle, which would rebuild forever: base → (AMI) app → (image) base"},
		problem{12, "pipelines[1].triggers.ami[1].pipeline", "a pipeline cannot be triggered by its own AMIs"},
		problem{12, "pipelines[1].triggers.ami[2].pipeline", `pipeline "untested" must bake and test its AMI: only an AMI that passed its test triggers`},
		problem{12, "pipelines[1].triggers.ami[3].pipeline", `no pipeline is named "nope" (pipelines that bake: app, base, untested)`},
	)
	src := head + `pipelines:
  - name: base
    repo: acme/widget
    triggers: {manual: true}
    stages: ` + bakes + `}
  - name: app
    repo: acme/widget
    triggers: {ami: [{pipeline: base, ref: release}]}
    stages: ` + bakes + `}
`
	cfg, err := Parse("kiln.yaml", []byte(src))
	require.NoError(t, err)
	assert.Equal(t, []AMITrigger{{Pipeline: "base", Ref: "release"}}, cfg.Pipelines[1].Triggers.AMI)
}

// TestImageTriggerChainIsFine: base → app → site is a chain, not a cycle.
func TestImageTriggerChainIsFine(t *testing.T) {
	src := head + `pipelines:
  - name: base
    repo: acme/widget
    triggers: {manual: true}
    stages: {build: {buildspec: b.yml}, publish: {images: [{name: r.local/base, files: [{from: "**", to: /}]}]}}
  - name: app
    repo: acme/widget
    triggers: {image: [{name: r.local/base}]}
    stages: {build: {buildspec: b.yml}, publish: {images: [{name: r.local/app, files: [{from: "**", to: /}]}]}}
  - name: site
    repo: acme/widget
    triggers: {image: [{name: r.local/app}, {name: r.local/base, ref: release}]}
    stages: {build: {buildspec: b.yml}}
`
	if _, err := Parse("kiln.yaml", []byte(src)); err != nil {
		t.Fatal(err)
	}
}
