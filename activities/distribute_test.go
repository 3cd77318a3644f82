package activities

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/kiln-ci/kiln/internal/ami"
	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/test/awsproxy"
	"github.com/kiln-ci/kiln/test/motoserver"
)

const copyRole = "arn:aws:iam::222222222222:role/kiln-distribute"

// copyRig is a moto behind the recording proxy, with a source AMI in
// us-east-1 and enabled and disabled keys in account 222's eu-west-1.
type copyRig struct {
	proxy           *awsproxy.Proxy
	source          string
	enabled, frozen string
}

// TestCopyAMIAgainstMoto shares one moto between the CopyAMI cases.
func TestCopyAMIAgainstMoto(t *testing.T) {
	moto := motoserver.Start(t)
	rig := &copyRig{proxy: awsproxy.Start(t, moto.URL)}
	rig.proxy.ShareAcrossAccounts()
	for _, kv := range moto.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_ENDPOINT_URL", rig.proxy.URL)
	rig.setUp(t)

	t.Run("CopiesOnceThenFindsTheCopy", rig.testCopiesOnce)
	t.Run("PlainCopyIsNotTheEncryptedOne", rig.testPlainBesideEncrypted)
	t.Run("ResumesFromCheckpoint", rig.testResumes)
	t.Run("DisabledKeyIsPermanent", rig.testDisabledKey)
	t.Run("MissingSourceIsPermanent", rig.testMissingSource)
	t.Run("OtherAccountNeedsRole", rig.testNeedsRole)
}

func (rig *copyRig) setUp(t *testing.T) {
	ctx := context.Background()
	cfg, err := awsx.Config(ctx, "us-east-1")
	require.NoError(t, err)
	img, err := ec2.NewFromConfig(cfg).RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String("kiln-copy-source")})
	require.NoError(t, err)
	rig.source = aws.ToString(img.ImageId)
	_, err = ec2.NewFromConfig(cfg).CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{rig.source},
		Tags: []ec2types.Tag{{Key: aws.String("team"), Value: aws.String("platform")}}})
	require.NoError(t, err)

	eu, err := awsx.Config(ctx, "eu-west-1")
	require.NoError(t, err)
	keys := kms.NewFromConfig(awsx.AssumeRole(eu, copyRole, "test"))
	for _, k := range []*string{&rig.enabled, &rig.frozen} {
		out, err := keys.CreateKey(ctx, &kms.CreateKeyInput{})
		require.NoError(t, err)
		*k = aws.ToString(out.KeyMetadata.KeyId)
	}
	_, err = keys.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(rig.frozen)})
	require.NoError(t, err)
}

// copy runs CopyAMI in an activity environment, with prev as the heartbeat
// details a crashed attempt left.
func (rig *copyRig) copy(t *testing.T, in CopyInput, prev *copyCheckpoint) (*CopyResult, error) {
	t.Helper()
	a := &Activities{Log: zerolog.Nop(), CopyPollInterval: 50 * time.Millisecond}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	if prev != nil {
		env.SetHeartbeatDetails(*prev)
	}
	v, err := env.ExecuteActivity(a.CopyAMI, in)
	if err != nil {
		return nil, err
	}
	var res CopyResult
	require.NoError(t, v.Get(&res))
	return &res, nil
}

func (rig *copyRig) input(runID, region, key string) CopyInput {
	return CopyInput{RunID: runID, Pipeline: "p", Source: SourceAMI{Region: "us-east-1", AMI: rig.source},
		Account: "222222222222", Role: copyRole, Region: region, KMSKey: key}
}

func (rig *copyRig) copies(region string) int {
	return rig.proxy.Count("CopyImage", func(r awsproxy.Request) bool {
		return r.Region == region && r.Params.Get("SourceImageId") == rig.source && r.Fault == awsproxy.None
	})
}

