package ami

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/test/awsproxy"
)

// TestBakeTagsAMIs: a build+bake run bakes in us-east-1, Packer copies to
// us-west-2, and kiln tags both AMIs and their snapshots with the run's
// identity. The template sets no tags, so every kiln:* tag is kiln's.
func TestBakeTagsAMIs(t *testing.T) {
	t.Parallel()
	id, res := mustRun(t, starter.ManualRun{Pipeline: "tags"})

	require.NotNil(t, res.Build, "the build stage ran before the bake")
	assert.Equal(t, it.head, res.Commit)
	bake := res.Bake
	assert.False(t, bake.Reused)
	assert.Equal(t, "us-east-1", bake.Region)
	require.ElementsMatch(t, []string{"us-east-1", "us-west-2"}, keys(bake.AMIs), "AMIs: %v", bake.AMIs)
	want := map[string]string{
		activities.TagPipeline: "tags",
		activities.TagCommit:   it.head,
		activities.TagRef:      "refs/heads/main",
		activities.TagRun:      id,
	}
	for region, ami := range bake.AMIs {
		img := image(t, region, ami)
		// The name proves PKR_VAR_kiln_run_id reached the template.
		assert.True(t, strings.HasPrefix(aws.ToString(img.Name), "kiln-tags-main-manual-"), "AMI name %q", aws.ToString(img.Name))
		assertTags(t, want, tagMap(img.Tags), ami+" in "+region)
		for snap, tags := range snapshotTags(t, region, img) {
			assertTags(t, want, tags, snap+" of "+ami+" in "+region)
		}
	}
	assert.Equal(t, 1, packerRuns(t, id), "packer invocations for %s", id)
}

// TestBakeReusesTestedAMI: once a bake's AMI is tagged kiln:test=passed, a
// second run of the same pipeline and commit reuses it without running
// Packer; a forced run bakes a new one.
func TestBakeReusesTestedAMI(t *testing.T) {
	t.Parallel()
	const pipeline = "reuse"
	_, first := mustRun(t, starter.ManualRun{Pipeline: pipeline})
	require.False(t, first.Bake.Reused)
	tested := first.Bake.AMI()
	require.NotEmpty(t, tested)
	require.Equal(t, 1, packerRuns(t, pipeline+"/"))

	_, err := ec2At("us-east-1").CreateTags(context.Background(), &ec2.CreateTagsInput{
		Resources: []string{tested},
		Tags:      []ec2types.Tag{{Key: aws.String(activities.TagTest), Value: aws.String("passed")}},
	})
	require.NoError(t, err)

	id2, second := mustRun(t, starter.ManualRun{Pipeline: pipeline})
	assert.True(t, second.Bake.Reused, "run %s should reuse %s", id2, tested)
	assert.Equal(t, tested, second.Bake.AMI())
	assert.Equal(t, 1, packerRuns(t, pipeline+"/"), "a reused AMI runs no packer")

	id3, forced := mustRun(t, starter.ManualRun{Pipeline: pipeline, Force: true})
	assert.False(t, forced.Bake.Reused, "a forced run bakes")
	assert.NotEqual(t, tested, forced.Bake.AMI())
	assert.Equal(t, 2, packerRuns(t, pipeline+"/"))
	assert.Equal(t, 1, packerRuns(t, id3))
	assert.Equal(t, id3, tagMap(image(t, "us-east-1", forced.Bake.AMI()).Tags)[activities.TagRun])
}

