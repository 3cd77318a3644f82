package config

import "testing"

// TestTargetUpdatesProblems: bad ssm_parameter and launch_template names are
// refused at load, naming the field, as is a share target that would update
// an account kiln has no role in.
func TestTargetUpdatesProblems(t *testing.T) {
	requireProblems(t, head+`pipelines:
  - name: ami
    repo: acme/widget
    triggers: {branch: [main]}
    stages:
      bake: {template: ami.pkr.hcl, region: us-east-1}
      distribute:
        targets:
          - account: "222222222222"
            role: arn:aws:iam::222222222222:role/kiln
            mode: copy
            regions: [{region: eu-west-1, kms_key: alias/ami}]
            ssm_parameter: kiln/app/ami
            launch_template: {name: "a b"}
          - account: "333333333333"
            mode: share
            regions: [{region: eu-west-1}]
            ssm_parameter: /aws/app/ami
          - account: "444444444444"
            mode: share
            regions: [{region: eu-west-1}]
            launch_template: {name: app, set_default: true}
          - account: "555555555555"
            role: arn:aws:iam::555555555555:role/kiln
            mode: share
            regions: [{region: eu-west-1}]
            ssm_parameter: /kiln/app ami
`,
		problem{17, "pipelines[0].stages.distribute.targets[0].ssm_parameter",
			`"kiln/app/ami" is not a valid SSM parameter name: start it with /`},
		problem{18, "pipelines[0].stages.distribute.targets[0].launch_template.name",
			`"a b" is not a valid launch template name: 3 to 128 letters, digits and ( ) . - / _`},
		problem{22, "pipelines[0].stages.distribute.targets[1].ssm_parameter",
			`"/aws/app/ami" is not a valid SSM parameter name: names starting with "aws" or "ssm" are reserved by AWS`},
		problem{22, "pipelines[0].stages.distribute.targets[1].ssm_parameter",
			"account 333333333333 is a share target without a role: kiln updates the SSM parameter in the target's account"},
		problem{26, "pipelines[0].stages.distribute.targets[2].launch_template",
			"account 444444444444 is a share target without a role: kiln updates the launch template"},
		problem{31, "pipelines[0].stages.distribute.targets[3].ssm_parameter",
			`"/kiln/app ami" is not a valid SSM parameter name: use /-separated levels of letters, digits`},
	)
}

// TestTargetUpdatesAccepted: valid names, on a copy target without a role
// (the builder's own account) and a share target with one, load.
func TestTargetUpdatesAccepted(t *testing.T) {
	cfg, err := Parse("kiln.yaml", []byte(head+`pipelines:
  - name: ami
    repo: acme/widget
    triggers: {branch: [main]}
    stages:
      bake: {template: ami.pkr.hcl, region: us-east-1}
      distribute:
        targets:
          - account: "111111111111"
            mode: copy
            regions: [{region: eu-west-1, kms_key: alias/ami}]
            ssm_parameter: /kiln/app.v2/ami_id-x
            launch_template: {name: "app(web)/blue_1.0", set_default: true}
          - account: "555555555555"
            role: arn:aws:iam::555555555555:role/kiln
            mode: share
            regions: [{region: eu-west-1}]
            launch_template: {name: app}
`))
	if err != nil {
		t.Fatal(err)
	}
	tg := cfg.Pipelines[0].Stages.Distribute.Targets
	if tg[0].SSMParameter != "/kiln/app.v2/ami_id-x" || *tg[0].LaunchTemplate != (LaunchTemplate{Name: "app(web)/blue_1.0", SetDefault: true}) {
		t.Errorf("target 0: %+v", tg[0])
	}
	if !tg[1].Updates() || tg[1].LaunchTemplate.SetDefault {
		t.Errorf("target 1: %+v", tg[1])
	}
}
