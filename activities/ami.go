package activities

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

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
	// TagRegions lists, comma-separated, the regions of all the AMIs of a
	// bake, so that reusing it finds them all. A list too long for one tag
	// value goes on in kiln:regions:2, kiln:regions:3 and so on.
	TagRegions = "kiln:regions"
)

// maxTagValue is the longest value EC2 accepts for a tag.
const maxTagValue = 256

// findPassedAMI returns the AMIs, by region, of the newest bake of this
// pipeline and commit that passed its test; nil when there is none. The
// outcome tag is looked for in the test region, where it always is, then in
// the bake region. The bake's AMIs in the other regions (Packer's
// ami_regions, listed in kiln:regions) are found by their kiln:run tag. A
// bake missing one of them, or its bake region's, is not reused.
// It also returns the run that baked them, when kiln tagged it.
func (a *Activities) findPassedAMI(ctx context.Context, in BakeInput) (map[string]string, string, error) {
	bakeRegion := in.Plan.Bake.Region
	var found ec2types.Image
	var foundIn string
	for _, region := range slices.Compact([]string{in.Plan.TestRegion(), bakeRegion}) {
		img, err := a.newestAMI(ctx, in, region, ec2types.Filter{Name: aws.String("tag:" + TagTest), Values: []string{TestPassed}})
		if err != nil {
			return nil, "", err
		}
		if img != nil {
			found, foundIn = *img, region
			break
		}
	}
	if foundIn == "" {
		return nil, "", nil
	}
	tags := tagValues(found.Tags)
	amis := map[string]string{foundIn: aws.ToString(found.ImageId)}
	run := tags[TagRun]
	if run == "" {
		// Tagged by hand, or by no bake of kiln's: it stands alone.
		if foundIn != bakeRegion {
			return nil, "", nil
		}
		return amis, "", nil
	}
	regions := append(bakeRegions(tags), bakeRegion)
	slices.Sort(regions)
	for _, region := range slices.Compact(regions) {
		if amis[region] != "" {
			continue
		}
		img, err := a.newestAMI(ctx, in, region, ec2types.Filter{Name: aws.String("tag:" + TagRun), Values: []string{run}})
		if err != nil {
			return nil, "", err
		}
		if img == nil {
			a.Log.Warn().Str("run", in.RunID).Str("tested_run", run).Str("region", region).
				Msg("the tested bake has no AMI left in this region: baking again")
			return nil, "", nil
		}
		amis[region] = aws.ToString(img.ImageId)
	}
	return amis, run, nil
}

// newestAMI returns the newest available AMI of this account, pipeline and
// commit in region that also matches filter, or nil. Copies are not counted.
func (a *Activities) newestAMI(ctx context.Context, in BakeInput, region string, filter ec2types.Filter) (*ec2types.Image, error) {
	c, err := a.ec2(ctx, region)
	if err != nil {
		return nil, err
	}
	out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners: []string{"self"},
		Filters: []ec2types.Filter{
			{Name: aws.String("tag:" + TagPipeline), Values: []string{in.Pipeline}},
			{Name: aws.String("tag:" + TagCommit), Values: []string{in.Plan.Commit}},
			filter,
			{Name: aws.String("state"), Values: []string{"available"}},
		},
	})
	if err != nil {
		return nil, awsx.Classify(err, fmt.Sprintf("look for a tested AMI of %s at %s in %s", in.Pipeline, in.Plan.Commit, region))
	}
	// Distributed copies carry the bake's tags too, kiln:source besides:
	// they are not the bake's AMIs, and may be encrypted with another key.
	baked := slices.DeleteFunc(out.Images, func(im ec2types.Image) bool {
		_, copied := tagValues(im.Tags)[TagSource]
		return copied
	})
	if len(baked) == 0 {
		return nil, nil
	}
	newest := slices.MaxFunc(baked, func(x, y ec2types.Image) int {
		return strings.Compare(aws.ToString(x.CreationDate), aws.ToString(y.CreationDate))
	})
	return &newest, nil
}

// regionTags are the kiln:regions tags naming the regions of amis.
func regionTags(amis map[string]string) []ec2types.Tag {
	var tags []ec2types.Tag
	value := ""
	flush := func() {
		key := TagRegions
		if n := len(tags); n > 0 {
			key = fmt.Sprintf("%s:%d", TagRegions, n+1)
		}
		tags = append(tags, ec2types.Tag{Key: aws.String(key), Value: aws.String(value)})
	}
	for _, region := range slices.Sorted(maps.Keys(amis)) {
		switch {
		case value == "":
			value = region
		case len(value)+1+len(region) > maxTagValue:
			flush()
			value = region
		default:
			value += "," + region
		}
	}
	if value != "" {
		flush()
	}
	return tags
}

// bakeRegions reads the regions regionTags wrote.
func bakeRegions(tags map[string]string) []string {
	var regions []string
	for n := 1; ; n++ {
		key := TagRegions
		if n > 1 {
			key = fmt.Sprintf("%s:%d", TagRegions, n)
		}
		v, ok := tags[key]
		if !ok {
			return regions
		}
		for _, r := range strings.Split(v, ",") {
			if r != "" {
				regions = append(regions, r)
			}
		}
	}
}

func tagValues(tags []ec2types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// tagAMIs tags every AMI and its snapshots with the run's identity and the
// regions of the bake's AMIs.
func (a *Activities) tagAMIs(ctx context.Context, in BakeInput, amis map[string]string) error {
	tags := append([]ec2types.Tag{
		{Key: aws.String(TagPipeline), Value: aws.String(in.Pipeline)},
		{Key: aws.String(TagCommit), Value: aws.String(in.Plan.Commit)},
		{Key: aws.String(TagRef), Value: aws.String(in.Event.Ref)},
		{Key: aws.String(TagRun), Value: aws.String(in.RunID)},
	}, regionTags(amis)...)
	return a.tagEvery(ctx, amis, tags)
}

// tagEvery tags the AMI of every region, and its snapshots.
func (a *Activities) tagEvery(ctx context.Context, amis map[string]string, tags []ec2types.Tag) error {
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