// testCopiesOnce: a copy is made once, tagged with the source's tags, and a
// second run of the same target (a retry that lost its heartbeat, or a rerun)
// finds it by its kiln:source tag instead of copying again.
func (rig *copyRig) testCopiesOnce(t *testing.T) {
	first, err := rig.copy(t, rig.input("p/main/1", "eu-west-1", rig.enabled), nil)
	require.NoError(t, err)
	assert.False(t, first.Resumed)
	assert.Equal(t, 1, rig.copies("eu-west-1"))

	again, err := rig.copy(t, rig.input("p/main/1", "eu-west-1", rig.enabled), nil)
	require.NoError(t, err)
	assert.True(t, again.Resumed)
	assert.Equal(t, first.AMI, again.AMI)
	assert.Equal(t, 1, rig.copies("eu-west-1"), "no second CopyImage")

	eu, err := awsx.Config(context.Background(), "eu-west-1")
	require.NoError(t, err)
	out, err := ec2.NewFromConfig(awsx.AssumeRole(eu, copyRole, "test")).DescribeImages(context.Background(),
		&ec2.DescribeImagesInput{ImageIds: []string{first.AMI}})
	require.NoError(t, err)
	tags := map[string]string{}
	for _, tag := range out.Images[0].Tags {
		tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	assert.Equal(t, map[string]string{"team": "platform", ami.TagSource: rig.source, ami.TagCopyKey: rig.enabled}, tags)
}

// testPlainBesideEncrypted: a plain copy into a region that holds an
// encrypted copy of the same source (a share target's regional copy beside a
// same-account copy target) is a copy of its own, not the encrypted one.
func (rig *copyRig) testPlainBesideEncrypted(t *testing.T) {
	encrypted, err := rig.copy(t, rig.input("p/main/1", "eu-west-1", rig.enabled), nil)
	require.NoError(t, err)
	plain, err := rig.copy(t, rig.input("p/main/1", "eu-west-1", ""), nil)
	require.NoError(t, err)
	assert.False(t, plain.Resumed)
	assert.NotEqual(t, encrypted.AMI, plain.AMI)
	assert.Equal(t, 2, rig.copies("eu-west-1"))
}

// testResumes: an attempt whose checkpoint names a copy only waits for it.
func (rig *copyRig) testResumes(t *testing.T) {
	first, err := rig.copy(t, rig.input("p/main/2", "us-west-2", ""), nil)
	require.NoError(t, err)
	before := len(rig.proxy.Requests())

	res, err := rig.copy(t, rig.input("p/main/2", "us-west-2", ""), &copyCheckpoint{AMI: first.AMI})
	require.NoError(t, err)
	assert.True(t, res.Resumed)
	assert.Equal(t, first.AMI, res.AMI)
	assert.Equal(t, 1, rig.copies("us-west-2"))
	for _, r := range rig.proxy.Requests()[before:] {
		assert.Empty(t, r.Params.Get("Filter.1.Name"), "the resumed attempt needs no lookup by tag: %s %v", r.Action, r.Params)
	}
}

func (rig *copyRig) testDisabledKey(t *testing.T) {
	_, err := rig.copy(t, rig.input("p/main/3", "eu-west-1", rig.frozen), nil)
	appErr := requireAppError(t, err, awsx.TypeKMSKeyUnusable)
	assert.Contains(t, appErr.Message(), "the KMS key "+rig.frozen+" is Disabled")
	assert.Contains(t, appErr.Message(), "account 222222222222")
}

func (rig *copyRig) testMissingSource(t *testing.T) {
	in := rig.input("p/main/4", "eu-west-1", rig.enabled)
	in.Source.AMI = "ami-0000000000000dead"
	_, err := rig.copy(t, in, nil)
	appErr := requireAppError(t, err, awsx.TypeNotFound)
	assert.Contains(t, appErr.Message(), "ami-0000000000000dead")
}

func (rig *copyRig) testNeedsRole(t *testing.T) {
	in := rig.input("p/main/5", "eu-west-1", rig.enabled)
	in.Role = ""
	_, err := rig.copy(t, in, nil)
	appErr := requireAppError(t, err, ErrInvalidDistribution)
	assert.Contains(t, appErr.Message(), "set the target's role")
}

func requireAppError(t *testing.T, err error, typ string) *temporal.ApplicationError {
	t.Helper()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%T: %v", err, err)
	assert.Equal(t, typ, appErr.Type(), appErr.Message())
	assert.True(t, appErr.NonRetryable())
	return appErr
}

// TestCopyToken: the token is stable for a target, differs between targets
// and generations, and fits EC2's 64 characters.
func TestCopyToken(t *testing.T) {
	in := CopyInput{RunID: "p/main/1", Account: "222222222222", Region: "eu-west-1", Source: SourceAMI{AMI: "ami-1"}}
	tok := CopyToken(in)
	assert.Equal(t, tok, CopyToken(in))
	assert.LessOrEqual(t, len(tok), 64)
	other := in
	other.Region = "us-west-2"
	assert.NotEqual(t, tok, CopyToken(other))
	retry := in
	retry.Generation = 1
	assert.NotEqual(t, tok, CopyToken(retry))
}

// deregisters records DeregisterImage calls; its image is in state.
type deregisters struct {
	ami.EC2API
	state ec2types.ImageState
	amis  []string
}

func (d *deregisters) DescribeImages(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	return &ec2.DescribeImagesOutput{Images: []ec2types.Image{{ImageId: aws.String(in.ImageIds[0]), State: d.state}}}, nil
}

func (d *deregisters) DeregisterImage(ctx context.Context, in *ec2.DeregisterImageInput, _ ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error) {
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	d.amis = append(d.amis, aws.ToString(in.ImageId))
	return &ec2.DeregisterImageOutput{}, nil
}

// TestCancelStopsPendingCopy: a cancelled run deregisters its pending copy
// (on a live context, though the activity's is done); an available copy, a
// worker stopping or an attempt timing out leave it.
func TestCancelStopsPendingCopy(t *testing.T) {
	a := &Activities{Log: zerolog.Nop()}
	in := CopyInput{RunID: "p/main/1", Region: "eu-west-1"}
	for name, tc := range map[string]struct {
		cause error
		state ec2types.ImageState
		want  []string
	}{
		"run cancelled":     {temporal.NewCanceledError(), ec2types.ImageStatePending, []string{"ami-pending"}},
		"copy available":    {temporal.NewCanceledError(), ec2types.ImageStateAvailable, nil},
		"worker stopping":   {context.Canceled, ec2types.ImageStatePending, nil},
		"attempt timed out": {context.DeadlineExceeded, ec2types.ImageStatePending, nil},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			cancel(tc.cause)
			c := &deregisters{state: tc.state}
			a.stopCancelledCopy(ctx, c, in, "ami-pending")
			assert.Equal(t, tc.want, c.amis)
		})
	}
}
