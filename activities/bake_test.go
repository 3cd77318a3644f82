package activities

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/packer"
)

// TestAMIsByRegionRefusesTwoInOneRegion: a template with two sources in one
// region is refused, naming both AMIs and the region, instead of one AMI
// being dropped.
func TestAMIsByRegionRefusesTwoInOneRegion(t *testing.T) {
	_, err := amisByRegion([]packer.Artifact{
		{Region: "us-east-1", AMI: "ami-a"}, {Region: "us-east-1", AMI: "ami-b"}, {Region: "us-west-2", AMI: "ami-c"},
	}, "us-east-1", "/logs/bake-1.log")
	appErr := requireAppError(t, err, ErrInvalidBakeRequest)
	for _, want := range []string{"ami-a", "ami-b", "us-east-1", "/logs/bake-1.log"} {
		assert.Contains(t, appErr.Message(), want)
	}
}

// TestAMIsByRegion: one AMI per region maps as is; none in the bake region
// is a failed bake.
func TestAMIsByRegion(t *testing.T) {
	amis, err := amisByRegion([]packer.Artifact{{Region: "us-east-1", AMI: "ami-a"}, {Region: "us-west-2", AMI: "ami-c"}},
		"us-east-1", "log")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"us-east-1": "ami-a", "us-west-2": "ami-c"}, amis)

	_, err = amisByRegion([]packer.Artifact{{Region: "us-west-2", AMI: "ami-c"}}, "us-east-1", "log")
	requireAppError(t, err, ErrBakeFailed)
}
