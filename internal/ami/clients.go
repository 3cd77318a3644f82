// Package ami is the EC2 work of the AMI stages: the clients they act
// through, and the steps they take on images and test instances. Finding a
// bake's tested AMIs, tagging them, copying, sharing, waiting for and
// deregistering copies, and launching and terminating test instances are
// each a function that takes a client and plain inputs. AWS errors leave
// them classified by awsx.Classify; the few permanent failures of kiln's own
// are errors that match one of the Err* values.
//
// The package knows nothing of Temporal or of checkpoints: the activities
// load their checkpoints, call these steps and heartbeat between them.
package ami

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

	"github.com/kiln-ci/kiln/internal/awsx"
)

// EC2API is the part of EC2 the AMI stages use; *ec2.Client satisfies it. It
// is the whole list of EC2 calls kiln makes itself (Packer aside), which the
// iam-policy tests hold the generated policies to. It includes
// DescribeInstances, so it is also an ec2.DescribeInstancesAPIClient for the
// SDK's instance waiters. Tests embed it and override what they call.
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
	// Retention's: EC2's own lifecycle of an image, and what uses one.
	EnableImageDeprecation(ctx context.Context, in *ec2.EnableImageDeprecationInput, opts ...func(*ec2.Options)) (*ec2.EnableImageDeprecationOutput, error)
	DisableImage(ctx context.Context, in *ec2.DisableImageInput, opts ...func(*ec2.Options)) (*ec2.DisableImageOutput, error)
	DeleteSnapshot(ctx context.Context, in *ec2.DeleteSnapshotInput, opts ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error)
	DescribeLaunchTemplates(ctx context.Context, in *ec2.DescribeLaunchTemplatesInput, opts ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplatesOutput, error)
	DescribeLaunchTemplateVersions(ctx context.Context, in *ec2.DescribeLaunchTemplateVersionsInput, opts ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplateVersionsOutput, error)
	// Distribution's: a target's launch template gets a version with its
	// AMI (reading it with DescribeLaunchTemplateVersions, above).
	CreateLaunchTemplateVersion(ctx context.Context, in *ec2.CreateLaunchTemplateVersionInput, opts ...func(*ec2.Options)) (*ec2.CreateLaunchTemplateVersionOutput, error)
	ModifyLaunchTemplate(ctx context.Context, in *ec2.ModifyLaunchTemplateInput, opts ...func(*ec2.Options)) (*ec2.ModifyLaunchTemplateOutput, error)
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

// Clients makes AWS clients for a region, acting as a principal.
type Clients interface {
	EC2(ctx context.Context, region string, as Principal) (EC2API, error)
	KMS(ctx context.Context, region string, as Principal) (KMSAPI, error)
	SSM(ctx context.Context, region string, as Principal) (SSMAPI, error)
}

// EC2 returns cl's EC2 client for region acting as as; a failure names the
// region.
func EC2(ctx context.Context, cl Clients, region string, as Principal) (EC2API, error) {
	c, err := cl.EC2(ctx, region, as)
	if err != nil {
		return nil, fmt.Errorf("EC2 client for %s: %w", region, err)
	}
	return c, nil
}

// KMS returns cl's KMS client for region acting as as; a failure names the
// region.
func KMS(ctx context.Context, cl Clients, region string, as Principal) (KMSAPI, error) {
	c, err := cl.KMS(ctx, region, as)
	if err != nil {
		return nil, fmt.Errorf("KMS client for %s: %w", region, err)
	}
	return c, nil
}

// SSM returns cl's SSM client for region acting as as; a failure names the
// region.
func SSM(ctx context.Context, cl Clients, region string, as Principal) (SSMAPI, error) {
	c, err := cl.SSM(ctx, region, as)
	if err != nil {
		return nil, fmt.Errorf("SSM client for %s: %w", region, err)
	}
	return c, nil
}

// DefaultClients makes clients from the default AWS configuration chain
// (environment, shared config, instance role), assuming roles with it;
// AWS_ENDPOINT_URL is honoured. It keeps one credentials cache per principal,
// so the many targets of a run that share a role assume it once. Use one
// DefaultClients per worker; the zero value is ready.
type DefaultClients struct {
	mu    sync.Mutex
	roles map[Principal]aws.CredentialsProvider
}

// EC2 returns an EC2 client for region acting as as.
func (d *DefaultClients) EC2(ctx context.Context, region string, as Principal) (EC2API, error) {
	cfg, err := d.config(ctx, region, as)
	if err != nil {
		return nil, err
	}
	return ec2.NewFromConfig(cfg), nil
}

// KMS returns a KMS client for region acting as as.
func (d *DefaultClients) KMS(ctx context.Context, region string, as Principal) (KMSAPI, error) {
	cfg, err := d.config(ctx, region, as)
	if err != nil {
		return nil, err
	}
	return kms.NewFromConfig(cfg), nil
}

// SSM returns an SSM client for region acting as as.
func (d *DefaultClients) SSM(ctx context.Context, region string, as Principal) (SSMAPI, error) {
	cfg, err := d.config(ctx, region, as)
	if err != nil {
		return nil, err
	}
	return ssm.NewFromConfig(cfg), nil
}

// config is the worker's config for region, with the principal's cached
// credentials when it names a role. Role credentials do not depend on the
// region that assumed them.
func (d *DefaultClients) config(ctx context.Context, region string, as Principal) (aws.Config, error) {
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

// hasErrorCode reports whether err is an AWS API error with the code.
func hasErrorCode(err error, code string) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == code
}
