package testkit

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
)

// MotoAs is an AWS config straight at moto (not through a recording proxy,
// so a test's own set-up and checks stay out of its record): moto's
// default account, or acting through role ("" for none).
func MotoAs(motoURL, role, region string) aws.Config {
	base := aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(motoURL),
	}
	if role == "" {
		return base
	}
	return awsx.AssumeRole(base, role, "kiln-test")
}

// CreateKMSAlias makes a KMS key named alias where cfg acts: CopyAMI checks
// a target's key (kms:DescribeKey as the target's role) before it copies.
func CreateKMSAlias(t testing.TB, ctx context.Context, cfg aws.Config, alias string) {
	t.Helper()
	c := kms.NewFromConfig(cfg)
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("kiln AMI copies")})
	require.NoError(t, err, "create a KMS key in %s", cfg.Region)
	_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: key.KeyMetadata.KeyId})
	require.NoError(t, err, "alias the KMS key in %s", cfg.Region)
}

// ImagesTagged returns the IDs of the images cfg's account owns in its
// region whose tag key is value, in any state.
func ImagesTagged(t testing.TB, cfg aws.Config, key, value string) []string {
	t.Helper()
	out, err := ec2.NewFromConfig(cfg).DescribeImages(context.Background(), &ec2.DescribeImagesInput{
		Owners:  []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("tag:" + key), Values: []string{value}}},
	})
	require.NoError(t, err, "images tagged %s=%s in %s", key, value, cfg.Region)
	var ids []string
	for _, im := range out.Images {
		ids = append(ids, aws.ToString(im.ImageId))
	}
	return ids
}
