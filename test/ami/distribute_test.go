package ami

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/test/awsproxy"
	"github.com/kiln-ci/kiln/workflows"
)

const (
	// distributeRole and deniedRole are the roles kiln.yaml names; moto lets
	// any role be assumed, and the proxy denies deniedRole while asked to.
	distributeRole = "arn:aws:iam::222222222222:role/kiln-distribute"
	deniedRole     = "arn:aws:iam::444444444444:role/kiln-denied"
	cancelRole     = "arn:aws:iam::555555555555:role/kiln-distribute"
	kmsAlias       = "alias/kiln-ami"
)

// keyRegions are where the copy targets' KMS keys exist, per account.
var keyRegions = map[string][]string{
	"222222222222": {"eu-west-1", "us-west-2", "ap-southeast-2"},
	"444444444444": {"eu-west-1", "us-west-2"},
	"555555555555": {"eu-central-1"},
}

// TestDistribute: bake, test, then distribute to two accounts in three
// regions each. Account 222 gets encrypted copies it owns, made as its role
// with its key; account 333 gets launch permission on the source AMI in the
// bake region and on same-account copies elsewhere, with create-volume
// permission on their snapshots. Every copy carries the source's tags.
//
// Transient faults on the way are retried and leave no trace in the result:
// throttled and reset copies, 500s while waiting, and ap-southeast-2 down for
// its first calls. Only this test's account 222 and region ap-southeast-2
// are hit, so the tests running in parallel are not.
func TestDistribute(t *testing.T) {
	t.Parallel()
	as222 := func(r awsproxy.Request) bool { return r.Account == "222222222222" }
	it.proxy.Fail(awsproxy.Rule{Action: "CopyImage", Region: "eu-west-1", Kind: awsproxy.Throttle, Times: 2, Match: as222})
	it.proxy.Fail(awsproxy.Rule{Action: "CopyImage", Region: "us-west-2", Kind: awsproxy.Reset, Times: 1, Match: as222})
	it.proxy.Fail(awsproxy.Rule{Action: "DescribeImages", Region: "us-west-2", Kind: awsproxy.ServerError, Times: 2, Match: as222})
	it.proxy.Fail(awsproxy.Rule{Region: "ap-southeast-2", Kind: awsproxy.Down, Times: 3})
	id, res := mustRun(t, starter.ManualRun{Pipeline: "distribute"})
	require.NotNil(t, res.Test)
	require.True(t, res.Test.Passed)
	require.NotNil(t, res.Distribution, "run %s has no distribution", id)
	src := res.Bake.AMI()
	srcTags := tagMap(image(t, "us-east-1", src).Tags)
	require.Equal(t, activities.TestPassed, srcTags[activities.TagTest])

	amis := res.Distribution.AMIs
	require.Len(t, amis["222222222222"], 3)
	for region, ami := range amis["222222222222"] {
		img := imageAs(t, "222222222222", region, ami)
		assert.Equal(t, "222222222222", aws.ToString(img.OwnerId))
		tags := tagMap(img.Tags)
		for k, v := range srcTags {
			assert.Equal(t, v, tags[k], "tag %s of %s in %s", k, ami, region)
		}
		assert.Equal(t, src, tags[activities.TagSource])
		assert.Equal(t, 1, countCopies(t, "222222222222", region, src), "one copy in %s", region)

		copies := copyRequests(src, "222222222222", region)
		require.Len(t, copies, 1, "CopyImage calls that reached moto for 222222222222/%s", region)
		p := copies[0].Params
		assert.Equal(t, "true", p.Get("Encrypted"), "moto ignores it, so the request is checked")
		assert.Equal(t, kmsAlias, p.Get("KmsKeyId"))
		assert.Equal(t, "us-east-1", p.Get("SourceRegion"))
		assert.Equal(t, activities.CopyToken(activities.CopyInput{RunID: id, Account: "222222222222", Region: region,
			Source: activities.SourceAMI{Region: "us-east-1", AMI: src}}), p.Get("ClientToken"))
		assert.Equal(t, activities.TagSource, p.Get("TagSpecification.1.Tag.1.Key"))
	}

	shared := amis["333333333333"]
	require.Len(t, shared, 3)
	assert.Equal(t, src, shared["us-east-1"], "the bake region shares the source AMI itself")
	for region, ami := range shared {
		img := imageAs(t, "123456789012", region, ami)
		assert.Equal(t, "123456789012", aws.ToString(img.OwnerId), "shared AMIs stay the builder's")
		assert.Contains(t, launchUsers(t, region, ami), "333333333333", "%s in %s", ami, region)
		for _, snap := range snapshotIDs(img) {
			assert.Contains(t, volumeUsers(t, region, snap), "333333333333", "snapshot %s", snap)
		}
		if region != "us-east-1" {
			plain := copyRequests(src, "123456789012", region)
			require.Len(t, plain, 1, "one same-account copy in %s", region)
			assert.Empty(t, plain[0].Params.Get("Encrypted"), "same-account copies for sharing are plain")
		}
	}
	assert.Contains(t, launchUsers(t, "us-east-1", src), "222222222222", "copying across accounts needs the source shared")
	faults := map[awsproxy.Kind]int{}
	for _, r := range it.proxy.Requests() {
		if r.Fault != awsproxy.None && (r.Region == "ap-southeast-2" || r.Account == "222222222222") {
			faults[r.Fault]++
		}
	}
	assert.Equal(t, map[awsproxy.Kind]int{awsproxy.Throttle: 2, awsproxy.Reset: 1, awsproxy.ServerError: 2, awsproxy.Down: 3}, faults,
		"every injected fault was met and got past")
}

