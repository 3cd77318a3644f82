package cluster

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/activities"
)

// manyRuns and amiEvery shape TestClusterManyWorkers: every amiEvery-th
// run is an AMI run, the rest quick builds.
const (
	manyRuns = 30
	amiEvery = 5
)

// TestClusterManyWorkers starts 30 runs by webhook, a mix of quick builds
// and AMI runs (build, bake, test, an encrypted copy and a share, against
// moto), on three workers. All complete; the histories show which worker
// ran each activity, and more than one worker did work. Each AMI run baked
// once and has one AMI: the workers never doubled up on a run.
func TestClusterManyWorkers(t *testing.T) {
	c := newCluster(t, 3)
	began := time.Now()
	var ids, amiRuns []string
	for i := range manyRuns {
		if i%amiEvery == amiEvery-1 {
			id := c.push(t, pipeAMI, c.commit(t))
			ids, amiRuns = append(ids, id), append(amiRuns, id)
			continue
		}
		ids = append(ids, c.push(t, pipeQuick, c.base))
	}
	t.Logf("%d webhooks started %d runs (%d AMI runs) in %.1fs", manyRuns, len(ids), len(amiRuns), time.Since(began).Seconds())

	outcomes := c.waitRuns(t, ids, 5*time.Minute)
	requireCompleted(t, outcomes)
	t.Logf("all %d runs completed %.1fs after the first webhook", len(ids), time.Since(began).Seconds())
	c.requireListed(t, ids)

	spread := c.spread(t, ids)
	t.Logf("activities completed, per worker:\n%s", describeSpread(spread))
	for who := range spread {
		assert.False(t, strings.HasPrefix(who, "unknown"), "activities completed by %s, which is none of the cluster's workers", who)
	}
	assert.Greater(t, len(spread), 1, "only one worker did any work: %v", slices.Collect(maps.Keys(spread)))
	builders := 0
	for _, acts := range spread {
		if acts["Build"] > 0 {
			builders++
		}
	}
	assert.Greater(t, builders, 1, "the %d builds all ran on one worker", manyRuns)

	packer := map[string]int{}
	for _, p := range c.packerRuns(t) {
		packer[p.run]++
	}
	for _, id := range amiRuns {
		res := outcomes[id].res
		require.NotNil(t, res.Bake, "AMI run %s has no bake result", id)
		require.NotNil(t, res.Test, "AMI run %s has no test result", id)
		assert.True(t, res.Test.Passed, "AMI run %s: the AMI test", id)
		require.NotNil(t, res.Distribution, "AMI run %s has no distribution", id)
		assert.NotEmpty(t, res.Distribution.AMIs[copyAccount]["eu-west-1"], "AMI run %s: no copy in %s/eu-west-1", id, copyAccount)
		assert.Equal(t, 1, packer[id], "AMI run %s: packer runs", id)
		assert.Equal(t, []string{res.Bake.AMI()}, c.imagesTagged(t, "", bakeRegion, activities.TagRun, id),
			"AMI run %s: the AMIs tagged %s in %s", id, activities.TagRun, bakeRegion)
	}
	assert.Equal(t, len(amiRuns), len(packer), "packer ran for runs %v", slices.Sorted(maps.Keys(packer)))
}
