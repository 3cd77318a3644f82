package config

import "testing"

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
