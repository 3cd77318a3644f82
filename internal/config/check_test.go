package config

import (
	"slices"
	"testing"
)

func TestSemanticProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []problem
	}{
		{"distribute targets twice", head + `pipelines:
  - name: ami
    repo: acme/widget
    triggers: {branch: [main]}
    stages:
      bake: {template: ami.pkr.hcl, region: us-east-1}
      distribute:
        targets:
          - {account: "222222222222", mode: share, regions: [{region: eu-west-1}, {region: us-west-2}]}
          - account: "222222222222"
            mode: copy
            regions: [{region: eu-west-1, kms_key: alias/ami}]
          - {account: "333333333333", mode: share, regions: [{region: eu-west-1}]}
`, []problem{
			{16, "pipelines[0].stages.distribute.targets[1].regions[0].region", "account 222222222222, region eu-west-1 is a target twice (first at line 13)"},
		}},
		{"unknown approver group", head + `approver_groups:
  release: [ada, grace]
pipelines:
  - name: ami
    repo: acme/widget
    triggers: {branch: [main]}
    stages:
      build: {buildspec: buildspec.yml}
      publish:
        approval: {required: true, approvers: [bob, "@releases"]}
        images: [{name: registry.example.com/acme/app, files: [{from: "dist/**", to: /app}]}]
`, []problem{
			{14, "pipelines[0].stages.publish.approval.approvers[1]", `approver group "releases" is not under approver_groups (groups: release)`},
		}},
		{"bad globs", head + `pipelines:
  - name: ci
    repo: acme/widget
    triggers:
      review: {branches: ["main["]}
      branch: [main, "["]
      tag: ['v\']
    stages: {build: {buildspec: buildspec.yml}}
`, []problem{
			{9, "pipelines[0].triggers.review.branches[0]", `"main[" is not a valid glob`},
			{10, "pipelines[0].triggers.branch[1]", `"[" is not a valid glob`},
			{11, "pipelines[0].triggers.tag[0]", `"v\\" is not a valid glob`},
		}},
		{"schedules", head + `pipelines:
  - name: ci
    repo: acme/widget
    triggers:
      schedule:
        - {cron: "0 3 * * *", ref: main}
        - {cron: "0 3 * *", ref: main, timezone: Mars/Olympus}
        - {name: weekly, cron: "TZ=UTC @weekly", ref: main, timezone: Local}
        - {name: hourly, cron: "@hourly", ref: main, timezone: America/New_York}
        - {name: weekly, cron: "@every 2h", ref: dev}
    stages: {build: {buildspec: buildspec.yml}}
`, []problem{
			{11, "pipelines[0].triggers.schedule[1]", `schedule name "main" is used twice (first at line 10)`},
			{11, "pipelines[0].triggers.schedule[1].cron", `"0 3 * *" is not a valid cron expression`},
			{11, "pipelines[0].triggers.schedule[1].timezone", `"Mars/Olympus" is not a known IANA time zone`},
			{12, "pipelines[0].triggers.schedule[2].cron", "set the time zone with the timezone field"},
			{12, "pipelines[0].triggers.schedule[2].timezone", `"Local" depends on the server`},
			{14, "pipelines[0].triggers.schedule[4].name", `schedule name "weekly" is used twice (first at line 12)`},
		}},
		{"timeouts", head + `pipelines:
  - name: ci
    repo: acme/widget
    triggers: {manual: true}
    stages: {build: {buildspec: b.yml, timeout: 0s}}
  - name: cd
    repo: acme/widget
    triggers: {manual: true}
    stages: {build: {buildspec: b.yml, timeout: 9999999999h}}
`, []problem{
			{9, "pipelines[0].stages.build.timeout", "must be longer than zero"},
			{13, "pipelines[1].stages.build.timeout", `"9999999999h" is not a valid duration`},
		}},
		{"duplicates and references", `repos:
  - name: acme/widget
    clone_url: https://github.com/acme/widget.git
    webhook_secret: {env: S}
  - name: ACME/Widget
    clone_url: https://github.com/ACME/Widget.git
    webhook_secret: {env: S}
pipelines:
  - {name: ci, repo: acme/widget, triggers: {manual: true}, stages: {build: {buildspec: b.yml}}}
  - {name: ci, repo: acme/gadget, triggers: {manual: true}, stages: {build: {buildspec: b.yml}}}
`, []problem{
			{5, "repos[1].name", `repo "ACME/Widget" is listed twice (first at line 2)`},
			{10, "pipelines[1].name", `pipeline "ci" is defined twice (first at line 9)`},
			{10, "pipelines[1].repo", `repo "acme/gadget" is not listed under repos`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { requireProblems(t, tt.src, tt.want...) })
	}
}

// TestCloneCredentials: a password in a clone URL would be in every run's
// history and is refused, pointing at clone_auth; clone_auth needs http(s).
func TestCloneCredentials(t *testing.T) {
	requireProblems(t, `repos:
  - name: acme/widget
    clone_url: https://x-access-token:ghs_secret@github.com/acme/widget.git
    webhook_secret: {env: WIDGET_SECRET}
  - name: acme/ssh
    clone_url: git@github.com:acme/ssh.git
    clone_auth: {password: {env: TOKEN}}
    webhook_secret: {env: SSH_SECRET}
  - name: acme/private
    clone_url: https://github.com/acme/private.git
    clone_auth: {password: {env: TOKEN}}
    webhook_secret: {env: PRIVATE_SECRET}
pipelines:
  - {name: ci, repo: acme/private, triggers: {manual: true}, stages: {build: {buildspec: buildspec.yml}}}
`,
		problem{3, "repos[0].clone_url", "holds a password, which would be recorded in every run's history; remove it and set clone_auth.password"},
		problem{7, "repos[1].clone_auth", `is for http(s) clone URLs; "git@github.com:acme/ssh.git" is not one`},
	)
}

// TestApproverGroupsExpand: a gate's "@group" becomes the group's logins,
// once each, after the logins listed before it.
func TestApproverGroupsExpand(t *testing.T) {
	cfg, err := Parse("kiln.yaml", []byte(head+`approver_groups:
  release: [ada, Grace, bob]
pipelines:
  - name: ami
    repo: acme/widget
    triggers: {branch: [main]}
    stages:
      build: {buildspec: buildspec.yml}
      publish:
        approval: {required: true, approvers: [grace, "@release"]}
        images: [{name: registry.example.com/acme/app, files: [{from: "dist/**", to: /app}]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Pipelines[0].Stages.Publish.Approval.Approvers
	if want := []string{"grace", "ada", "bob"}; !slices.Equal(got, want) {
		t.Errorf("approvers %v, want %v", got, want)
	}
}
