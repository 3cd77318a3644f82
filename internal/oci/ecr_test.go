package oci_test

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/oci"
)

// fakeECR embeds the interface and answers GetAuthorizationToken only.
type fakeECR struct {
	oci.ECRAPI
	token string
	err   error
}

func (f fakeECR) GetAuthorizationToken(context.Context, *ecr.GetAuthorizationTokenInput, ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &ecr.GetAuthorizationTokenOutput{AuthorizationData: []types.AuthorizationData{{
		AuthorizationToken: aws.String(f.token),
		ProxyEndpoint:      aws.String("https://123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
	}}}, nil
}

func TestECRAuth(t *testing.T) {
	ctx := context.Background()
	token := base64.StdEncoding.EncodeToString([]byte("AWS:eyJwYXlsb2FkIjoi:with:colons"))
	a, err := oci.ECRAuth(ctx, fakeECR{token: token})
	require.NoError(t, err)
	assert.Equal(t, oci.Auth{Username: "AWS", Password: "eyJwYXlsb2FkIjoi:with:colons"}, a)

	_, err = oci.ECRAuth(ctx, fakeECR{token: "!!not base64"})
	assert.ErrorContains(t, err, "not base64")
	assert.NotContains(t, err.Error(), "!!not")

	_, err = oci.ECRAuth(ctx, fakeECR{token: base64.StdEncoding.EncodeToString([]byte("no-colon"))})
	assert.ErrorContains(t, err, "not user:password")

	denied := &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform ecr:GetAuthorizationToken"}
	_, err = oci.ECRAuth(ctx, fakeECR{err: denied})
	assert.ErrorIs(t, err, oci.ErrUnauthorized)

	throttled := &smithy.GenericAPIError{Code: "ThrottlingException", Message: "slow down"}
	_, err = oci.ECRAuth(ctx, fakeECR{err: throttled})
	assert.NotErrorIs(t, err, oci.ErrUnauthorized, "throttling stays retryable")
	assert.ErrorAs(t, err, new(smithy.APIError))
}

func TestECRRegion(t *testing.T) {
	cases := map[string]string{
		"123456789012.dkr.ecr.eu-west-1.amazonaws.com/acme/app":         "eu-west-1",
		"123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/app":     "us-gov-west-1",
		"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/app":          "cn-north-1",
		"registry.example.com/acme/app":                                 "",
		"public.ecr.aws/acme/app":                                       "",
		"123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.example/app": "",
	}
	for repo, want := range cases {
		got, ok := oci.ECRRegion(repo)
		assert.Equal(t, want, got, repo)
		assert.Equal(t, want != "", ok, repo)
	}
}
