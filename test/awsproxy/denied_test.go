package awsproxy_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/test/awsproxy"
)

// requireAPIError asserts err is an AWS API error with code.
func requireAPIError(t *testing.T, err error, code string) {
	t.Helper()
	require.Error(t, err)
	var apiErr smithy.APIError
	require.True(t, errors.As(err, &apiErr), "want smithy.APIError, got %T: %v", err, err)
	assert.Equal(t, code, apiErr.ErrorCode())
}

// EC2 access denied is UnauthorizedOperation, which the SDK does not retry.
func testDeniedEC2(t *testing.T, p *awsproxy.Proxy) {
	p.Fail(awsproxy.Rule{Action: "CopyImage", Times: -1, Kind: awsproxy.Denied})
	_, err := copyImage(t, ec2Client(t, p, "eu-west-1", 5))
	requireAPIError(t, err, "UnauthorizedOperation")

	reqs := p.Requests()
	require.Len(t, reqs, 1, "access denied must not be retried")
	assert.Equal(t, awsproxy.Denied, reqs[0].Fault)
	assert.Equal(t, 403, reqs[0].Status)
}

// Match narrows a rule to one role: the other AssumeRole still succeeds.
func testDeniedSTSMatch(t *testing.T, p *awsproxy.Proxy) {
	const denied, allowed = "arn:aws:iam::222222222222:role/kiln", "arn:aws:iam::333333333333:role/kiln"
	p.Fail(awsproxy.Rule{Action: "AssumeRole", Times: -1, Kind: awsproxy.Denied,
		Match: func(r awsproxy.Request) bool { return r.Params.Get("RoleArn") == denied }})
	c := sts.NewFromConfig(awsConfig(t, p, "us-east-1", 5))
	assume := func(arn string) error {
		_, err := c.AssumeRole(context.Background(), &sts.AssumeRoleInput{
			RoleArn: aws.String(arn), RoleSessionName: aws.String("kiln-test"),
		})
		return err
	}

	requireAPIError(t, assume(denied), "AccessDenied")
	require.NoError(t, assume(allowed))

	reqs := p.Requests()
	require.Len(t, reqs, 2, "access denied must not be retried")
	assert.Equal(t, awsproxy.Denied, reqs[0].Fault)
	assert.Equal(t, 403, reqs[0].Status)
	assert.Equal(t, awsproxy.None, reqs[1].Fault)
	assert.Equal(t, 200, reqs[1].Status)
}

// JSON APIs get a JSON AccessDeniedException.
func testDeniedKMS(t *testing.T, p *awsproxy.Proxy) {
	p.Fail(awsproxy.Rule{Service: "kms", Action: "CreateKey", Times: -1, Kind: awsproxy.Denied})
	_, err := kms.NewFromConfig(awsConfig(t, p, "us-east-1", 5)).CreateKey(context.Background(), &kms.CreateKeyInput{})
	requireAPIError(t, err, "AccessDeniedException")
	assert.Equal(t, 1, p.Count("CreateKey", nil), "access denied must not be retried")
}
