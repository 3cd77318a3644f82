package activities

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-ci/kiln/internal/awsx"
)

// Tag keys kiln puts on the AMIs it bakes.
const (
	TagPipeline = "kiln:pipeline"
	TagCommit   = "kiln:commit"
	TagRef      = "kiln:ref"
	TagRun      = "kiln:run"
	TagTest     = "kiln:test"
	// TagSource names the AMI a distributed copy was made from; a retry finds
	// the copy by it instead of copying again.
	TagSource = "kiln:source"
	// TagCopyKey names the KMS key a copy was encrypted with ("none" for a
	// plain copy), so an encrypted copy is never mistaken for a plain one of
	// the same source in the same account and region.
	TagCopyKey = "kiln:copy-key"
)

// findPassedAMI looks in the bake region for an AMI of this pipeline and
// commit tagged kiln:test=passed, and returns it (newest first) as the only
// entry of the map; nil when there is none. Copies Packer made to other regions
// are not looked up: distribution works from the bake region's AMI.
func (a *Activities) findPassedAMI(ctx context.Context, in BakeInput) (map[string]string, error) {
	region := in.Plan.Bake.Region
	c, err := a.ec2(ctx, region)
	if err != nil {
		return nil, err
	}
	out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners: []string{"self"},
		Filters: []ec2types.Filter{
			{Name: aws.String("tag:" + TagPipeline), Values: []string{in.Pipeline}},
			{Name: aws.String("tag:" + TagCommit), Values: []string{in.Plan.Commit}},
			{Name: aws.String("tag:" + TagTest), Values: []string{"passed"}},
			{Name: aws.String("state"), Values: []string{"available"}},
		},
	})
	if err != nil {
		return nil, awsx.Classify(err, fmt.Sprintf("look for a tested AMI of %s at %s in %s", in.Pipeline, in.Plan.Commit, region))
	}
	if len(out.Images) == 0 {
		return nil, nil
	}
	sort.Slice(out.Images, func(i, j int) bool {
		return aws.ToString(out.Images[i].CreationDate) > aws.ToString(out.Images[j].CreationDate)
	})
	return map[string]string{region: aws.ToString(out.Images[0].ImageId)}, nil
}

// tagAMIs tags every AMI and its snapshots with the run's identity.
func (a *Activities) tagAMIs(ctx context.Context, in BakeInput, amis map[string]string) error {
	tags := []ec2types.Tag{
		{Key: aws.String(TagPipeline), Value: aws.String(in.Pipeline)},
		{Key: aws.String(TagCommit), Value: aws.String(in.Plan.Commit)},
		{Key: aws.String(TagRef), Value: aws.String(in.Event.Ref)},
		{Key: aws.String(TagRun), Value: aws.String(in.RunID)},
	}
	for _, region := range slices.Sorted(maps.Keys(amis)) {
		c, err := a.ec2(ctx, region)
		if err != nil {
			return err
		}
		if err := tagImage(ctx, c, region, amis[region], tags); err != nil {
			return err
		}
	}
	return nil
}

// tagImage tags an AMI and its EBS snapshots. CreateTags is idempotent, so a
// retry repeats it safely.
func tagImage(ctx context.Context, c EC2API, region, ami string, tags []ec2types.Tag) error {
	img, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}})
	if err != nil {
		return awsx.Classify(err, fmt.Sprintf("describe %s in %s", ami, region))
	}
	if len(img.Images) == 0 {
		return tagImageAndSnapshots(ctx, c, region, ec2types.Image{ImageId: aws.String(ami)}, tags)
	}
	return tagImageAndSnapshots(ctx, c, region, img.Images[0], tags)
}

// tagImageAndSnapshots tags an image already described, and the EBS
// snapshots its block device mappings name.
func tagImageAndSnapshots(ctx context.Context, c EC2API, region string, img ec2types.Image, tags []ec2types.Tag) error {
	ami := aws.ToString(img.ImageId)
	ids := append([]string{ami}, snapshotIDs(img)...)
	if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: tags}); err != nil {
		return awsx.Classify(err, fmt.Sprintf("tag %s in %s", ami, region))
	}
	return nil
}
