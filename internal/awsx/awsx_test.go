package awsx_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/test/awsproxy"
	"github.com/kiln-ci/kiln/test/motoserver"
)

// sourceAMI exists in every region of a fresh moto.
const sourceAMI = "ami-1e749f67"

// TestAgainstMoto shares one moto_server between subtests: starting it and
// loading its AMI data costs seconds.
func TestAgainstMoto(t *testing.T) {
	moto := motoserver.Start(t)
	for _, kv := range moto.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Run("ConfigHonoursEndpointURL", testConfigDescribeImages)
	t.Run("AssumeRoleActsInTargetAccount", testAssumeRole)
	t.Run("MissingAMIIsPermanentNotFound", testClassifyMissingAMI)
	t.Run("ServerErrorRetriedBySDK", func(t *testing.T) {
		p := awsproxy.Start(t, moto.URL)
		t.Setenv("AWS_ENDPOINT_URL", p.URL)
		testServerErrorRetried(t, p)
	})
}

func loadConfig(t *testing.T, region string) aws.Config {
	t.Helper()
	cfg, err := awsx.Config(context.Background(), region)
	require.NoError(t, err)
	return cfg
}

func testConfigDescribeImages(t *testing.T) {
	out, err := ec2.NewFromConfig(loadConfig(t, "eu-west-1")).DescribeImages(context.Background(),
		&ec2.DescribeImagesInput{ImageIds: []string{sourceAMI}})
	require.NoError(t, err)
	require.Len(t, out.Images, 1)
	assert.Equal(t, sourceAMI, *out.Images[0].ImageId)
}

func testAssumeRole(t *testing.T) {
	cfg := awsx.AssumeRole(loadConfig(t, "us-east-1"), "arn:aws:iam::222222222222:role/kiln-distribute",
		awsx.SessionName("kiln/acme/app/run:42"))
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	require.NoError(t, err)
	assert.Equal(t, "222222222222", *id.Account)
	assert.Contains(t, *id.Arn, "kiln-acme-app-run-42")
}

func testClassifyMissingAMI(t *testing.T) {
	const missing = "ami-0123456789abcdef0"
	_, err := ec2.NewFromConfig(loadConfig(t, "eu-west-1")).CopyImage(context.Background(), &ec2.CopyImageInput{
		Name: aws.String("x"), SourceImageId: aws.String(missing), SourceRegion: aws.String("us-east-1"),
	})
	require.Error(t, err)

	got := awsx.Classify(err, "copy to eu-west-1") // the AMI ID must come from AWS's message
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(got, &appErr), "got %T: %v", got, got)
	assert.True(t, appErr.NonRetryable())
	assert.Equal(t, awsx.TypeNotFound, appErr.Type())
	assert.True(t, strings.HasPrefix(appErr.Message(), "copy to eu-west-1: not found (InvalidAMIID.NotFound): "), appErr.Message())
	assert.Contains(t, appErr.Message(), missing)
}

func testServerErrorRetried(t *testing.T, p *awsproxy.Proxy) {
	p.Fail(awsproxy.Rule{Action: "DescribeImages", Times: 1, Kind: awsproxy.ServerError})
	_, err := ec2.NewFromConfig(loadConfig(t, "us-east-1")).DescribeImages(context.Background(),
		&ec2.DescribeImagesInput{ImageIds: []string{sourceAMI}})
	require.NoError(t, err)
	assert.Equal(t, 2, p.Count("DescribeImages", nil))
	assert.Equal(t, 1, p.Count("DescribeImages", func(r awsproxy.Request) bool { return r.Status == 500 }))
}

// apiError is what the SDK returns: an API error inside an operation error.
func apiError(service, op, code string) error {
	return &smithy.OperationError{ServiceID: service, OperationName: op,
		Err: &smithy.GenericAPIError{Code: code, Message: "aws says no"}}
}

