package iampolicy

import (
	"bytes"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/config"
)

const builderARN = "arn:aws:iam::111111111111:role/kiln-builder"

// fullPipeline bakes in us-east-1, tests in us-west-2 and distributes to a
// cross-account copy target, the builder's own account and share targets;
// some targets update an SSM parameter or a launch template, one share
// target through a role.
func fullPipeline() config.Pipeline {
	return config.Pipeline{Name: "base-ami", Stages: config.Stages{
		Bake: &config.BakeStage{Template: "base.pkr.hcl", Region: "us-east-1"},
		Test: &config.TestStage{Region: "us-west-2", Commands: []string{"true"}},
		Distribute: &config.DistributeStage{Targets: []config.Target{
			{Account: "222222222222", Role: "arn:aws:iam::222222222222:role/kiln-copy", Mode: config.ModeCopy,
				Regions: []config.TargetRegion{
					{Region: "us-east-1", KMSKey: "alias/ami"},
					{Region: "eu-west-1", KMSKey: "1234abcd-12ab-34cd-56ef-1234567890ab"},
				},
				SSMParameter: "/kiln/base/ami", LaunchTemplate: &config.LaunchTemplate{Name: "base", SetDefault: true}},
			{Account: "111111111111", Mode: config.ModeCopy, Regions: []config.TargetRegion{
				{Region: "us-east-2", KMSKey: "arn:aws:kms:us-east-2:111111111111:key/mrk-1"},
			}, SSMParameter: "/kiln/base/ami"},
			{Account: "333333333333", Mode: config.ModeShare, Regions: []config.TargetRegion{
				{Region: "us-east-1"}, {Region: "ap-south-1"},
			}},
			{Account: "444444444444", Role: "arn:aws:iam::444444444444:role/kiln-copy", Mode: config.ModeCopy,
				Regions: []config.TargetRegion{{Region: "eu-west-1", KMSKey: "arn:aws:kms:eu-west-1:444444444444:alias/x"}}},
			{Account: "555555555555", Role: "arn:aws:iam::555555555555:role/kiln-update", Mode: config.ModeShare,
				Regions:        []config.TargetRegion{{Region: "us-east-1"}, {Region: "ap-south-1"}},
				LaunchTemplate: &config.LaunchTemplate{Name: "web"}},
		}},
	}, Lifecycle: &config.Lifecycle{Retention: config.Retention{Keep: 3, DeleteAfter: config.Age(90 * 24 * time.Hour)}}}
}

func generate(t *testing.T, p config.Pipeline) *Policies {
	t.Helper()
	pol, err := Generate(p, Options{BuilderARN: builderARN})
	require.NoError(t, err)
	return pol
}

// stmt returns the statement with this Sid, failing the test when absent.
func stmt(t *testing.T, d Document, sid string) Statement {
	t.Helper()
	i := slices.IndexFunc(d.Statement, func(s Statement) bool { return s.Sid == sid })
	require.GreaterOrEqual(t, i, 0, "no statement %s in %+v", sid, d)
	return d.Statement[i]
}

func regionsOf(s Statement) []string { return s.Condition["StringEquals"]["aws:RequestedRegion"] }

