package iampolicy

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/kiln-ci/kiln/internal/ami"
)

// call is one AWS call kiln (or Packer, which it runs) makes: by whom, in
// which stage, in which region, and where in the code.
type call struct {
	who, stage, region, action, where string
}

// callsOf lists, read from internal/ami and the activities that take its
// steps, every call fullPipeline's run makes: bake in us-east-1 with the
// test region us-west-2 among Packer's ami_regions, the test in us-west-2,
// and distribution to its targets. The calls of Packer's are those whose
// where begins "packer build"; the others are all of ami.EC2API's and
// ami.KMSAPI's and ami.SSMAPI's methods (TestCallsAreTheInterfaces).
func callsOf() []call {
	var calls []call
	add := func(who, stage, region, where string, actions ...string) {
		for _, a := range actions {
			calls = append(calls, call{who, stage, region, a, where})
		}
	}
	const builder, bake, test, dist = "builder", "bake", "test", "distribute"
	// activities/bake.go: ami.FindPassed, ami.TagAll
	add(builder, bake, "us-east-1", "FindPassed", "ec2:DescribeImages")
	add(builder, bake, "us-east-1", "packer build", packerActions...)
	add(builder, bake, "us-west-2", "packer build: the ami_regions copy the test launches",
		"ec2:CopyImage", "ec2:CreateTags", "ec2:DescribeImages")
	for _, r := range []string{"us-east-1", "us-west-2"} {
		add(builder, bake, r, "TagAll: every region Packer made an AMI in", "ec2:DescribeImages", "ec2:CreateTags")
	}
	// activities/amitest*.go: ami.Launch, DescribeInstance, WaitRunning, Terminate, TagAll
	add(builder, test, "us-west-2", "Launch", "ec2:RunInstances", "ec2:CreateTags")
	add(builder, test, "us-west-2", "DescribeInstance, WaitRunning", "ec2:DescribeInstances")
	add(builder, test, "us-west-2", "Terminate", "ec2:TerminateInstances")
	add(builder, test, "us-west-2", "TagAll: the test's outcome", "ec2:DescribeImages", "ec2:CreateTags")
	// activities/distribute.go, share.go: ami.ReadSource, Share, CheckKey,
	// FindCopy, Copy, WaitAvailable, TagImage, DeregisterPending
	add(builder, dist, "us-east-1", "ReadSource", "ec2:DescribeImages")
	add(builder, dist, "us-east-1", "Share: copy-with-role and share targets",
		"ec2:ModifyImageAttribute", "ec2:ModifySnapshotAttribute")
	for _, r := range []string{"us-east-2", "ap-south-1"} {
		add(builder, dist, r, "FindCopy, Copy, WaitAvailable, TagImage",
			"ec2:DescribeImages", "ec2:CopyImage", "ec2:CreateTags")
		add(builder, dist, r, "DeregisterPending", "ec2:DeregisterImage")
	}
	add(builder, dist, "ap-south-1", "ShareAMI of the share copy: ReadSource, Share",
		"ec2:DescribeImages", "ec2:ModifyImageAttribute", "ec2:ModifySnapshotAttribute")
	add(builder, dist, "us-east-2", "CheckKey", "kms:DescribeKey")
	// activities/refs.go: ami.PutParameter, UpdateLaunchTemplate, after
	// each copy or share of a target that updates; Parameter Store checks
	// an aws:ec2:image value with the caller's DescribeImages.
	add(builder, dist, "us-east-2", "PutParameter: the role-less copy target's parameter",
		"ssm:GetParameter", "ssm:PutParameter", "ec2:DescribeImages")
	for _, r := range []string{"us-east-1", "eu-west-1"} {
		add("222222222222", dist, r, "FindCopy, Copy, WaitAvailable, TagImage as the role",
			"ec2:DescribeImages", "ec2:CopyImage", "ec2:CreateTags")
		add("222222222222", dist, r, "CheckKey as the role", "kms:DescribeKey")
		add("222222222222", dist, r, "DeregisterPending as the role", "ec2:DeregisterImage")
		add("222222222222", dist, r, "PutParameter as the role", "ssm:GetParameter", "ssm:PutParameter", "ec2:DescribeImages")
		add("222222222222", dist, r, "UpdateLaunchTemplate as the role", "ec2:DescribeLaunchTemplateVersions",
			"ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate")
	}
	for _, r := range []string{"us-east-1", "ap-south-1"} {
		add("555555555555", dist, r, "UpdateLaunchTemplate as the share target's role", "ec2:DescribeLaunchTemplateVersions",
			"ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate")
	}
	// activities/retention.go: ami.List, InUse, ParametersInUse, Retire, in
	// every place the pipeline's AMIs are, and ami.Describe, Children for
	// kiln amis --lineage.
	const ret = "retention"
	retire := []string{"ec2:DescribeImages", "ec2:DescribeInstances", "ec2:DescribeLaunchTemplates",
		"ec2:DescribeLaunchTemplateVersions", "ec2:EnableImageDeprecation", "ec2:DisableImage",
		"ec2:DeregisterImage", "ec2:DeleteSnapshot"}
	for _, r := range []string{"us-east-1", "us-west-2", "eu-west-1", "us-east-2", "ap-south-1"} {
		add(builder, ret, r, "List, InUse, Retire in the builder's account", retire...)
	}
	add(builder, ret, "us-east-2", "ParametersInUse: the role-less copy target's parameter", "ssm:GetParameter")
	for _, r := range []string{"us-east-1", "eu-west-1"} {
		add("222222222222", ret, r, "List, InUse, Retire as the role", retire...)
		add("222222222222", ret, r, "ParametersInUse as the role", "ssm:GetParameter")
	}
	add("444444444444", ret, "eu-west-1", "List, InUse, Retire as the role", retire...)
	for _, r := range []string{"us-east-1", "ap-south-1"} {
		add("555555555555", ret, r, "InUse in the share target's account, as its role", retire[:4]...)
	}
	return calls
}

