package ami

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// newEC2Client is an EC2 client for the configured region, with the default
// credential chain (environment, shared config, instance role), assuming
// account_role_arn when it is set. AWS_ENDPOINT_URL and the endpoint option
// point it, and STS, elsewhere; the option wins.
func newEC2Client(ctx context.Context, c Config) (*ec2.Client, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(c.Region))
	if err != nil {
		return nil, fmt.Errorf("kiln-ami: load AWS config: %w", err)
	}
	if c.Endpoint != "" {
		cfg.BaseEndpoint = aws.String(c.Endpoint)
	}
	if c.AccountRoleARN != "" {
		provider := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), c.AccountRoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "packer-kiln-ami"
		})
		cfg.Credentials = aws.NewCredentialsCache(provider)
	}
	return ec2.NewFromConfig(cfg), nil
}