func TestBuilderPolicy(t *testing.T) {
	b := generate(t, fullPipeline()).Builder

	packer := stmt(t, b, "PackerAmazonEbsAnyResourceInBakeAndTestRegions")
	assert.Len(t, packer.Action, 33)
	assert.Equal(t, []string{"*"}, packer.Resource)
	assert.Equal(t, []string{"us-east-1", "us-west-2"}, regionsOf(packer),
		"Packer bakes in the bake region and copies to the test region, where the test needs an AMI")
	tagger := stmt(t, b, "KilnFindsAndTagsBakedImagesAnyResourceInBakeAndTestRegions")
	assert.Equal(t, []string{"ec2:CreateTags", "ec2:DescribeImages"}, tagger.Action)
	assert.Equal(t, []string{"us-east-1", "us-west-2"}, regionsOf(tagger), "kiln tags each AMI Packer made")

	testStage := stmt(t, b, "KilnTestInstanceAnyResourceAsRunInstancesTouchesManyInTestRegion")
	assert.Equal(t, []string{"ec2:CreateTags", "ec2:DescribeImages", "ec2:DescribeInstances", "ec2:RunInstances",
		"ec2:TerminateInstances"}, testStage.Action, "DescribeImages: tagging the outcome reads the AMI's snapshots")
	assert.Equal(t, []string{"us-west-2"}, regionsOf(testStage))

	share := stmt(t, b, "KilnSharesImagesAndSnapshotsWithTargetAccounts")
	assert.Equal(t, []string{
		"arn:aws:ec2:ap-south-1::image/*", "arn:aws:ec2:ap-south-1::snapshot/*",
		"arn:aws:ec2:us-east-1::image/*", "arn:aws:ec2:us-east-1::snapshot/*",
	}, share.Resource, "the source in the bake region, and the share copy in ap-south-1")
	assert.Empty(t, share.Condition)

	own := stmt(t, b, "KilnCopiesInOwnAccountAnyResourceAsEc2HasNoCopyArnsRegionLimited")
	assert.Equal(t, []string{"ec2:CopyImage", "ec2:CreateTags", "ec2:DescribeImages"}, own.Action)
	assert.Equal(t, []string{"ap-south-1", "us-east-2"}, regionsOf(own),
		"the share copy outside the bake region and the role-less copy target")

	assert.Equal(t, []string{"arn:aws:kms:us-east-2:111111111111:key/mrk-1"}, stmt(t, b, "KmsUseOwnAccountCopyKeys").Resource)
	assert.Equal(t, []string{
		"arn:aws:iam::222222222222:role/kiln-copy", "arn:aws:iam::444444444444:role/kiln-copy",
		"arn:aws:iam::555555555555:role/kiln-update",
	}, stmt(t, b, "KilnAssumesExactlyTheTargetRoles").Resource)
}

func TestTargetPolicies(t *testing.T) {
	pol := generate(t, fullPipeline())
	require.Equal(t, []string{"222222222222", "444444444444", "555555555555"}, slices.Sorted(maps.Keys(pol.Targets)),
		"copy targets with a role, and the share target that updates through one")

	tr := pol.Targets["222222222222"]
	assert.Equal(t, []string{"eu-west-1", "us-east-1"}, tr.Regions)
	copyImage := stmt(t, tr.Policy, "CopyIntoThisAccountAnyResourceAsEc2HasNoCopyArnsRegionLimited")
	assert.Equal(t, []string{"eu-west-1", "us-east-1"}, regionsOf(copyImage))

	keyARN := []string{"arn:aws:kms:eu-west-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"}
	use := stmt(t, tr.Policy, "KmsUseCopyKeys")
	assert.Equal(t, keyARN, use.Resource)
	assert.NotContains(t, use.Action, "kms:CreateGrant", "CreateGrant only comes with its condition")
	grant := stmt(t, tr.Policy, "KmsCreateGrantForEbsOnCopyKeys")
	assert.Equal(t, keyARN, grant.Resource)
	assert.Equal(t, Condition{"Bool": {"kms:GrantIsForAWSResource": {"true"}}}, grant.Condition)

	byAlias := stmt(t, tr.Policy, "KmsCreateGrantForEbsOnCopyKeysByAliasKeyPoliciesMustAlsoAllow")
	assert.Equal(t, []string{"arn:aws:kms:us-east-1:222222222222:key/*"}, byAlias.Resource)
	assert.Equal(t, Condition{
		"Bool":                     {"kms:GrantIsForAWSResource": {"true"}},
		"ForAnyValue:StringEquals": {"kms:ResourceAliases": {"alias/ami"}},
	}, byAlias.Condition)

	trust := tr.Trust.Statement
	require.Len(t, trust, 1)
	assert.Equal(t, &Principal{AWS: builderARN}, trust[0].Principal)
	assert.Equal(t, []string{"sts:AssumeRole"}, trust[0].Action)
	assert.Empty(t, trust[0].Resource)

	aliasARN := stmt(t, pol.Targets["444444444444"].Policy, "KmsUseCopyKeysByAliasKeyPoliciesMustAlsoAllow")
	assert.Equal(t, []string{"arn:aws:kms:eu-west-1:444444444444:key/*"}, aliasARN.Resource)
	assert.Equal(t, []string{"alias/x"}, aliasARN.Condition["ForAnyValue:StringEquals"]["kms:ResourceAliases"])

	require.NotNil(t, pol.SharedWith)
	assert.Equal(t, map[string][]string{"333333333333": {"ap-south-1", "us-east-1"}, "555555555555": {"ap-south-1", "us-east-1"}},
		pol.SharedWith.Accounts)
	assert.NotEmpty(t, pol.SharedWith.Note)
}