// TestBakeResumesFromCheckpoint: tagging fails after Packer succeeded (more
// CreateTags 500s than the SDK's 5 attempts), so the first activity attempt
// fails; the retry resumes from the heartbeat checkpoint and tags the AMIs
// Packer already made instead of baking again. The pipeline bakes in
// eu-west-1, the only region the fault applies to.
func TestBakeResumesFromCheckpoint(t *testing.T) {
	t.Parallel()
	const region, faults = "eu-west-1", 6
	it.proxy.Fail(awsproxy.Rule{Action: "CreateTags", Region: region, Times: faults, Kind: awsproxy.ServerError,
		Match: func(r awsproxy.Request) bool { return tagsWith(r, activities.TagPipeline, "resume") }})

	id, res := mustRun(t, starter.ManualRun{Pipeline: "resume"})

	inRegion := func(r awsproxy.Request) bool { return r.Region == region }
	failed := func(r awsproxy.Request) bool { return inRegion(r) && r.Fault == awsproxy.ServerError }
	assert.Equal(t, faults, it.proxy.Count("CreateTags", failed), "every injected fault was used")
	// Packer tags its instance through RunInstances, so the faults can only
	// have hit kiln's tagging of the AMI and its snapshots.
	notAMI := func(r awsproxy.Request) bool {
		return inRegion(r) && !strings.HasPrefix(r.Params.Get("ResourceId.1"), "ami-")
	}
	assert.Zero(t, it.proxy.Count("CreateTags", notAMI), "CreateTags calls on anything but an AMI")
	assert.Equal(t, []int32{2}, bakeAttempts(history(t, id)), "the bake closed on its second attempt")
	assert.Equal(t, 1, packerRuns(t, id), "the retry must not run packer again")
	assert.Equal(t, 1, it.proxy.Count("RunInstances", inRegion), "one build instance was launched")
	assert.FileExists(t, bakeLog(id, 1))
	assert.NoFileExists(t, bakeLog(id, 2), "the second attempt ran no packer, so wrote no bake log")

	assert.Equal(t, region, res.Bake.Region)
	require.ElementsMatch(t, []string{region, "us-west-2"}, keys(res.Bake.AMIs))
	for r, ami := range res.Bake.AMIs {
		img := image(t, r, ami)
		assertTags(t, map[string]string{activities.TagRun: id, activities.TagPipeline: "resume"}, tagMap(img.Tags), ami+" in "+r)
	}
}

// TestBakeSecretNeverRecorded: a secret_vars value reaches Packer (which
// prints it in clear in its machine-readable output) but neither the bake
// log nor anything in the workflow history.
func TestBakeSecretNeverRecorded(t *testing.T) {
	t.Parallel()
	id, res := mustRun(t, starter.ManualRun{Pipeline: "secret"})

	assert.Equal(t, bakeLog(id, 1), res.Bake.LogPath)
	data, err := os.ReadFile(bakeLog(id, 1))
	require.NoError(t, err)
	log := string(data)
	assert.Contains(t, log, "the token is <sensitive>", "packer's echo of the secret is in the log, scrubbed")
	assert.NotContains(t, log, it.secret)

	var payloads strings.Builder
	for _, ev := range history(t, id) {
		js, err := protojson.Marshal(ev)
		require.NoError(t, err)
		assert.NotContains(t, string(js), it.secret, "event %d (%s)", ev.GetEventId(), ev.GetEventType())
		// protojson prints payloads base64-encoded: read them as bytes too.
		eachText(ev.ProtoReflect(), func(s string) { payloads.WriteString(s + "\n") })
	}
	assert.NotContains(t, payloads.String(), it.secret)
	// The secret's reference is in history (the plan), so the scan saw the
	// bake's input payload.
	assert.Contains(t, payloads.String(), secretEnv)
}

// TestBakeFailurePermanent: a provisioner that fails fails the run with
// BakeFailed on the first attempt: rebaking cannot fix a template.
func TestBakeFailurePermanent(t *testing.T) {
	t.Parallel()
	id, _, err := run(t, starter.ManualRun{Pipeline: "fail"})
	require.Error(t, err, "run %s", id)

	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%T: %v", err, err)
	assert.Equal(t, activities.ErrBakeFailed, appErr.Type())
	assert.Contains(t, appErr.Message(), "packer build failed")
	assert.Contains(t, appErr.Message(), "exit status: 7", "packer's own error says what failed")
	assert.Equal(t, []int32{1}, bakeAttempts(history(t, id)), "a permanent failure is not retried")
	assert.Equal(t, 1, packerRuns(t, id))
}

// assertTags checks that got has every tag of want.
func assertTags(t *testing.T, want, got map[string]string, what string) {
	t.Helper()
	for k, v := range want {
		assert.Equal(t, v, got[k], "tag %s on %s (tags: %v)", k, what, got)
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