// TestDistributeDeniedWaitsForRetry: the role of account 444 may not be
// assumed. Account 222 still gets its copy; the run waits, saying which
// targets failed and why, and copies nothing for 444. Once the role works,
// kiln retry copies exactly the two failed targets and the run completes.
func TestDistributeDeniedWaitsForRetry(t *testing.T) {
	t.Parallel()
	var denied atomic.Bool
	denied.Store(true)
	it.proxy.Fail(awsproxy.Rule{Action: "AssumeRole", Kind: awsproxy.Denied, Times: -1,
		Match: func(r awsproxy.Request) bool { return denied.Load() && r.Params.Get("RoleArn") == deniedRole }})
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	id, err := it.runs.Start(ctx, starter.ManualRun{Pipeline: "denied", Ref: "main"})
	require.NoError(t, err)

	var p workflows.Progress
	require.Eventually(t, func() bool {
		p = progress(t, id)
		return p.Distribution != nil && p.Distribution.WaitingForRetry
	}, runTimeout/2, 200*time.Millisecond, "run %s never waited for a retry", id)
	assert.Equal(t, workflows.StageDistributeWaiting, stageAttr(t, id))
	var failed []workflows.TargetProgress
	for _, tp := range p.Distribution.Targets {
		switch tp.Account {
		case "444444444444":
			failed = append(failed, tp)
			assert.Equal(t, workflows.StateFailed, tp.State)
			assert.Contains(t, tp.Error, "access denied (AccessDenied)")
			assert.Contains(t, tp.Error, "sts:AssumeRole", "the hint names the permission that is missing")
		default:
			assert.Equal(t, workflows.StateSucceeded, tp.State, "%+v", tp)
		}
	}
	require.Len(t, failed, 2)
	src := sourceOf(t, p)
	assert.Empty(t, copyRequests(src, "444444444444", ""), "nothing was copied as a role that was denied")

	denied.Store(false)
	retried, err := it.runs.Retry(ctx, id)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"444444444444/eu-west-1 (copy)", "444444444444/us-west-2 (copy)"}, retried.Targets)
	var res workflows.PipelineResult
	require.NoError(t, it.temporal.GetWorkflow(ctx, id, "").Get(ctx, &res))

	require.NotNil(t, res.Distribution)
	assert.Len(t, res.Distribution.AMIs["444444444444"], 2)
	assert.Len(t, copyRequests(src, "222222222222", "eu-west-1"), 1, "the target that succeeded is not copied again")
	for _, region := range keyRegions["444444444444"] {
		assert.Len(t, copyRequests(src, "444444444444", region), 1, "444444444444/%s", region)
		assert.Equal(t, 1, countCopies(t, "444444444444", region, src))
	}
	_, err = it.runs.Retry(ctx, id)
	assert.ErrorContains(t, err, "already completed", "a finished run refuses a retry")
}

