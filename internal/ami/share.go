package ami

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-ci/kiln/internal/awsx"
)

// Source is what a distribution needs to know of the AMI it distributes.
type Source struct {
	ID        string
	Owner     string
	Name      string
	Snapshots []string
	Tags      []ec2types.Tag
}

// ReadSource reads the AMI to distribute. A missing AMI (ErrSourceMissing),
// or one that is not available (ErrSourceUnavailable), is permanent: nothing
// can be distributed.
func ReadSource(ctx context.Context, c EC2API, region, ami string) (*Source, error) {
	out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}})
	if err != nil {
		return nil, awsx.Classify(err, fmt.Sprintf("read the source AMI %s in %s", ami, region))
	}
	if len(out.Images) == 0 {
		return nil, fail(ErrSourceMissing, "the source AMI %s is not in %s", ami, region)
	}
	im := out.Images[0]
	if im.State != ec2types.ImageStateAvailable {
		return nil, fail(ErrSourceUnavailable, "the source AMI %s in %s is %s, not available", ami, region, im.State)
	}
	return &Source{ID: ami, Owner: aws.ToString(im.OwnerId), Name: aws.ToString(im.Name),
		Snapshots: snapshotIDs(im), Tags: im.Tags}, nil
}

// Share gives account launch permission on the image and create-volume
// permission on its snapshots. Adding a permission that exists is a no-op,
// so a retry repeats it safely. Snapshot permissions use OperationType and
// UserIds, a form every EC2 implementation accepts.
func Share(ctx context.Context, c EC2API, region string, src *Source, account string) error {
	what := fmt.Sprintf("share %s in %s with account %s", src.ID, region, account)
	_, err := c.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{
		ImageId: aws.String(src.ID),
		LaunchPermission: &ec2types.LaunchPermissionModifications{
			Add: []ec2types.LaunchPermission{{UserId: aws.String(account)}},
		},
	})
	if err != nil {
		return awsx.Classify(err, what)
	}
	for _, snap := range src.Snapshots {
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
