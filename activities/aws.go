package activities

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"

	"github.com/kiln-ci/kiln/internal/awsx"
)

// EC2API is the part of EC2 the AMI stages use; *ec2.Client satisfies it. It
// includes DescribeInstances, so it is also an ec2.DescribeInstancesAPIClient
// for the SDK's instance waiters. Tests embed it and override what they call.
type EC2API interface {
	DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, opts ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	CreateTags(ctx context.Context, in *ec2.CreateTagsInput, opts ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	RunInstances(ctx context.Context, in *ec2.RunInstancesInput, opts ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, opts ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
	CopyImage(ctx context.Context, in *ec2.CopyImageInput, opts ...func(*ec2.Options)) (*ec2.CopyImageOutput, error)
	ModifyImageAttribute(ctx context.Context, in *ec2.ModifyImageAttributeInput, opts ...func(*ec2.Options)) (*ec2.ModifyImageAttributeOutput, error)
	ModifySnapshotAttribute(ctx context.Context, in *ec2.ModifySnapshotAttributeInput, opts ...func(*ec2.Options)) (*ec2.ModifySnapshotAttributeOutput, error)
	DeregisterImage(ctx context.Context, in *ec2.DeregisterImageInput, opts ...func(*ec2.Options)) (*ec2.DeregisterImageOutput, error)
}

// KMSAPI is the part of KMS the distribute stage uses: checking a target's
// key before copying with it.
type KMSAPI interface {
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, opts ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
}

// Principal is who an AWS call acts as: the worker's own credentials, or a
// role kiln assumes with them.
type Principal struct {
	// Role is the IAM role ARN to assume; empty means the worker's credentials.
	Role string
	// Session names the assumed role's session, shown in CloudTrail; kiln
	// uses the run ID.
	Session string
}

// AWSClients makes AWS clients for a region, acting as a principal.
type AWSClients interface {
	EC2(ctx context.Context, region string, as Principal) (EC2API, error)
	KMS(ctx context.Context, region string, as Principal) (KMSAPI, error)
}

// DefaultAWS makes clients from the default AWS configuration chain
// (environment, shared config, instance role), assuming roles with it;
// AWS_ENDPOINT_URL is honoured. It keeps one credentials cache per principal,
// so the many targets of a run that share a role assume it once. Use one
// DefaultAWS per worker; the zero value is ready.
type DefaultAWS struct {
	mu    sync.Mutex
	roles map[Principal]aws.CredentialsProvider
}

// defaultAWS serves Activities that name no AWSClients.
var defaultAWS = &DefaultAWS{}

// EC2 returns an EC2 client for region acting as as.
func (d *DefaultAWS) EC2(ctx context.Context, region string, as Principal) (EC2API, error) {
	cfg, err := d.config(ctx, region, as)
	if err != nil {
		return nil, err
	}
	return ec2.NewFromConfig(cfg), nil
}

// KMS returns a KMS client for region acting as as.
func (d *DefaultAWS) KMS(ctx context.Context, region string, as Principal) (KMSAPI, error) {
	cfg, err := d.config(ctx, region, as)
	if err != nil {
		return nil, err
	}
	return kms.NewFromConfig(cfg), nil
}

// config is the worker's config for region, with the principal's cached
// credentials when it names a role. Role credentials do not depend on the
// region that assumed them.
func (d *DefaultAWS) config(ctx context.Context, region string, as Principal) (aws.Config, error) {
	cfg, err := awsx.Config(ctx, region)
	if err != nil || as.Role == "" {
		return cfg, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	creds, ok := d.roles[as]
	if !ok {
		if d.roles == nil || len(d.roles) >= memoLimit {
			d.roles = map[Principal]aws.CredentialsProvider{}
		}
		creds = awsx.AssumeRole(cfg, as.Role, as.Session).Credentials
		d.roles[as] = creds
	}
	cfg.Credentials = creds
	return cfg, nil
}

func (a *Activities) clients() AWSClients {
	if a.AWS == nil {
		return defaultAWS
	}
	return a.AWS
}

// ec2 returns an EC2 client for region with the worker's own credentials.
func (a *Activities) ec2(ctx context.Context, region string) (EC2API, error) {
	return a.ec2As(ctx, region, Principal{})
}

func (a *Activities) ec2As(ctx context.Context, region string, as Principal) (EC2API, error) {
	c, err := a.clients().EC2(ctx, region, as)
	if err != nil {
		return nil, fmt.Errorf("EC2 client for %s: %w", region, err)
	}
	return c, nil
}

// hasErrorCode reports whether err is an AWS API error with the code.
func hasErrorCode(err error, code string) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == code
}
