package activities

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-ci/kiln/internal/awsx"
)

// ShareInput asks for an AMI of the worker's account to be shared with
// another account.
type ShareInput struct {
	RunID string `json:"run_id"`
	// Region and AMI name the image to share: the source AMI, or the
	// regional copy made for sharing in that region.
	Region  string `json:"region"`
	AMI     string `json:"ami"`
	Account string `json:"account"`
}

// ShareResult is a finished share: Account may launch AMI in Region.
type ShareResult struct {
	Account string `json:"account"`
	Region  string `json:"region"`
	AMI     string `json:"ami"`
}

// ShareAMI gives the account launch permission on the AMI and create-volume
// permission on its snapshots. Adding a permission that exists is a no-op, so
// a retry repeats it safely.
func (a *Activities) ShareAMI(ctx context.Context, in ShareInput) (*ShareResult, error) {
	src, err := a.describeSource(ctx, SourceAMI{Region: in.Region, AMI: in.AMI})
	if err != nil {
		return nil, err
	}
	if src.owner != in.Account {
		if err := a.grant(ctx, in.Region, src, in.Account); err != nil {
			return nil, err
		}
	}
	a.Log.Info().Str("run", in.RunID).Str("ami", in.AMI).Str("account", in.Account).Str("region", in.Region).Msg("AMI shared")
	return &ShareResult{Account: in.Account, Region: in.Region, AMI: in.AMI}, nil
}

// grant gives account launch permission on the image and create-volume
// permission on its snapshots, with the worker's credentials, once per worker
// for all of the account's targets. Snapshot permissions use OperationType
// and UserIds, a form every EC2 implementation accepts.
func (a *Activities) grant(ctx context.Context, region string, im *sourceImage, account string) error {
	_, err := a.grants.do(ctx, region+"/"+im.id+"/"+account, func(ctx context.Context) (any, error) {
		return nil, a.modifyPermissions(ctx, region, im, account)
	})
	return err
}

func (a *Activities) modifyPermissions(ctx context.Context, region string, im *sourceImage, account string) error {
	c, err := a.ec2(ctx, region)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("share %s in %s with account %s", im.id, region, account)
	_, err = c.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{
		ImageId: aws.String(im.id),
		LaunchPermission: &ec2types.LaunchPermissionModifications{
			Add: []ec2types.LaunchPermission{{UserId: aws.String(account)}},
		},
	})
	if err != nil {
		return awsx.Classify(err, what)
	}
	for _, snap := range im.snapshots {
		_, err := c.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{
			SnapshotId:    aws.String(snap),
			Attribute:     ec2types.SnapshotAttributeNameCreateVolumePermission,
			OperationType: ec2types.OperationTypeAdd,
			UserIds:       []string{account},
		})
		if err != nil {
			return awsx.Classify(err, fmt.Sprintf("%s: snapshot %s", what, snap))
		}
	}
	return nil
}
