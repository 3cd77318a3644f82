package ami

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/test/awsproxy"
	"github.com/kiln-ci/kiln/test/motoserver"
)

// refsRig is a moto behind the recording proxy, reached through
// DefaultClients as the worker reaches AWS.
type refsRig struct {
	proxy *awsproxy.Proxy
	ec2   EC2API
	ssm   SSMAPI
}

func newRefsRig(t *testing.T) *refsRig {
	moto := motoserver.Start(t)
	rig := &refsRig{proxy: awsproxy.Start(t, moto.URL)}
	for _, kv := range moto.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_ENDPOINT_URL", rig.proxy.URL)
	cl := &DefaultClients{}
	var err error
	rig.ec2, err = EC2(t.Context(), cl, "eu-west-1", Principal{})
	require.NoError(t, err)
	rig.ssm, err = SSM(t.Context(), cl, "eu-west-1", Principal{})
	require.NoError(t, err)
	return rig
}

// sent lists the forwarded requests of action.
func (rig *refsRig) sent(action string) []awsproxy.Request {
	var out []awsproxy.Request
	for _, r := range rig.proxy.Requests() {
		if r.Action == action && r.Fault == awsproxy.None {
			out = append(out, r)
		}
	}
	return out
}

// TestSSMParameterIdempotent: the parameter is created as a String of data
// type aws:ec2:image; setting it to the AMI it holds again (a retry) writes
// no second version; a new AMI makes version 2.
func TestSSMParameterIdempotent(t *testing.T) {
	rig := newRefsRig(t)
	ctx := t.Context()
	const name = "/kiln/app/ami"

	first, err := PutParameter(ctx, rig.ssm, name, "ami-0123456789abcdef0", "update")
	require.NoError(t, err)
	assert.Equal(t, Parameter{Name: name, Version: 1, Changed: true}, first)
	again, err := PutParameter(ctx, rig.ssm, name, "ami-0123456789abcdef0", "update")
	require.NoError(t, err)
	assert.Equal(t, Parameter{Name: name, Version: 1}, again, "a retry makes no second version")
	puts := rig.sent("PutParameter")
	require.Len(t, puts, 1)
	var body struct {
		Name, Value, Type, DataType string
		Overwrite                   bool
	}
	require.NoError(t, json.Unmarshal(puts[0].Body, &body))
	assert.Equal(t, "aws:ec2:image", body.DataType)
	assert.Equal(t, "String", body.Type)
	assert.True(t, body.Overwrite)

	next, err := PutParameter(ctx, rig.ssm, name, "ami-0fedcba9876543210", "update")
	require.NoError(t, err)
	assert.Equal(t, Parameter{Name: name, Version: 2, Changed: true}, next)
	got, err := rig.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	require.NoError(t, err)
	assert.Equal(t, "ami-0fedcba9876543210", aws.ToString(got.Parameter.Value))
	assert.Equal(t, "aws:ec2:image", aws.ToString(got.Parameter.DataType))
	assert.Equal(t, ssmtypes.ParameterTypeString, got.Parameter.Type)
}

// TestSSMParameterOfAnotherDataTypeIsRefused: AWS cannot turn a text
// parameter into an aws:ec2:image one, so kiln says so instead of trying.
func TestSSMParameterOfAnotherDataTypeIsRefused(t *testing.T) {
	rig := newRefsRig(t)
	_, err := rig.ssm.PutParameter(t.Context(), &ssm.PutParameterInput{Name: aws.String("/kiln/text"),
		Value: aws.String("ami-0123456789abcdef0"), Type: ssmtypes.ParameterTypeString, DataType: aws.String("text")})
	require.NoError(t, err)
	_, err = PutParameter(t.Context(), rig.ssm, "/kiln/text", "ami-0fedcba9876543210", "update 222/eu-west-1")
	require.ErrorIs(t, err, ErrRefUnusable)
	assert.Contains(t, err.Error(), "update 222/eu-west-1: the SSM parameter /kiln/text has data type text")
	assert.Len(t, rig.sent("PutParameter"), 1, "only the test's own")
}

