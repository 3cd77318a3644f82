package activities

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

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

// TestClassifyBakeError: what a rebuild can get past is retryable, what it
// would fail on again is permanent, and every message says what failed and
// where the log is.
func TestClassifyBakeError(t *testing.T) {
	a := &Activities{}
	in := BakeInput{}
	const logPath = "/data/logs/p/bake-1.log"
	for name, c := range map[string]struct {
		err       error
		permanent bool
		typ, says string
	}{
		"provisioner fails": {&packer.BuildError{ExitCode: 1, Errors: []string{"amazon-ebs.main: Script exited with non-zero exit status: 7"}},
			true, ErrBakeFailed, "non-zero exit status: 7"},
		"packer OOM-killed": {&packer.BuildError{ExitCode: -1, Signal: "killed"},
			false, ErrBakeInterrupted, `killed by signal "killed"`},
		"throttled": {&packer.BuildError{ExitCode: 1, Errors: []string{"amazon-ebs.main: RequestLimitExceeded: Request limit exceeded."}},
			false, ErrBakeInterrupted, "RequestLimitExceeded"},
		"no capacity": {&packer.BuildError{ExitCode: 1, Errors: []string{"amazon-ebs.main: InsufficientInstanceCapacity: none left"}},
			false, ErrBakeInterrupted, "InsufficientInstanceCapacity"},
		"packer missing": {fmt.Errorf("%w: exec: \"packer\": executable file not found in $PATH", packer.ErrStart),
			false, ErrBakeInterrupted, "executable file not found"},
		"invalid options": {fmt.Errorf("%w: template \"../x\" is not a path inside the repository", packer.ErrInvalidOptions),
			true, ErrInvalidBakeRequest, "not a path inside the repository"},
	} {
		t.Run(name, func(t *testing.T) {
			err := a.classifyBakeError(context.Background(), context.Background(), in, logPath, c.err)
			var appErr *temporal.ApplicationError
			require.True(t, errors.As(err, &appErr), "%T: %v", err, err)
			assert.Equal(t, c.typ, appErr.Type())
			assert.Equal(t, c.permanent, appErr.NonRetryable(), appErr.Message())
			assert.Contains(t, appErr.Message(), c.says)
			assert.Contains(t, appErr.Message(), logPath)
		})
	}
}