// allowed are the only actions kiln and Packer call; nothing else may appear.
var allowed = strings.Fields(`ec2:AttachVolume ec2:AuthorizeSecurityGroupIngress ec2:CopyImage
	ec2:CreateImage ec2:CreateKeyPair ec2:CreateSecurityGroup ec2:CreateSnapshot ec2:CreateTags
	ec2:CreateVolume ec2:DeleteKeyPair ec2:DeleteSecurityGroup ec2:DeleteSnapshot ec2:DeleteVolume
	ec2:DeregisterImage ec2:DescribeImageAttribute ec2:DescribeImages ec2:DescribeInstances
	ec2:DescribeInstanceStatus ec2:DescribeRegions ec2:DescribeSecurityGroups ec2:DescribeSnapshots
	ec2:DescribeSubnets ec2:DescribeTags ec2:DescribeVolumes ec2:DetachVolume ec2:GetPasswordData
	ec2:ModifyImageAttribute ec2:ModifyInstanceAttribute ec2:ModifySnapshotAttribute ec2:RegisterImage
	ec2:RunInstances ec2:StopInstances ec2:TerminateInstances kms:DescribeKey kms:CreateGrant
	kms:Encrypt kms:Decrypt kms:ReEncrypt* kms:GenerateDataKey* sts:AssumeRole
	s3:GetObject s3:PutObject ecr:GetAuthorizationToken ecr:BatchCheckLayerAvailability ecr:BatchGetImage
	ecr:CompleteLayerUpload ecr:GetDownloadUrlForLayer ecr:InitiateLayerUpload ecr:ListImages ecr:PutImage
	ecr:UploadLayerPart ses:SendEmail sns:Publish ssm:GetParameter ssm:PutParameter
	ec2:DescribeLaunchTemplateVersions ec2:CreateLaunchTemplateVersion ec2:ModifyLaunchTemplate
	ec2:DescribeLaunchTemplates ec2:EnableImageDeprecation ec2:DisableImage`)

// TestDocumentsAreWellFormed checks what IAM requires of every document:
// the version, alphanumeric unique Sids, and no action kiln does not call.
func TestDocumentsAreWellFormed(t *testing.T) {
	pol := generate(t, fullPipeline())
	docs := map[string]Document{"builder": pol.Builder}
	for acct, tr := range pol.Targets {
		docs[acct+" policy"], docs[acct+" trust"] = tr.Policy, tr.Trust
	}
	sid := regexp.MustCompile(`^[A-Za-z0-9]+$`)
	for name, d := range docs {
		assert.Equal(t, "2012-10-17", d.Version, name)
		seen := map[string]bool{}
		for _, s := range d.Statement {
			assert.Regexp(t, sid, s.Sid, name)
			assert.False(t, seen[s.Sid], "%s: Sid %s twice", name, s.Sid)
			seen[s.Sid] = true
			assert.Equal(t, "Allow", s.Effect, name)
			assert.True(t, slices.IsSorted(s.Action), "%s %s: actions unsorted", name, s.Sid)
			for _, a := range s.Action {
				assert.Contains(t, allowed, a, "%s %s", name, s.Sid)
			}
			assert.NotContains(t, s.Resource, "", name)
		}
	}
}

func TestOutputIsDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	require.NoError(t, generate(t, fullPipeline()).WriteJSON(&a))
	p := fullPipeline()
	slices.Reverse(p.Stages.Distribute.Targets)
	for i := range p.Stages.Distribute.Targets {
		slices.Reverse(p.Stages.Distribute.Targets[i].Regions)
	}
	require.NoError(t, generate(t, p).WriteJSON(&b))
	assert.Equal(t, a.String(), b.String(), "the order of targets and regions in kiln.yaml does not matter")
}

func TestBakeOnly(t *testing.T) {
	pol := generate(t, config.Pipeline{Name: "p", Stages: config.Stages{
		Bake: &config.BakeStage{Region: "eu-central-1"},
		Test: &config.TestStage{},
	}})
	sids := make([]string, 0, len(pol.Builder.Statement))
	for _, s := range pol.Builder.Statement {
		sids = append(sids, s.Sid)
		assert.Equal(t, []string{"eu-central-1"}, regionsOf(s), "the test region defaults to the bake region")
	}
	assert.Equal(t, []string{"PackerAmazonEbsAnyResourceInBakeAndTestRegions",
		"KilnFindsAndTagsBakedImagesAnyResourceInBakeAndTestRegions",
		"KilnTestInstanceAnyResourceAsRunInstancesTouchesManyInTestRegion"}, sids)
	assert.Nil(t, pol.Targets)
	assert.Nil(t, pol.SharedWith)
	require.Len(t, pol.Notes, 1, "only the one about ami_regions")
	assert.Contains(t, pol.Notes[0], "ami_regions")
	assert.Contains(t, pol.Notes[0], "(eu-central-1)")
	assert.Contains(t, pol.Notes[0], "PackerAmazonEbsAnyResourceInBakeAndTestRegions and "+
		"KilnFindsAndTagsBakedImagesAnyResourceInBakeAndTestRegions")
}

// TestNoBakeNoAMIRegionsNote: without a bake there is no Packer to copy.
func TestNoBakeNoAMIRegionsNote(t *testing.T) {
	pol := generate(t, config.Pipeline{Name: "p", Stages: config.Stages{Test: &config.TestStage{Region: "us-east-1"}}})
	assert.NotContains(t, strings.Join(pol.Notes, "\n"), "ami_regions")
	assert.Contains(t, stmt(t, pol.Builder, "KilnTestInstanceAnyResourceAsRunInstancesTouchesManyInTestRegion").Action,
		"ec2:DescribeImages")
}

func TestPlaceholderBuilder(t *testing.T) {
	pol, err := Generate(fullPipeline(), Options{})
	require.NoError(t, err)
	assert.Equal(t, PlaceholderBuilderARN, pol.Targets["222222222222"].Trust.Statement[0].Principal.AWS)
	assert.Contains(t, strings.Join(pol.Notes, "\n"), "--builder-arn")
	var out bytes.Buffer
	require.NoError(t, pol.WriteJSON(&out))
	assert.Contains(t, out.String(), `"AWS": "arn:aws:iam::<ACCOUNT>:role/kiln-builder"`, "not HTML-escaped")
}

func TestErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		stages config.Stages
		want   string
	}{
		"build only":              {config.Stages{Build: &config.BuildStage{}}, "makes no AWS calls"},
		"test without a region":   {config.Stages{Test: &config.TestStage{}}, "no bake region"},
		"distribute without bake": {config.Stages{Distribute: &config.DistributeStage{}}, "no bake stage"},
		"unknown mode": {config.Stages{Bake: &config.BakeStage{Region: "us-east-1"},
			Distribute: &config.DistributeStage{Targets: []config.Target{{Account: "2", Mode: "move"}}}}, `unknown mode "move"`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Generate(config.Pipeline{Name: "p", Stages: tc.stages}, Options{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), `pipeline "p"`)
		})
	}
}

