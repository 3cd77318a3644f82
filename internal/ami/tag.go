package ami

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-ci/kiln/internal/awsx"
)

// TagAll tags the AMI of every region of amis, and its snapshots, with the
// worker's credentials.
func TagAll(ctx context.Context, cl Clients, amis map[string]string, tags []ec2types.Tag) error {
	for _, region := range slices.Sorted(maps.Keys(amis)) {
		c, err := EC2(ctx, cl, region, Principal{})
		if err != nil {
			return err
		}
		if err := Tag(ctx, c, region, amis[region], tags); err != nil {
			return err
		}
	}
	return nil
}

// Tag tags an AMI and its EBS snapshots. CreateTags is idempotent, so a
// retry repeats it safely.
func Tag(ctx context.Context, c EC2API, region, ami string, tags []ec2types.Tag) error {
	img, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}})
	if err != nil {
		return awsx.Classify(err, fmt.Sprintf("describe %s in %s", ami, region))
	}
	if len(img.Images) == 0 {
		return TagImage(ctx, c, region, ec2types.Image{ImageId: aws.String(ami)}, tags)
	}
	return TagImage(ctx, c, region, img.Images[0], tags)
}

// TagImage tags an image already described, and the EBS snapshots its block
// device mappings name.
func TagImage(ctx context.Context, c EC2API, region string, img ec2types.Image, tags []ec2types.Tag) error {
	ami := aws.ToString(img.ImageId)
	ids := append([]string{ami}, snapshotIDs(img)...)
	if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: tags}); err != nil {
		return awsx.Classify(err, fmt.Sprintf("tag %s in %s", ami, region))
	}
	return nil
}