// TestCancelStopsPendingCopies: cancelling a run while its copy is still
// pending (the proxy holds this test's copies pending) stops the copy:
// kiln deregisters it, as the target's role, and moto has no copy left.
func TestCancelStopsPendingCopies(t *testing.T) {
	t.Parallel()
	const account, region = "555555555555", "eu-central-1"
	it.proxy.PendingWhere(time.Hour, func(r awsproxy.Request) bool { return r.Account == account })
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	id, err := it.runs.Start(ctx, starter.ManualRun{Pipeline: "cancelcopy", Ref: "main"})
	require.NoError(t, err)

	require.Eventually(t, func() bool { return len(copiesBy(account)) > 0 },
		runTimeout/2, 100*time.Millisecond, "run %s never started its copy", id)
	require.Len(t, copiesBy(account), 1)
	src := copiesBy(account)[0].Params.Get("SourceImageId")
	pending := copyIDs(t, account, region, src)
	require.Len(t, pending, 1)
	// The copy is pending: its waiter is polling.
	require.Eventually(t, func() bool {
		return it.proxy.Count("DescribeImages", func(r awsproxy.Request) bool { return r.Account == account && r.Region == region }) > 2
	}, runTimeout/2, 100*time.Millisecond)

	require.NoError(t, it.temporal.CancelWorkflow(ctx, id, ""))
	err = it.temporal.GetWorkflow(ctx, id, "").Get(ctx, nil)
	var canceled *temporal.CanceledError
	require.ErrorAs(t, err, &canceled)

	var deregistered []awsproxy.Request
	require.Eventually(t, func() bool {
		deregistered = nil
		for _, r := range it.proxy.Requests() {
			if r.Action == "DeregisterImage" && r.Account == account && r.Status == 200 {
				deregistered = append(deregistered, r)
			}
		}
		return len(deregistered) > 0
	}, 30*time.Second, 100*time.Millisecond, "the pending copy of %s was never stopped", id)
	require.Len(t, deregistered, 1)
	assert.Equal(t, region, deregistered[0].Region)
	assert.Equal(t, pending[0], deregistered[0].Params.Get("ImageId"))
	assert.Empty(t, copyIDs(t, account, region, src), "moto still has the copy")
}

// copiesBy are kiln's CopyImage calls that account sent and moto answered.
func copiesBy(account string) []awsproxy.Request {
	var out []awsproxy.Request
	for _, r := range it.proxy.Requests() {
		if isKilnCopy(r) && r.Account == account && r.Status == 200 {
			out = append(out, r)
		}
	}
	return out
}

// sourceOf is the source AMI of a run's distribution, from its progress.
func sourceOf(t *testing.T, p workflows.Progress) string {
	t.Helper()
	for _, tp := range p.Distribution.Targets {
		if tp.Account == "222222222222" && tp.AMI != "" {
			return tagMap(imageAs(t, "222222222222", tp.Region, tp.AMI).Tags)[activities.TagSource]
		}
	}
	t.Fatal("no copy finished to learn the source AMI from")
	return ""
}

// copyRequests are kiln's CopyImage calls of source that account sent for
// region ("" for any) and the proxy forwarded to moto. Packer's own copies to its
// ami_regions are not kiln's: they carry no kiln ClientToken.
func copyRequests(source, account, region string) []awsproxy.Request {
	var out []awsproxy.Request
	for _, r := range it.proxy.Requests() {
		if isKilnCopy(r) && r.Fault == awsproxy.None && r.Params.Get("SourceImageId") == source && r.Account == account &&
			(region == "" || r.Region == region) {
			out = append(out, r)
		}
	}
	return out
}

func isKilnCopy(r awsproxy.Request) bool {
	return r.Action == "CopyImage" && strings.HasPrefix(r.Params.Get("ClientToken"), "kiln-")
}

