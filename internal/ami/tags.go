package ami

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
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
	// TagParent, TagParentRegion and TagParentRun name the tested AMI an AMI
	// trigger gave the bake as its base, where it is, and the run that
	// tested it: the AMI's lineage.
	TagParent       = "kiln:parent-ami"
	TagParentRegion = "kiln:parent-region"
	TagParentRun    = "kiln:parent-run"
)

// Test outcomes, the values of the kiln:test tag.
const (
	TestPassed = "passed"
	TestFailed = "failed"
)

// maxTagValue is the longest value EC2 accepts for a tag.
const maxTagValue = 256

// RegionTags are the kiln:regions tags naming the regions of amis.
func RegionTags(amis map[string]string) []ec2types.Tag {
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

// bakeRegions reads the regions RegionTags wrote.
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

func snapshotIDs(im ec2types.Image) []string {
	var ids []string
	for _, bdm := range im.BlockDeviceMappings {
		if bdm.Ebs != nil && bdm.Ebs.SnapshotId != nil {
			ids = append(ids, *bdm.Ebs.SnapshotId)
		}
	}
	return ids
}
