package crash

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/awsx"
)

// asAccount is an AWS config straight at moto, acting in account through
// its kiln-distribute role, so the test's own set-up and checks stay out of
// the proxy's record (and of its rewrites, such as pending copies).
func asAccount(motoURL, account, region string) aws.Config {
	base := aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(motoURL),
	}
	return awsx.AssumeRole(base, roleOf(account), "kiln-crash-test")
}

// createKMSAlias makes a key and names it alias in account and region:
// CopyAMI checks the target's key (kms:DescribeKey as the target role)
// before it copies.
func createKMSAlias(t *testing.T, ctx context.Context, motoURL, account, region, alias string) {
	t.Helper()
	c := kms.NewFromConfig(asAccount(motoURL, account, region))
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("kiln AMI copies")})
	require.NoError(t, err, "create a KMS key in %s/%s", account, region)
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: key.KeyMetadata.KeyId})
	require.NoError(t, err, "alias the KMS key in %s/%s", account, region)
}

// copiesOf returns the IDs of the images account owns in region that are
// tagged as copies of source, in any state.
func copiesOf(t *testing.T, motoURL, account, region, source string) []string {
	t.Helper()
	out, err := ec2.NewFromConfig(asAccount(motoURL, account, region)).DescribeImages(context.Background(),
		&ec2.DescribeImagesInput{
			Owners:  []string{"self"},
			Filters: []ec2types.Filter{{Name: aws.String("tag:" + activities.TagSource), Values: []string{source}}},
		})
	require.NoError(t, err, "images of %s/%s", account, region)
	var ids []string
	for _, im := range out.Images {
		ids = append(ids, aws.ToString(im.ImageId))
	}
	return ids
}