func TestClassifyPermanent(t *testing.T) {
	for code, want := range map[string]string{
		"UnauthorizedOperation":       awsx.TypeAccessDenied,
		"AccessDeniedException":       awsx.TypeAccessDenied,
		"InvalidSnapshot.NotFound":    awsx.TypeNotFound,
		"NotFoundException":           awsx.TypeNotFound,
		"KMS.DisabledException":       awsx.TypeKMSKeyUnusable,
		"KMSInvalidStateException":    awsx.TypeKMSKeyUnusable,
		"InvalidKMSKey.InvalidState":  awsx.TypeKMSKeyUnusable,
		"InvalidParameterCombination": awsx.TypeInvalidRequest,
		"ValidationError":             awsx.TypeInvalidRequest,
		// A distribute target's launch template and SSM parameter.
		"InvalidLaunchTemplateName.NotFoundException": awsx.TypeNotFound,
		"HierarchyTypeMismatchException":              awsx.TypeInvalidRequest,
	} {
		var appErr *temporal.ApplicationError
		require.True(t, errors.As(awsx.Classify(apiError("EC2", "CopyImage", code), "copy"), &appErr), code)
		assert.Equal(t, want, appErr.Type(), code)
		assert.True(t, appErr.NonRetryable(), code)
		assert.Contains(t, awsx.PermanentErrorTypes, appErr.Type())
	}
}

func TestClassifyMessageIsActionable(t *testing.T) {
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(awsx.Classify(apiError("EC2", "CopyImage", "UnauthorizedOperation"),
		"copy ami-123 to eu-west-1 in 222222222222"), &appErr))
	assert.Equal(t, "copy ami-123 to eu-west-1 in 222222222222: access denied (UnauthorizedOperation): "+
		"aws says no; check the role's ec2:CopyImage permission", appErr.Message())
}

func TestClassifyTransientStaysRetryable(t *testing.T) {
	for _, err := range []error{
		&smithy.GenericAPIError{Code: "RequestLimitExceeded"},
		apiError("KMS", "Encrypt", "ThrottlingException"),
		apiError("STS", "AssumeRole", "ExpiredToken"),
		fmt.Errorf("read: connection reset by peer"),
	} {
		got := awsx.Classify(err, "copy ami-123")
		var appErr *temporal.ApplicationError
		assert.False(t, errors.As(got, &appErr), "%v must stay retryable", err)
		assert.ErrorIs(t, got, err)
		assert.True(t, strings.HasPrefix(got.Error(), "copy ami-123: "), got.Error())
	}
	assert.NoError(t, awsx.Classify(nil, "anything"))
}

func TestSessionName(t *testing.T) {
	long := strings.Repeat("kiln/acme/app/", 10)
	for in, want := range map[string]string{
		"run-1":             "run-1",
		"kiln/acme/app:7":   "kiln-acme-app-7",
		"":                  "kiln-",
		"x":                 "kiln-x",
		"a+b=c,d.e@f_g-h":   "a+b=c,d.e@f_g-h",
		"réunion build #12": "r-union-build--12",
	} {
		assert.Equal(t, want, awsx.SessionName(in), in)
	}
	name := awsx.SessionName(long)
	assert.Len(t, name, 64)
	assert.NotEqual(t, name, awsx.SessionName(long+"x"), "long names must stay distinct")
	assert.Equal(t, name, awsx.SessionName(name), "idempotent")
}

// TestClassifyHintNamesInnermostCall: a role's first call fails because
// AssumeRole was refused; the hint names sts:AssumeRole, not the outer call.
func TestClassifyHintNamesInnermostCall(t *testing.T) {
	inner := apiError("STS", "AssumeRole", "AccessDenied")
	outer := &smithy.OperationError{ServiceID: "KMS", OperationName: "DescribeKey",
		Err: fmt.Errorf("get credentials: %w", inner)}
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(awsx.Classify(outer, "check key"), &appErr))
	assert.True(t, strings.HasSuffix(appErr.Message(), "check the role's sts:AssumeRole permission"), appErr.Message())
}
