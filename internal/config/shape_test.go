package config

import "testing"

// okPipelines is a valid pipelines section, after head.
const okPipelines = `pipelines:
  - {name: ci, repo: acme/widget, triggers: {manual: true}, stages: {build: {buildspec: b.yml}}}
`

func TestShapeProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []problem
	}{
		{"missing clone_url", `repos:
  - name: acme/widget
    webhook_secret: {env: S}
pipelines:
  - {name: ci, repo: acme/widget, triggers: {manual: true}, stages: {build: {buildspec: b.yml}}}
`, []problem{{2, "repos[0]", "missing required field clone_url"}}},
		{"not a mapping", "- repos\n- pipelines\n",
			[]problem{{1, "", "must be a mapping, not a list"}}},
		{"unknown top-level field", head + "pipeline: []\n", []problem{
			{1, "", "missing required field pipelines"},
			{5, "pipeline", `unknown field "pipeline"; known fields: approver_groups, artifacts, pipelines, repos`},
		}},
		{"artifact store: both kinds", head + okPipelines + "artifacts: {dir: /srv/a, s3: {bucket: kiln-artifacts}}\n", []problem{
			{7, "artifacts", "give only one of dir or s3"},
		}},
		{"artifact store: relative dir and bad bucket", head + okPipelines + "artifacts:\n  dir: store\n  s3: {bucket: My_Bucket, prefix: /kiln}\n", []problem{
			{7, "artifacts", "give only one of dir or s3"},
			{8, "artifacts.dir", `"store" is not a valid absolute path: an absolute path to a directory shared by every worker, such as a volume they all mount.`},
			{9, "artifacts.s3.bucket", `"My_Bucket" is not a valid bucket name: 3 to 63 lowercase letters, digits, dots and hyphens, as S3 names buckets.`},
			{9, "artifacts.s3.prefix", `"/kiln" is not a valid key prefix: a key prefix inside the bucket, such as "kiln/artifacts/"; it does not start with a slash.`},
		}},
		{"unknown pipeline field", head + `pipelines:
  - name: ci
    repo: acme/widget
    triggers: {branch: [main]}
    stagse: {build: {buildspec: buildspec.yml}}
`, []problem{
			{6, "pipelines[0]", "missing required field stages"},
			{9, "pipelines[0].stagse", `unknown field "stagse"; known fields: cancel_superseded, lifecycle, name, notify, repo, stages, triggers`},
		}},
		{"unknown stage", head + `pipelines:
  - name: ci
    repo: acme/widget
    triggers: {branch: [main]}
    stages:
      build: {buildspec: buildspec.yml}
      deploy: {}
`, []problem{{11, "pipelines[0].stages.deploy", `unknown stage "deploy"; known stages: bake, build, distribute, publish, test`}}},
		{"no stage", head + `pipelines:
  - name: ci
    repo: acme/widget
    triggers: {branch: [main]}
    stages: {}
`, []problem{{9, "pipelines[0].stages", "needs at least one stage: bake, build, distribute, publish or test"}}},
		{"test without bake", head + `pipelines:
  - name: ci
    repo: acme/widget
    triggers: {branch: [main]}
    stages:
      test: {commands: [inspec exec test]}
`, []problem{{9, "pipelines[0].stages", "bake"}}},
		{"copy without kms key", head + `pipelines:
  - name: ci
    repo: acme/widget
    triggers: {branch: [main]}
    stages:
      bake: {template: ami.pkr.hcl, region: us-east-1}
      distribute:
        targets:
          - account: "222222222222"
            role: arn:aws:iam::222222222222:role/kiln
            mode: copy
            regions:
              - {region: eu-west-1}
`, []problem{{17, "pipelines[0].stages.distribute.targets[0].regions[0]", "missing required field kms_key"}}},
		{"bad account", head + `pipelines:
  - name: ci
    repo: acme/widget
    triggers: {branch: [main]}
    stages:
      bake: {template: ami.pkr.hcl, region: us-east-1}
      distribute:
        targets:
          - {account: "2222", mode: share, regions: [{region: eu-west-1}]}
`, []problem{{13, "pipelines[0].stages.distribute.targets[0].account", "AWS account ID"}}},
		{"unknown trigger", head + `pipelines:
  - name: ci
    repo: acme/widget
    triggers: {push: [main]}
    stages: {build: {buildspec: buildspec.yml}}
`, []problem{
			{8, "pipelines[0].triggers.push", `unknown trigger "push"; known triggers: ami, branch, image, manual, review, schedule, tag`},
		}},
		{"no trigger", head + `pipelines:
  - name: ci
    repo: acme/widget
    triggers: {}
    stages: {build: {buildspec: buildspec.yml}}
`, []problem{{8, "pipelines[0].triggers", "needs at least one trigger"}}},
		{"bad names and duration", head + `pipelines:
  - name: Widget CI
    repo: widget
    triggers: {branch: [main]}
    stages:
      build:
        buildspec: buildspec.yml
        timeout: 30 minutes
`, []problem{
			{6, "pipelines[0].name", `"Widget CI" is not a valid pipeline name: lower-case letters`},
			{12, "pipelines[0].stages.build.timeout", `"30 minutes" is not a valid duration: numbers with units`},
		}},
		{"secret with both sources", `repos:
  - name: acme/widget
    clone_url: https://github.com/acme/widget.git
    webhook_secret: {env: S, file: /run/secrets/s}
  - name: acme/gadget
    clone_url: https://github.com/acme/gadget.git
    webhook_secret: {}
pipelines:
  - {name: ci, repo: acme/widget, triggers: {manual: true}, stages: {build: {buildspec: b.yml}}}
`, []problem{
			{4, "repos[0].webhook_secret", "give only one of env or file"},
			{7, "repos[1].webhook_secret", "needs exactly one of env or file"},
		}},
		{"wrong types", head + `pipelines:
  - name: ci
    repo: acme/widget
    triggers:
      review:
      manual: "yes"
    stages:
      build:
        buildspec: [a, b]
        env: {1FOO: x, EMPTY: , PORT: 8080}
  - name: cd
    repo: acme/widget
    triggers: {manual: true}
    stages: {build: {buildspec: 3}}
`, []problem{
			{9, "pipelines[0].triggers.review", "must be a mapping, not empty"},
			{10, "pipelines[0].triggers.manual", "must be a boolean (true or false), not a string"},
			{13, "pipelines[0].stages.build.buildspec", "must be a string or a mapping, not a list"},
			{14, "pipelines[0].stages.build.env.1FOO", `"1FOO" is not a valid environment variable name`},
			{14, "pipelines[0].stages.build.env.EMPTY", "must be a boolean (true or false), a number or a string, not empty"},
			{18, "pipelines[1].stages.build.buildspec", "must be a string or a mapping, not a number"},
		}},
		{"inline buildspec without version", head + `pipelines:
  - name: ci
    repo: acme/widget
    triggers: {tag: ["v*"]}
    stages:
      build:
        buildspec:
          phases: {build: {commands: [make]}}
`, []problem{{11, "pipelines[0].stages.build.buildspec", "missing required field version"}}},
		{"empty lists and strings", head + `pipelines:
  - name: ci
    repo: acme/widget
    triggers: {branch: [], tag: [""]}
    stages: {build: {buildspec: ""}}
`, []problem{
			{8, "pipelines[0].triggers.branch", "must list at least one entry"},
			{8, "pipelines[0].triggers.tag[0]", "must not be empty"},
			{9, "pipelines[0].stages.build.buildspec", "must not be empty"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { requireProblems(t, tt.src, tt.want...) })
	}
}

// TestManyProblemsSortedByLine checks that every shape problem is reported in
// one go, in line order, whatever order the validator found them in.
func TestManyProblemsSortedByLine(t *testing.T) {
	requireProblems(t, `pipelines:
  - name: ci
    repo: acme/widget
    triggers: {branch: [main], manual: 1}
    stages: {build: {buildspec: b.yml, timeout: 5}}
repos:
  - name: acme/widget
    clone_url: https://github.com/acme/widget.git
    webhook_secret: {env: "NOT A NAME"}
    hooks: true
`,
		problem{4, "pipelines[0].triggers.manual", "must be a boolean (true or false), not a number"},
		problem{5, "pipelines[0].stages.build.timeout", "must be a string, not a number"},
		problem{9, "repos[0].webhook_secret.env", `"NOT A NAME" is not a valid environment variable name`},
		problem{10, "repos[0].hooks", `unknown field "hooks"`},
	)
}
