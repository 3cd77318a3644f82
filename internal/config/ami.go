package config

import (
	"slices"
	"time"
)

// BakeStage builds an AMI from the repository's Packer template.
type BakeStage struct {
	// Template is the Packer template's path in the repository: HCL2
	// (*.pkr.hcl, or a directory of them) or JSON.
	Template string `yaml:"template" json:"template"`
	// Region is where the AMI is built, and where distribution copies from.
	Region string `yaml:"region" json:"region"`
	// Vars are passed as -var NAME=VALUE; the template must declare them.
	// kiln's own values reach the template as PKR_VAR_kiln_commit,
	// PKR_VAR_kiln_ref, PKR_VAR_kiln_run_id and PKR_VAR_kiln_pipeline
	// (HCL2 variables of those names) and as KILN_* environment variables
	// (`{{env "KILN_COMMIT"}}` in JSON templates).
	Vars map[string]string `yaml:"vars,omitempty" json:"vars,omitempty"`
	// SecretVars are Packer variables whose values are secrets: read on the
	// worker when the bake runs, passed as -var, and scrubbed from everything
	// kiln logs or records (Packer 1.6 prints sensitive variables in its
	// machine-readable output). They never reach workflow history.
	SecretVars map[string]SecretRef `yaml:"secret_vars,omitempty" json:"secret_vars,omitempty"`
	// VarFiles are -var-file paths in the repository.
	VarFiles []string `yaml:"var_files,omitempty" json:"var_files,omitempty"`
	// Timeout bounds the Packer build; default 90m.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// TestStage launches an instance from the baked AMI and runs a test command
// against it; the AMI is tagged kiln:test=passed or failed.
type TestStage struct {
	// Region where the instance runs; default the bake region.
	Region string `yaml:"region,omitempty" json:"region,omitempty"`
	// InstanceType of the test instance; default t3.micro.
	InstanceType string `yaml:"instance_type,omitempty" json:"instance_type,omitempty"`
	// SubnetID and SecurityGroupIDs place the instance.
	SubnetID         string   `yaml:"subnet_id,omitempty" json:"subnet_id,omitempty"`
	SecurityGroupIDs []string `yaml:"security_group_ids,omitempty" json:"security_group_ids,omitempty"`
	// Commands run in the repository's checkout, in one shell, with
	// KILN_AMI_ID, KILN_INSTANCE_ID, KILN_INSTANCE_IP and KILN_REGION set: an
	// `inspec exec` or any command. A failing command fails the test.
	Commands []string `yaml:"commands" json:"commands"`
	// Env adds plain environment variables to the commands, which otherwise
	// see nothing of the worker's environment but PATH; kiln's variables
	// override them.
	Env map[string]string `yaml:"env,omitempty" json:"env,omitempty"`
	// Secrets are environment variables the commands get from secrets read
	// on the worker, by name.
	Secrets map[string]DeclaredSecret `yaml:"secrets,omitempty" json:"secrets,omitempty"`
	// Timeout bounds waiting for the instance and running the commands; default 30m.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// DistributeStage copies or shares the tested AMI to every target account and
// region, in parallel.
type DistributeStage struct {
	// Targets are the accounts to distribute to, each with its regions.
	Targets []Target `yaml:"targets" json:"targets"`
	// Approval, when required, holds the run before the stage until an
	// approver lets it go on.
	Approval *Approval `yaml:"approval,omitempty" json:"approval,omitempty"`
	// MaxCopiesPerRegion caps concurrent copies into one destination region,
	// as AWS limits concurrent AMI copies; default 5.
	MaxCopiesPerRegion int `yaml:"max_copies_per_region,omitempty" json:"max_copies_per_region,omitempty"`
	// RetryWindow is how long a run with permanently failed targets waits for
	// `kiln retry` before it fails; default 24h.
	RetryWindow Duration `yaml:"retry_window,omitempty" json:"retry_window,omitempty"`
}

// gate is the stage's approval, or nil for no stage.
func (d *DistributeStage) gate() *Approval {
	if d == nil {
		return nil
	}
	return d.Approval
}

// Target is one account's share of a distribution.
type Target struct {
	// Account is the 12-digit AWS account ID.
	Account string `yaml:"account" json:"account"`
	// Role is the IAM role ARN kiln assumes in the account; empty means the
	// worker's own credentials (the source account).
	Role string `yaml:"role,omitempty" json:"role,omitempty"`
	// Mode is copy (an encrypted copy owned by the target account) or share
	// (launch permission on the source AMI and its snapshots).
	Mode string `yaml:"mode" json:"mode"`
	// Regions lists the destination regions, each with its KMS key.
	Regions []TargetRegion `yaml:"regions" json:"regions"`
	// SSMParameter, when set, is the SSM parameter (a String of data type
	// aws:ec2:image, such as /kiln/app/ami) kiln points at the target's AMI
	// in each of its regions, in the target's account, once the copy or
	// share there succeeded. A share target that sets it needs a role.
	SSMParameter string `yaml:"ssm_parameter,omitempty" json:"ssm_parameter,omitempty"`
	// LaunchTemplate, when set, gets a new version launching the target's
	// AMI in each of its regions, in the target's account, once the copy
	// or share there succeeded. A share target that sets it needs a role.
	LaunchTemplate *LaunchTemplate `yaml:"launch_template,omitempty" json:"launch_template,omitempty"`
}

// Updates says whether the target updates a parameter or launch template
// once its AMI is in place.
func (t Target) Updates() bool { return t.SSMParameter != "" || t.LaunchTemplate != nil }

// LaunchTemplate is an existing EC2 launch template a target points at its
// AMI: kiln adds a version, the latest one with only the image changed.
type LaunchTemplate struct {
	// Name is the launch template's name; the template must exist in every
	// region of the target.
	Name string `yaml:"name" json:"name"`
	// SetDefault makes the new version the template's default, which
	// launches that name no version use.
	SetDefault bool `yaml:"set_default,omitempty" json:"set_default,omitempty"`
}

// TargetRegion is one destination region of a target.
type TargetRegion struct {
	Region string `yaml:"region" json:"region"`
	// KMSKey encrypts copies in this region: a key ID, ARN or alias. Required
	// for copy mode.
	KMSKey string `yaml:"kms_key,omitempty" json:"kms_key,omitempty"`
}

// Distribution modes.
const (
	ModeCopy  = "copy"
	ModeShare = "share"
)

// Stage defaults.
const (
	DefaultBakeTimeout        = 90 * time.Minute
	DefaultTestTimeout        = 30 * time.Minute
	DefaultTestInstanceType   = "t3.micro"
	DefaultMaxCopiesPerRegion = 5
	DefaultRetryWindow        = 24 * time.Hour
)

// OwnAMIRegions are the regions where the worker's own account holds the
// pipeline's AMIs, sorted: the bake's and the test's, and every
// distribution region (a share target's copies stay in the worker's
// account). Retention lists them there, and iam-policy lets it.
func (p *Pipeline) OwnAMIRegions() []string {
	var regions []string
	if b := p.Stages.Bake; b != nil {
		regions = append(regions, b.Region)
	}
	if t := p.Stages.Test; t != nil {
		regions = append(regions, t.Region)
	}
	if d := p.Stages.Distribute; d != nil {
		for _, t := range d.Targets {
			for _, r := range t.Regions {
				regions = append(regions, r.Region)
			}
		}
	}
	regions = slices.DeleteFunc(regions, func(r string) bool { return r == "" })
	slices.Sort(regions)
	return slices.Compact(regions)
}