// TestCallsAreTheInterfaces: kiln's own calls above are exactly the methods
// of ami.EC2API, ami.KMSAPI and ami.SSMAPI, the only clients its code gets:
// a call added to them must be listed above, and so be held to the policies.
func TestCallsAreTheInterfaces(t *testing.T) {
	methods := map[string]bool{}
	for prefix, api := range map[string]reflect.Type{
		"ec2:": reflect.TypeFor[ami.EC2API](),
		"kms:": reflect.TypeFor[ami.KMSAPI](),
		"ssm:": reflect.TypeFor[ami.SSMAPI](),
	} {
		for i := range api.NumMethod() {
			methods[prefix+api.Method(i).Name] = true
		}
	}
	listed := map[string]bool{}
	for _, c := range callsOf() {
		if !strings.HasPrefix(c.where, "packer build") {
			listed[c.action] = true
		}
	}
	assert.Equal(t, methods, listed)
}

// TestEveryCallIsAllowed: each call of callsOf is allowed by the document
// of whoever makes it, in its region.
func TestEveryCallIsAllowed(t *testing.T) {
	pol := generate(t, fullPipeline())
	for _, c := range callsOf() {
		d := pol.Builder
		if c.who != "builder" {
			d = pol.Targets[c.who].Policy
		}
		if !allows(d, c.action, c.region) {
			t.Errorf("%s: %s may not call %s in %s (%s)", c.stage, c.who, c.action, c.region, c.where)
		}
	}
}

// TestAllowsIsNotVacuous: the check above fails for what is not granted.
func TestAllowsIsNotVacuous(t *testing.T) {
	b := generate(t, fullPipeline()).Builder
	for _, c := range []struct{ action, region string }{
		{"ec2:RunInstances", "eu-north-1"},          // no stage there
		{"ec2:RunInstances", "us-east-2"},           // a copy region only
		{"ec2:ModifyImageAttribute", "eu-west-1"},   // only target roles act there
		{"kms:DescribeKey", "us-east-1"},            // the builder has no key there
		{"ec2:DeleteSnapshot", "eu-north-1"},        // no stage there
		{"ec2:DisableImage", "eu-central-1"},        // nor retention
		{"ec2:CopyImage", "eu-west-1"},              // the role copies, not the builder
		{"iam:PassRole", "us-east-1"},               // never granted
		{"ec2:DescribeImageAttribute", "us-east-2"}, // Packer's only
	} {
		if allows(b, c.action, c.region) {
			t.Errorf("the builder may call %s in %s", c.action, c.region)
		}
	}
}

// allows reports whether a statement of d grants action on a request in
// region: one whose aws:RequestedRegion condition names the region, or
// without that condition one with a Resource of "*" or an ARN in the region.
// Other conditions (a KMS alias, grants for AWS resources) are taken as met:
// kiln's calls are made to meet them.
func allows(d Document, action, region string) bool {
	for _, s := range d.Statement {
		if !slices.ContainsFunc(s.Action, func(a string) bool { return matches(a, action) }) {
			continue
		}
		if rs, ok := s.Condition["StringEquals"]["aws:RequestedRegion"]; ok {
			if slices.Contains(rs, region) {
				return true
			}
			continue
		}
		for _, r := range s.Resource {
			if r == "*" || arnRegion(r) == region {
				return true
			}
		}
	}
	return false
}

// matches is IAM's action match, for the trailing wildcards kiln uses.
func matches(pattern, action string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(action, p)
	}
	return pattern == action
}

// arnRegion is the region field of an ARN: arn:partition:service:region:...
func arnRegion(arn string) string {
	f := strings.Split(arn, ":")
	if len(f) < 4 {
		return ""
	}
	return f[3]
}

// TestDeregisterOnlyKilnCopies: stopping a cancelled copy is limited to
// images tagged kiln:source in the copy regions, for the builder and for
// every target role; retention's deletes, to the images and snapshots
// tagged with the pipeline.
func TestDeregisterOnlyKilnCopies(t *testing.T) {
	pol := generate(t, fullPipeline())
	docs := map[string]Document{"builder": pol.Builder}
	for acct, tr := range pol.Targets {
		docs[acct] = tr.Policy
	}
	for who, d := range docs {
		if who == "555555555555" {
			continue // a share target's role, which copies nothing
		}
		found := false
		for _, s := range d.Statement {
			if !slices.Contains(s.Action, "ec2:DeregisterImage") || s.Sid == sidPacker {
				continue // Packer's own set (force_deregister) is Packer's
			}
			if strings.Contains(s.Sid, "Retention") {
				if got := s.Condition["StringEquals"]["aws:ResourceTag/kiln:pipeline"]; !slices.Equal(got, []string{"base-ami"}) {
					t.Errorf("%s: retention may delete more than the pipeline's images: %+v", who, s.Condition)
				}
				continue
			}
			found = true
			if got := s.Condition["StringLike"]["aws:ResourceTag/kiln:source"]; !slices.Equal(got, []string{"ami-*"}) {
				t.Errorf("%s: DeregisterImage is not limited to kiln's copies: %+v", who, s.Condition)
			}
			for _, r := range s.Resource {
				if !strings.HasPrefix(r, "arn:aws:ec2:") || !strings.HasSuffix(r, "::image/*") || arnRegion(r) == "" {
					t.Errorf("%s: DeregisterImage on %q, want images of one region", who, r)
				}
			}
		}
		if !found {
			t.Errorf("%s may not stop its cancelled copies", who)
		}
	}
}
