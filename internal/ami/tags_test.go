package ami

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRegionTagsSplitLongLists: more regions than one tag value holds go
// on in further tags, and read back whole.
func TestRegionTagsSplitLongLists(t *testing.T) {
	amis := map[string]string{}
	for i := range 40 {
		amis[fmt.Sprintf("xx-region-%02d", i)] = "ami"
	}
	tags := RegionTags(amis)
	require.Greater(t, len(tags), 1)
	for _, tag := range tags {
		assert.LessOrEqual(t, len(aws.ToString(tag.Value)), maxTagValue)
	}
	assert.Equal(t, TagRegions+":2", aws.ToString(tags[1].Key))
	assert.Len(t, bakeRegions(tagValues(tags)), 40)
}
