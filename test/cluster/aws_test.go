package cluster

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/test/awsproxy"
)

// motoAs is an AWS config straight at moto, in the builder's account
// (account "") or acting in account through its kiln-distribute role, so
// the test's own set-up and checks stay out of the proxy's record.
func motoAs(motoURL, account, region string) aws.Config {
	base := aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(motoURL),
	}
	if account == "" {
		return base
	}
	return awsx.AssumeRole(base, "arn:aws:iam::"+account+":role/kiln-distribute", "kiln-cluster-test")
}

// createKMSAlias makes a key named alias in account and region: CopyAMI
// checks the target's key before it copies.
func createKMSAlias(t testing.TB, ctx context.Context, motoURL, account, region, alias string) {
	t.Helper()
	c := kms.NewFromConfig(motoAs(motoURL, account, region))
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("kiln AMI copies")})
	require.NoError(t, err, "create a KMS key in %s/%s", account, region)
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: key.KeyMetadata.KeyId})
	require.NoError(t, err, "alias the KMS key in %s/%s", account, region)
}

// imagesTagged returns the IDs of the images account ("": the builder's)
// owns in region whose tag key is value, in any state.
func (c *cluster) imagesTagged(t *testing.T, account, region, key, value string) []string {
	t.Helper()
	out, err := ec2.NewFromConfig(motoAs(c.moto.URL, account, region)).DescribeImages(context.Background(),
		&ec2.DescribeImagesInput{
			Owners:  []string{"self"},
			Filters: []ec2types.Filter{{Name: aws.String("tag:" + key), Values: []string{value}}},
		})
	require.NoError(t, err, "images of %q in %s", account, region)
	var ids []string
	for _, im := range out.Images {
		ids = append(ids, aws.ToString(im.ImageId))
	}
	return ids
}

// calls counts the requests the proxy recorded of action, made in account
// and region, that match (nil: all).
func (c *cluster) calls(action, account, region string, match func(awsproxy.Request) bool) int {
	return c.proxy.Count(action, func(r awsproxy.Request) bool {
		return r.Account == account && r.Region == region && (match == nil || match(r))
	})
}