// createTemplate makes a launch template whose first version launches ami.
func (rig *refsRig) createTemplate(t *testing.T, name, ami string) string {
	out, err := rig.ec2.(*ec2.Client).CreateLaunchTemplate(t.Context(), &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(name),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(ami), InstanceType: ec2types.InstanceTypeT3Micro},
	})
	require.NoError(t, err)
	return aws.ToString(out.LaunchTemplate.LaunchTemplateId)
}

// versions lists the template's versions as moto holds them: number →
// image, and the default.
func (rig *refsRig) versions(t *testing.T, name string) (map[int64]string, int64) {
	out, err := rig.ec2.DescribeLaunchTemplateVersions(t.Context(), &ec2.DescribeLaunchTemplateVersionsInput{
		LaunchTemplateName: aws.String(name)})
	require.NoError(t, err)
	images, def := map[int64]string{}, int64(0)
	for _, v := range out.LaunchTemplateVersions {
		images[aws.ToInt64(v.VersionNumber)] = aws.ToString(v.LaunchTemplateData.ImageId)
		if aws.ToBool(v.DefaultVersion) {
			def = aws.ToInt64(v.VersionNumber)
		}
	}
	return images, def
}

// TestLaunchTemplateNewVersionOnce: the template gets one new version, from
// $Latest with the AMI, under the update's ClientToken, made the default as
// asked; the same update again (a retry) makes no second version and does
// not set the default again.
func TestLaunchTemplateNewVersionOnce(t *testing.T) {
	rig := newRefsRig(t)
	id := rig.createTemplate(t, "app", "ami-0aaaaaaaaaaaaaaa0")
	req := LaunchTemplateRequest{Name: "app", AMI: "ami-0123456789abcdef0", SetDefault: true, RunID: "p/main/1", Token: "kiln-t1"}

	first, err := UpdateLaunchTemplate(t.Context(), rig.ec2, req, "update 222/eu-west-1")
	require.NoError(t, err)
	assert.Equal(t, LaunchTemplate{ID: id, Name: "app", Version: 2, Default: true, Created: true}, first)
	again, err := UpdateLaunchTemplate(t.Context(), rig.ec2, req, "update 222/eu-west-1")
	require.NoError(t, err)
	assert.Equal(t, LaunchTemplate{ID: id, Name: "app", Version: 2, Default: true}, again)

	images, def := rig.versions(t, "app")
	assert.Equal(t, map[int64]string{1: "ami-0aaaaaaaaaaaaaaa0", 2: "ami-0123456789abcdef0"}, images, "no second version")
	assert.EqualValues(t, 2, def)
	creates := rig.sent("CreateLaunchTemplateVersion")
	require.Len(t, creates, 1)
	// moto ignores SourceVersion and ClientToken: the recording shows them.
	p := creates[0].Params
	assert.Equal(t, "$Latest", p.Get("SourceVersion"))
	assert.Equal(t, "kiln-t1", p.Get("ClientToken"))
	assert.Equal(t, id, p.Get("LaunchTemplateId"))
	assert.Equal(t, "ami-0123456789abcdef0", p.Get("LaunchTemplateData.ImageId"))
	assert.Equal(t, "ami-0123456789abcdef0 by kiln run p/main/1", p.Get("VersionDescription"))
	mods := rig.sent("ModifyLaunchTemplate")
	require.Len(t, mods, 1, "the default is set once")
	assert.Equal(t, "2", mods[0].Params.Get("SetDefaultVersion"))
}

