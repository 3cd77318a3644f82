package activities

import (
	"context"
	"errors"
	"fmt"
	"testing"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/ami"
	"github.com/kiln-ci/kiln/internal/ami/amifake"
	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/internal/config"
)

func bakeTags(run string) map[string]string {
	return map[string]string{ami.TagPipeline: "p", ami.TagCommit: "c0ffee", ami.TagRun: run}
}

// reuseInput bakes in us-east-1 and tests in us-west-2.
func reuseInput() BakeInput {
	return BakeInput{RunID: "p/main/9", Pipeline: "p", Plan: Plan{Commit: "c0ffee",
		Bake: &config.BakeStage{Region: "us-east-1"}, Test: &config.TestStage{Region: "us-west-2"}}}
}

// TestAMIPassTagsEveryRegion: a passed test tags the AMIs of the bake in
// every region, not only the one it tested in the test region.
func TestAMIPassTagsEveryRegion(t *testing.T) {
	store := &amifake.Images{}
	for region, id := range map[string]string{"us-east-1": "ami-e", "us-west-2": "ami-w", "eu-west-1": "ami-x"} {
		store.Add(region, id, "2026-01-01", bakeTags("p/main/1"))
	}
	inst := &fakeEC2{state: ec2types.InstanceStateNameRunning, tags: map[string]string{}}
	in := testInput(t, "true")
	in.Plan.Test.Region = "us-west-2"
	in.AMIs = map[string]string{"us-east-1": "ami-e", "us-west-2": "ami-w", "eu-west-1": "ami-x"}
	res, err := executeTest(t, &Activities{DataDir: t.TempDir(), Log: zerolog.Nop(), AWS: store.Clients(inst)}, in, nil)
	require.NoError(t, err)
	assert.True(t, res.Passed)
	assert.Equal(t, "ami-w", res.AMI)
	for region, id := range in.AMIs {
		assert.Equal(t, TestPassed, store.Tags(region, id)[ami.TagTest], "%s in %s", id, region)
	}
}

// TestBakeTagsRegions: a bake's AMIs name the run and all the bake's
// regions, which is how a reuse finds them.
func TestBakeTagsRegions(t *testing.T) {
	store := &amifake.Images{}
	amis := map[string]string{"us-east-1": "ami-e", "us-west-2": "ami-w", "eu-west-1": "ami-x"}
	for region, id := range amis {
		store.Add(region, id, "2026-01-01", map[string]string{})
	}
	a := &Activities{Log: zerolog.Nop(), AWS: store.Clients(nil)}
	require.NoError(t, a.tagAMIs(context.Background(), reuseInput(), amis))
	for region, id := range amis {
		tags := store.Tags(region, id)
		assert.Equal(t, "eu-west-1,us-east-1,us-west-2", tags[ami.TagRegions], "%s in %s", id, region)
		assert.Equal(t, "p/main/9", tags[ami.TagRun])
	}
}

// TestBakeTagsItsParent: a run an AMI trigger started tags its AMIs with
// the base it was given (in its bake region, else the base's bake region)
// and the run that tested it; any other run tags no parent.
func TestBakeTagsItsParent(t *testing.T) {
	for bakeRegion, want := range map[string][2]string{"eu-west-1": {"ami-2", "eu-west-1"}, "ap-south-1": {"ami-1", "us-east-1"}} {
		store := &amifake.Images{}
		amis := map[string]string{bakeRegion: "ami-child"}
		store.Add(bakeRegion, "ami-child", "2026-01-01", map[string]string{})
		in := reuseInput()
		in.Plan.Bake.Region, in.Event = bakeRegion, amiEvent()
		a := &Activities{Log: zerolog.Nop(), AWS: store.Clients(nil)}
		require.NoError(t, a.tagAMIs(context.Background(), in, amis))
		tags := store.Tags(bakeRegion, "ami-child")
		assert.Equal(t, want[0], tags[ami.TagParent], bakeRegion)
		assert.Equal(t, want[1], tags[ami.TagParentRegion], bakeRegion)
		assert.Equal(t, "base/main/r1", tags[ami.TagParentRun], bakeRegion)
	}
	store := &amifake.Images{}
	store.Add("us-east-1", "ami-e", "2026-01-01", map[string]string{})
	a := &Activities{Log: zerolog.Nop(), AWS: store.Clients(nil)}
	require.NoError(t, a.tagAMIs(context.Background(), reuseInput(), map[string]string{"us-east-1": "ami-e"}))
	assert.NotContains(t, store.Tags("us-east-1", "ami-e"), ami.TagParent)
}

// TestBakeReusesPassedAMI: the bake's reuse asks internal/ami for the
// passed bake of its pipeline and commit, looking in the test region too.
func TestBakeReusesPassedAMI(t *testing.T) {
	store := &amifake.Images{}
	tags := bakeTags("p/main/1")
	tags[ami.TagTest] = ami.TestPassed
	store.Add("us-west-2", "ami-w", "2026-01-02", tags)
	store.Add("us-east-1", "ami-e", "2026-01-02", bakeTags("p/main/1"))
	a := &Activities{Log: zerolog.Nop(), AWS: store.Clients(nil)}
	amis, run, err := a.findPassedAMI(context.Background(), reuseInput())
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"us-east-1": "ami-e", "us-west-2": "ami-w"}, amis)
	assert.Equal(t, "p/main/1", run)
}

// TestAMIErrorTypes: each permanent failure of internal/ami reaches
// Temporal as a non-retryable error of the activities' type, with the
// step's message; any other error is left as it is.
func TestAMIErrorTypes(t *testing.T) {
	for kind, typ := range map[error]string{
		ami.ErrSourceMissing:     awsx.TypeNotFound,
		ami.ErrSourceUnavailable: ErrInvalidDistribution,
		ami.ErrKeyUnusable:       awsx.TypeKMSKeyUnusable,
		ami.ErrCopyFailed:        ErrCopyFailed,
		ami.ErrInstanceFailed:    ErrTestInstanceFailed,
	} {
		appErr := requireAppError(t, amiError(fmt.Errorf("copy ami-1: %w", kind)), typ)
		assert.Equal(t, "copy ami-1: "+kind.Error(), appErr.Message())
	}
	boom := errors.New("boom")
	assert.Equal(t, boom, amiError(boom))
	assert.NoError(t, amiError(nil))
}
