package ami

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-ci/kiln/internal/awsx"
)

// Image is an AMI kiln made, in one account and region, as List finds it.
type Image struct {
	ID      string `json:"id"`
	Account string `json:"account"`
	Region  string `json:"region"`
	Name    string `json:"name,omitempty"`
	// State is EC2's: available, pending, failed, disabled, ….
	State   string    `json:"state"`
	Created time.Time `json:"created"`
	// Deprecated is when EC2 deprecates (or deprecated) the image; zero
	// when it is not set to.
	Deprecated time.Time `json:"deprecated,omitzero"`
	// The kiln:* tags: the bake's pipeline, commit, ref and run, its test
	// outcome, the source of a copy, and the base an AMI trigger gave it.
	Pipeline string `json:"pipeline"`
	Commit   string `json:"commit,omitempty"`
	Ref      string `json:"ref,omitempty"`
	Run      string `json:"run,omitempty"`
	Test     string `json:"test,omitempty"`
	Source   string `json:"source,omitempty"`
	Parent   string `json:"parent,omitempty"`
	// ParentRegion is where Parent is.
	ParentRegion string `json:"parent_region,omitempty"`
	// Snapshots are the EBS snapshots behind it, deleted with it.
	Snapshots []string `json:"snapshots,omitempty"`
}

// List returns every AMI of pipeline the client's account owns in region,
// deprecated and disabled ones too, oldest first.
func List(ctx context.Context, c EC2API, account, region, pipeline string) ([]Image, error) {
	in := &ec2.DescribeImagesInput{
		Owners:            []string{"self"},
		Filters:           []ec2types.Filter{{Name: aws.String("tag:" + TagPipeline), Values: []string{pipeline}}},
		IncludeDeprecated: aws.Bool(true),
		IncludeDisabled:   aws.Bool(true),
	}
	var out []Image
	for {
		page, err := c.DescribeImages(ctx, in)
		if err != nil {
			return nil, awsx.Classify(err, fmt.Sprintf("list the AMIs of %s in %s", pipeline, region))
		}
		for _, img := range page.Images {
			out = append(out, imageOf(img, account, region))
		}
		if aws.ToString(page.NextToken) == "" {
			break
		}
		in.NextToken = page.NextToken
	}
	slices.SortFunc(out, func(a, b Image) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

func imageOf(img ec2types.Image, account, region string) Image {
	tags := tagValues(img.Tags)
	im := Image{
		ID: aws.ToString(img.ImageId), Account: account, Region: region, Name: aws.ToString(img.Name),
		State: string(img.State), Created: parseTime(aws.ToString(img.CreationDate)),
		Deprecated: parseTime(aws.ToString(img.DeprecationTime)),
		Pipeline:   tags[TagPipeline], Commit: tags[TagCommit], Ref: tags[TagRef], Run: tags[TagRun],
		Test: tags[TagTest], Source: tags[TagSource], Parent: tags[TagParent], ParentRegion: tags[TagParentRegion],
		Snapshots: snapshotIDs(img),
	}
	if im.Account == "" {
		im.Account = aws.ToString(img.OwnerId)
	}
	return im
}

// parseTime reads EC2's timestamps; zero when absent or unreadable.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// Describe returns one AMI of the client's region, with its kiln tags; ok
// is false when there is none of that ID.
func Describe(ctx context.Context, c EC2API, region, id string) (Image, bool, error) {
	out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}, IncludeDeprecated: aws.Bool(true),
		IncludeDisabled: aws.Bool(true)})
	if gone(err) {
		return Image{}, false, nil
	}
	if err != nil {
		return Image{}, false, awsx.Classify(err, fmt.Sprintf("describe %s in %s", id, region))
	}
	if len(out.Images) == 0 {
		return Image{}, false, nil
	}
	return imageOf(out.Images[0], "", region), true, nil
}

// Children returns the AMIs of the client's account and region that an AMI
// trigger built on parent, oldest first.
func Children(ctx context.Context, c EC2API, region, parent string) ([]Image, error) {
	out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}, IncludeDeprecated: aws.Bool(true),
		IncludeDisabled: aws.Bool(true), Filters: []ec2types.Filter{{Name: aws.String("tag:" + TagParent), Values: []string{parent}}}})
	if err != nil {
		return nil, awsx.Classify(err, fmt.Sprintf("find the AMIs built on %s in %s", parent, region))
	}
	var children []Image
	for _, img := range out.Images {
		children = append(children, imageOf(img, "", region))
	}
	slices.SortFunc(children, func(a, b Image) int { return a.Created.Compare(b.Created) })
	return children, nil
}