// TestTargetUpdatePolicies: whoever updates a target's SSM parameter or
// launch template may do exactly that, in the target's account and regions:
// the parameter by its ARN (with the DescribeImages Parameter Store checks
// the AMI with), the launch templates of the account and regions.
func TestTargetUpdatePolicies(t *testing.T) {
	pol := generate(t, fullPipeline())

	role := pol.Targets["222222222222"].Policy
	params := stmt(t, role, "PointsTheTargetParametersAtTheAmi")
	assert.Equal(t, []string{"ssm:GetParameter", "ssm:PutParameter"}, params.Action)
	assert.Equal(t, []string{"arn:aws:ssm:eu-west-1:222222222222:parameter/kiln/base/ami",
		"arn:aws:ssm:us-east-1:222222222222:parameter/kiln/base/ami"}, params.Resource)
	assert.Equal(t, []string{"eu-west-1", "us-east-1"},
		regionsOf(stmt(t, role, "ParameterStoreChecksTheAmiAnyResourceAsDescribeImagesHasNoArnsRegionLimited")))
	lt := stmt(t, role, "AddsLaunchTemplateVersionsAnyTemplateInRegionAsArnsHaveNoNames")
	assert.Equal(t, []string{"ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate"}, lt.Action)
	assert.Equal(t, []string{"arn:aws:ec2:eu-west-1:222222222222:launch-template/*",
		"arn:aws:ec2:us-east-1:222222222222:launch-template/*"}, lt.Resource)

	share := pol.Targets["555555555555"]
	assert.Equal(t, []string{"arn:aws:iam::555555555555:role/kiln-update"}, share.Roles)
	assert.Equal(t, []string{"ap-south-1", "us-east-1"}, share.Regions)
	sids := []string{}
	for _, s := range share.Policy.Statement {
		sids = append(sids, s.Sid)
	}
	assert.Equal(t, []string{"ReadsLaunchTemplateVersionsAnyResourceAsDescribeHasNoArnsRegionLimited",
		"AddsLaunchTemplateVersionsAnyTemplateInRegionAsArnsHaveNoNames",
		"RetentionFindsAMIsAndWhatUsesThemAnyResourceRegionLimited"}, sids,
		"a share target's role copies and retires nothing; retention reads what uses the shared AMIs there")
	assert.Equal(t, []string{"arn:aws:ec2:ap-south-1:555555555555:launch-template/*",
		"arn:aws:ec2:us-east-1:555555555555:launch-template/*"},
		stmt(t, share.Policy, "AddsLaunchTemplateVersionsAnyTemplateInRegionAsArnsHaveNoNames").Resource)
	assert.Equal(t, builderARN, share.Trust.Statement[0].Principal.AWS)

	b := generate(t, fullPipeline()).Builder
	assert.Equal(t, []string{"arn:aws:ssm:us-east-2:111111111111:parameter/kiln/base/ami"},
		stmt(t, b, "KilnPointsTheTargetParametersAtTheAmi").Resource, "the role-less copy target is the builder's own")
	for _, s := range b.Statement {
		assert.NotContains(t, s.Action, "ec2:CreateLaunchTemplateVersion", "no builder-owned target has a launch template")
	}
}

// TestShareUpdateWithoutRole: a share target that updates needs a role;
// config checks say so at load, and Generate refuses too.
func TestShareUpdateWithoutRole(t *testing.T) {
	p := fullPipeline()
	p.Stages.Distribute.Targets[2].SSMParameter = "/kiln/base/ami"
	_, err := Generate(p, Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "target 333333333333: a share target that updates an SSM parameter or launch template needs a role")
}