// countCopies counts the images of source account holds in region, as moto
// sees them: duplicates from a repeated copy would show here.
func countCopies(t *testing.T, account, region, source string) int {
	t.Helper()
	return len(copyIDs(t, account, region, source))
}

// copyIDs are the images of source account holds in region.
func copyIDs(t *testing.T, account, region, source string) []string {
	t.Helper()
	out, err := ec2For(t, account, region).DescribeImages(context.Background(), &ec2.DescribeImagesInput{
		Owners:  []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("tag:" + activities.TagSource), Values: []string{source}}},
	})
	require.NoError(t, err)
	var ids []string
	for _, img := range out.Images {
		ids = append(ids, aws.ToString(img.ImageId))
	}
	return ids
}

func imageAs(t *testing.T, account, region, ami string) ec2types.Image {
	t.Helper()
	out, err := ec2For(t, account, region).DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{ami}})
	require.NoError(t, err)
	require.Len(t, out.Images, 1, "%s in %s of %s", ami, region, account)
	return out.Images[0]
}

func launchUsers(t *testing.T, region, ami string) []string {
	t.Helper()
	out, err := ec2At(region).DescribeImageAttribute(context.Background(), &ec2.DescribeImageAttributeInput{
		ImageId: aws.String(ami), Attribute: ec2types.ImageAttributeNameLaunchPermission,
	})
	require.NoError(t, err)
	var users []string
	for _, lp := range out.LaunchPermissions {
		users = append(users, aws.ToString(lp.UserId))
	}
	return users
}

func volumeUsers(t *testing.T, region, snap string) []string {
	t.Helper()
	out, err := ec2At(region).DescribeSnapshotAttribute(context.Background(), &ec2.DescribeSnapshotAttributeInput{
		SnapshotId: aws.String(snap), Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission,
	})
	require.NoError(t, err)
	var users []string
	for _, p := range out.CreateVolumePermissions {
		users = append(users, aws.ToString(p.UserId))
	}
	return users
}

func snapshotIDs(img ec2types.Image) []string {
	var ids []string
	for _, bdm := range img.BlockDeviceMappings {
		if bdm.Ebs != nil && bdm.Ebs.SnapshotId != nil {
			ids = append(ids, *bdm.Ebs.SnapshotId)
		}
	}
	return ids
}

// motoConfig is an AWS config straight at moto acting in account: the
// default account's keys, or a role assumed in another account.
func motoConfig(ctx context.Context, motoURL, account, region string) aws.Config {
	cfg := aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(motoURL),
	}
	if account == awsproxy.DefaultAccount {
		return cfg
	}
	return awsx.AssumeRole(cfg, "arn:aws:iam::"+account+":role/kiln-test", "kiln-test")
}

func ec2For(t *testing.T, account, region string) *ec2.Client {
	return ec2.NewFromConfig(motoConfig(context.Background(), it.moto.URL, account, region))
}

// makeKeys creates the KMS key behind kmsAlias in each copy target's account
// and region: kiln checks the key before copying with it.
func makeKeys(ctx context.Context, motoURL string) error {
	for account, regions := range keyRegions {
		for _, region := range regions {
			c := kms.NewFromConfig(motoConfig(ctx, motoURL, account, region))
			key, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("kiln AMI copies")})
			if err != nil {
				return err
			}
			_, err = c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(kmsAlias), TargetKeyId: key.KeyMetadata.KeyId})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// progress queries a run's progress.
func progress(t *testing.T, id string) workflows.Progress {
	t.Helper()
	v, err := it.temporal.QueryWorkflow(context.Background(), id, "", workflows.QueryProgress)
	require.NoError(t, err)
	var p workflows.Progress
	require.NoError(t, v.Get(&p))
	return p
}

// stageAttr is a run's KilnStage search attribute.
func stageAttr(t *testing.T, id string) string {
	t.Helper()
	d, err := it.temporal.DescribeWorkflowExecution(context.Background(), id, "")
	require.NoError(t, err)
	f := d.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()[workflows.AttrStage.GetName()]
	require.NotNil(t, f, "run %s has no KilnStage", id)
	return strings.Trim(string(f.GetData()), `"`)
}
