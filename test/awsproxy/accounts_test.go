package awsproxy_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/test/awsproxy"
)

// targetAccount is the account kiln distributes to, through a role.
const targetAccount = "222222222222"

// assumedConfig is a config for region acting, through AssumeRole via the
// proxy, in targetAccount.
func assumedConfig(t *testing.T, p *awsproxy.Proxy, region string) aws.Config {
	t.Helper()
	base := awsConfig(t, p, "us-east-1", 1)
	cfg := awsConfig(t, p, region, 1)
	cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(base),
		"arn:aws:iam::"+targetAccount+":role/kiln-distribute"))
	return cfg
}

// Keys from AssumeRole are the role's account; other keys moto's default.
func testAccountsFromAssumeRole(t *testing.T, p *awsproxy.Proxy) {
	id, err := sts.NewFromConfig(assumedConfig(t, p, "us-east-1")).
		GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	require.NoError(t, err)
	require.Equal(t, targetAccount, *id.Account, "moto must agree on the account")

	reqs := p.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "AssumeRole", reqs[0].Action)
	assert.Equal(t, awsproxy.DefaultAccount, reqs[0].Account)
	assert.Equal(t, targetAccount, reqs[1].Account)
	assert.Equal(t, targetAccount, p.AccountOf(reqs[1].AccessKeyID))
	assert.Equal(t, awsproxy.DefaultAccount, p.AccountOf("AKIDTEST"))
}

// An AMI shared with the target account can be copied there once granted,
// and not before, as on AWS.
func testShareAcrossAccounts(t *testing.T, p *awsproxy.Proxy) {
	p.ShareAcrossAccounts()
	ctx := context.Background()
	owner := ec2Client(t, p, "us-east-1", 1)
	reg, err := owner.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String("kiln-base")})
	require.NoError(t, err)
	src := *reg.ImageId

	target := ec2.NewFromConfig(assumedConfig(t, p, "eu-west-1"))
	copyShared := func() (*ec2.CopyImageOutput, error) {
		return target.CopyImage(ctx, &ec2.CopyImageInput{
			Name: aws.String("kiln-copy"), SourceImageId: aws.String(src), SourceRegion: aws.String("us-east-1"),
		})
	}
	_, err = copyShared()
	requireAPIError(t, err, "InvalidAMIID.NotFound")

	_, err = owner.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{
		ImageId: aws.String(src),
		LaunchPermission: &types.LaunchPermissionModifications{
			Add: []types.LaunchPermission{{UserId: aws.String(targetAccount)}},
		},
	})
	require.NoError(t, err)
	out, err := copyShared()
	require.NoError(t, err)
	again, err := copyShared()
	require.NoError(t, err, "a second copy reuses the mirror")

	assert.Contains(t, ownImages(t, target), *out.ImageId, "the copy is in the target account")
	assert.Contains(t, ownImages(t, target), *again.ImageId)
	assert.NotContains(t, ownImages(t, ec2Client(t, p, "eu-west-1", 1)), *out.ImageId)
	assert.Empty(t, ownImages(t, ec2.NewFromConfig(assumedConfig(t, p, "us-east-1"))),
		"the mirror is hidden from the target account")

	copies := p.Count("CopyImage", func(r awsproxy.Request) bool {
		return r.Params.Get("SourceImageId") == src && r.Account == targetAccount
	})
	assert.Equal(t, 3, copies, "recorded copies keep the SourceImageId the client sent")
}

// ownImages lists the IDs of the images the client's account owns.
func ownImages(t *testing.T, c *ec2.Client) []string {
	t.Helper()
	out, err := c.DescribeImages(context.Background(), &ec2.DescribeImagesInput{Owners: []string{"self"}})
	require.NoError(t, err)
	var ids []string
	for _, img := range out.Images {
		ids = append(ids, *img.ImageId)
	}
	return ids
}