// TestLaunchTemplateKeepsDefaultUnlessAsked: without set_default the new
// version is only the latest; a later update with set_default makes the
// version that launches the AMI the default without a new version.
func TestLaunchTemplateKeepsDefaultUnlessAsked(t *testing.T) {
	rig := newRefsRig(t)
	rig.createTemplate(t, "web", "ami-0aaaaaaaaaaaaaaa0")
	req := LaunchTemplateRequest{Name: "web", AMI: "ami-0123456789abcdef0", RunID: "p/main/2", Token: "kiln-t2"}

	got, err := UpdateLaunchTemplate(t.Context(), rig.ec2, req, "update")
	require.NoError(t, err)
	assert.EqualValues(t, 2, got.Version)
	assert.False(t, got.Default)
	_, def := rig.versions(t, "web")
	assert.EqualValues(t, 1, def)
	assert.Empty(t, rig.sent("ModifyLaunchTemplate"))

	req.SetDefault = true
	got, err = UpdateLaunchTemplate(t.Context(), rig.ec2, req, "update")
	require.NoError(t, err)
	assert.False(t, got.Created)
	assert.True(t, got.Default)
	images, def := rig.versions(t, "web")
	assert.Len(t, images, 2)
	assert.EqualValues(t, 2, def)
}

// TestLaunchTemplateMissingIsPermanent: kiln does not create templates; a
// missing one fails the update for good, naming it.
func TestLaunchTemplateMissingIsPermanent(t *testing.T) {
	rig := newRefsRig(t)
	_, err := UpdateLaunchTemplate(t.Context(), rig.ec2, LaunchTemplateRequest{Name: "nope", AMI: "ami-0123456789abcdef0"},
		"update 222/eu-west-1")
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	assert.Equal(t, awsx.TypeNotFound, appErr.Type())
	assert.True(t, appErr.NonRetryable())
	assert.Contains(t, appErr.Message(), "update 222/eu-west-1: launch template nope: read its latest and default versions: not found")
	assert.Empty(t, rig.sent("CreateLaunchTemplateVersion"))
}

// TestLaunchTemplateSameLatestAndDefault: a template whose latest version
// EC2 returns twice ($Latest and $Default are one version), launching the AMI
// already as the default, is left alone.
func TestLaunchTemplateSameLatestAndDefault(t *testing.T) {
	c := &oneVersionEC2{}
	got, err := UpdateLaunchTemplate(context.Background(), c, LaunchTemplateRequest{Name: "app", AMI: "ami-1", SetDefault: true}, "u")
	require.NoError(t, err)
	assert.Equal(t, LaunchTemplate{ID: "lt-1", Name: "app", Version: 3, Default: true}, got)
	assert.Zero(t, c.writes)
}

// oneVersionEC2 holds a template whose version 3 is latest and default and
// launches ami-1; writes count calls that would change it.
type oneVersionEC2 struct {
	EC2API
	writes int
}

func (c *oneVersionEC2) DescribeLaunchTemplateVersions(context.Context, *ec2.DescribeLaunchTemplateVersionsInput, ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplateVersionsOutput, error) {
	v := ec2types.LaunchTemplateVersion{LaunchTemplateId: aws.String("lt-1"), VersionNumber: aws.Int64(3),
		DefaultVersion: aws.Bool(true), LaunchTemplateData: &ec2types.ResponseLaunchTemplateData{ImageId: aws.String("ami-1")}}
	return &ec2.DescribeLaunchTemplateVersionsOutput{LaunchTemplateVersions: []ec2types.LaunchTemplateVersion{v, v}}, nil
}

func (c *oneVersionEC2) CreateLaunchTemplateVersion(context.Context, *ec2.CreateLaunchTemplateVersionInput, ...func(*ec2.Options)) (*ec2.CreateLaunchTemplateVersionOutput, error) {
	c.writes++
	return nil, errors.New("unexpected")
}

func (c *oneVersionEC2) ModifyLaunchTemplate(context.Context, *ec2.ModifyLaunchTemplateInput, ...func(*ec2.Options)) (*ec2.ModifyLaunchTemplateOutput, error) {
	c.writes++
	return nil, errors.New("unexpected")
}
