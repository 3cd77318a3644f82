package ami

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-ci/kiln/internal/awsx"
)

// Bake names the bakes of one pipeline and commit, and where they bake and
// are tested: what FindPassed looks for.
type Bake struct {
	Pipeline, Commit string
	// Region is the bake region; TestRegion is where the test ran, which may
	// be another of the bake's regions (Packer's ami_regions).
	Region, TestRegion string
}

// FindPassed returns the AMIs, by region, of the newest bake of b that
// passed its test; nil when there is none. The outcome tag is looked for in
// the test region, where it always is, then in the bake region. The bake's
// AMIs in the other regions (Packer's ami_regions, listed in kiln:regions)
// are found by their kiln:run tag. A bake missing one of them, or its bake
// region's, is not reused: gone is told which region and run that was.
// It also returns the run that baked them, when kiln tagged it.
func FindPassed(ctx context.Context, cl Clients, b Bake, gone func(region, run string)) (map[string]string, string, error) {
	var found ec2types.Image
	var foundIn string
	for _, region := range slices.Compact([]string{b.TestRegion, b.Region}) {
		img, err := newestIn(ctx, cl, region, b, ec2types.Filter{Name: aws.String("tag:" + TagTest), Values: []string{TestPassed}})
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
		if foundIn != b.Region {
			return nil, "", nil
		}
		return amis, "", nil
	}
	regions := append(bakeRegions(tags), b.Region)
	slices.Sort(regions)
	for _, region := range slices.Compact(regions) {
		if amis[region] != "" {
			continue
		}
		img, err := newestIn(ctx, cl, region, b, ec2types.Filter{Name: aws.String("tag:" + TagRun), Values: []string{run}})
		if err != nil {
			return nil, "", err
		}
		if img == nil {
			gone(region, run)
			return nil, "", nil
		}
		amis[region] = aws.ToString(img.ImageId)
	}
	return amis, run, nil
}

func newestIn(ctx context.Context, cl Clients, region string, b Bake, filter ec2types.Filter) (*ec2types.Image, error) {
	c, err := EC2(ctx, cl, region, Principal{})
	if err != nil {
		return nil, err
	}
	return Newest(ctx, c, region, b, filter)
}

// Newest returns the newest available AMI of this account, b's pipeline and
// commit in region that also matches filter, or nil. Copies are not counted.
func Newest(ctx context.Context, c EC2API, region string, b Bake, filter ec2types.Filter) (*ec2types.Image, error) {
	out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners: []string{"self"},
		Filters: []ec2types.Filter{
			{Name: aws.String("tag:" + TagPipeline), Values: []string{b.Pipeline}},
			{Name: aws.String("tag:" + TagCommit), Values: []string{b.Commit}},
			filter,
			{Name: aws.String("state"), Values: []string{"available"}},
		},
	})
	if err != nil {
		return nil, awsx.Classify(err, fmt.Sprintf("look for a tested AMI of %s at %s in %s", b.Pipeline, b.Commit, region))
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
