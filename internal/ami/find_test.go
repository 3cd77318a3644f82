package ami_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/ami"
	"github.com/kiln-ci/kiln/internal/ami/amifake"
)

func bakeTags(run string) map[string]string {
	return map[string]string{ami.TagPipeline: "p", ami.TagCommit: "c0ffee", ami.TagRun: run}
}

// reuse bakes in us-east-1 and tests in us-west-2.
var reuse = ami.Bake{Pipeline: "p", Commit: "c0ffee", Region: "us-east-1", TestRegion: "us-west-2"}

func findPassed(t *testing.T, store *amifake.Images) (map[string]string, string) {
	t.Helper()
	amis, run, err := ami.FindPassed(context.Background(), store.Clients(nil), reuse, func(string, string) {})
	require.NoError(t, err)
	return amis, run
}

// TestFindPassedAcrossRegions: the test passed in us-west-2 while the
// bake region is us-east-1 (and, as before this fix, only the tested AMI was
// tagged): the reuse finds it, and returns the bake's AMIs in all its
// regions, from the newest passed bake only, and never a distributed copy.
func TestFindPassedAcrossRegions(t *testing.T) {
	store := &amifake.Images{}
	for region, id := range map[string]string{"us-east-1": "ami-e", "us-west-2": "ami-w", "eu-west-1": "ami-x"} {
		tags := bakeTags("p/main/1")
		tags[ami.TagRegions] = "eu-west-1,us-east-1,us-west-2"
		store.Add(region, id, "2026-01-02", tags)
	}
	store.Tags("us-west-2", "ami-w")[ami.TagTest] = ami.TestPassed
	// An older passed bake, and a newer one that failed its test.
	old := bakeTags("p/main/0")
	old[ami.TagTest] = ami.TestPassed
	store.Add("us-west-2", "ami-old", "2026-01-01", old)
	store.Add("us-east-1", "ami-old-e", "2026-01-01", bakeTags("p/main/0"))
	// A newer distributed copy of the passed bake in one of its regions.
	copied := bakeTags("p/main/1")
	copied[ami.TagSource], copied[ami.TagTest] = "ami-e", ami.TestPassed
	store.Add("eu-west-1", "ami-copy", "2026-01-05", copied)
	failed := bakeTags("p/main/2")
	failed[ami.TagTest] = ami.TestFailed
	store.Add("us-west-2", "ami-failed", "2026-01-03", failed)

	amis, run := findPassed(t, store)
	assert.Equal(t, map[string]string{"us-east-1": "ami-e", "us-west-2": "ami-w", "eu-west-1": "ami-x"}, amis)
	assert.Equal(t, "p/main/1", run, "the run whose bake passed")
}

// TestFindPassedIncomplete: a passed bake whose AMI in one of its regions
// is gone is not reused: the run bakes again, and the caller hears where.
func TestFindPassedIncomplete(t *testing.T) {
	store := &amifake.Images{}
	for region, id := range map[string]string{"us-east-1": "ami-e", "us-west-2": "ami-w"} {
		tags := bakeTags("p/main/1")
		tags[ami.TagRegions], tags[ami.TagTest] = "eu-west-1,us-east-1,us-west-2", ami.TestPassed
		store.Add(region, id, "2026-01-02", tags)
	}
	var gone []string
	amis, _, err := ami.FindPassed(context.Background(), store.Clients(nil), reuse, func(region, run string) {
		gone = append(gone, region, run)
	})
	require.NoError(t, err)
	assert.Nil(t, amis)
	assert.Equal(t, []string{"eu-west-1", "p/main/1"}, gone)
}

// TestFindPassedUntaggedRun: an AMI tagged passed by hand, with no
// kiln:run, is reused on its own when it is in the bake region.
func TestFindPassedUntaggedRun(t *testing.T) {
	store := &amifake.Images{}
	store.Add("us-east-1", "ami-hand", "2026-01-02", map[string]string{ami.TagPipeline: "p", ami.TagCommit: "c0ffee", ami.TagTest: ami.TestPassed})
	amis, run := findPassed(t, store)
	assert.Equal(t, map[string]string{"us-east-1": "ami-hand"}, amis)
	assert.Empty(t, run, "tagged by hand: no run to name")
}
