package ami

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/test/awsproxy"
	"github.com/kiln-ci/kiln/test/testkit"
)

// TestTestStagePasses: the test stage launches a t3.small from the baked AMI
// in the configured subnet and security group, with the run's ClientToken;
// the command sees the four KILN_* variables (KILN_AMI_ID the baked AMI);
// the AMI and its snapshots are tagged kiln:test=passed; the instance is
// terminated.
func TestTestStagePasses(t *testing.T) {
	t.Parallel()
	id, res := mustRun(t, starter.ManualRun{Pipeline: "testpass"})

	ami := res.Bake.AMI()
	require.NotNil(t, res.Test, "run %s has no test result", id)
	assert.True(t, res.Test.Passed)
	assert.Equal(t, ami, res.Test.AMI)
	assert.Equal(t, "us-east-1", res.Test.Region)
	assert.Empty(t, res.Test.TerminateError)
	assert.Equal(t, testLog(id, 1), res.Test.LogPath)

	seen := readState(t, ami+".env")
	require.Len(t, seen, 4, "KILN_AMI_ID, KILN_INSTANCE_ID, KILN_INSTANCE_IP, KILN_REGION: %q", seen)
	assert.Equal(t, []string{ami, res.Test.InstanceID}, seen[:2])
	assert.NotEmpty(t, seen[2], "KILN_INSTANCE_IP")
	assert.Equal(t, "us-east-1", seen[3])

	img := image(t, "us-east-1", ami)
	assert.Equal(t, activities.TestPassed, tagMap(img.Tags)[activities.TagTest])
	for snap, tags := range snapshotTags(t, "us-east-1", img) {
		assert.Equal(t, activities.TestPassed, tags[activities.TagTest], "snapshot %s", snap)
	}
	inst := testInstance(t, id)
	assert.Equal(t, res.Test.InstanceID, aws.ToString(inst.InstanceId))
	assertTerminated(t, inst)

	launches := runInstances(t, id, ami)
	require.Len(t, launches, 1, "one test instance was launched")
	p := launches[0].Params
	assert.Equal(t, "t3.small", p.Get("InstanceType"))
	assert.Equal(t, it.subnet, p.Get("SubnetId"))
	assert.Equal(t, it.group, p.Get("SecurityGroupId.1"))
	assert.Equal(t, it.subnet, aws.ToString(inst.SubnetId), "moto placed it in the subnet")
	assert.Equal(t, 1, it.proxy.Count("TerminateInstances", func(r awsproxy.Request) bool {
		return r.Params.Get("InstanceId.1") == res.Test.InstanceID
	}))
}

// TestTestStageFails: a test command that exits 4 fails the run with
// AMITestFailed on its first attempt, saying which command failed; the AMI is
// tagged kiln:test=failed and the instance terminated.
func TestTestStageFails(t *testing.T) {
	t.Parallel()
	id, _, err := run(t, starter.ManualRun{Pipeline: "testfail"})
	require.Error(t, err, "run %s", id)

	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%T: %v", err, err)
	assert.Equal(t, activities.ErrAMITestFailed, appErr.Type())
	assert.Contains(t, appErr.Message(), `"exit 4"`)
	assert.Contains(t, appErr.Message(), "testing the AMI", "the message carries the log's tail")
	assert.Equal(t, []int32{1}, testkit.ActivityAttempts(history(t, id), "TestAMI"), "a failed test is not retried")

	inst := testInstance(t, id)
	assertTerminated(t, inst)
	ami := launchedAMI(t, id)
	assert.Equal(t, activities.TestFailed, tagMap(image(t, "us-east-1", ami).Tags)[activities.TagTest])
	assert.FileExists(t, testLog(id, 1))
	assert.Zero(t, it.proxy.Count("CopyImage", func(r awsproxy.Request) bool { return isKilnCopy(r) && r.Params.Get("SourceImageId") == ami }),
		"a failed AMI is not copied")
	assert.Zero(t, it.proxy.Count("ModifyImageAttribute", func(r awsproxy.Request) bool { return r.Params.Get("ImageId") == ami }),
		"a failed AMI is not shared")
}

// TestTestStageCancelled: cancelling the run while the test command sleeps
// stops the command, terminates the instance (on a context the cancellation
// does not reach) and tags nothing.
func TestTestStageCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	id, err := it.runs.Start(ctx, starter.ManualRun{Pipeline: "testcancel", Ref: "main"})
	require.NoError(t, err)

	var ami string
	require.Eventually(t, func() bool {
		ami = launchedAMIOrEmpty(t, id)
		if ami == "" {
			return false
		}
		_, err := os.Stat(filepath.Join(it.stateDir, ami+".started"))
		return err == nil
	}, runTimeout/2, 100*time.Millisecond, "the test command of %s never started", id)
	require.NoError(t, it.temporal.CancelWorkflow(ctx, id, ""))

	start := time.Now()
	err = it.temporal.GetWorkflow(ctx, id, "").Get(ctx, nil)
	var canceled *temporal.CanceledError
	require.True(t, errors.As(err, &canceled), "%T: %v", err, err)
	t.Logf("cancelled in %s", time.Since(start))

	assertTerminated(t, testInstance(t, id))
	_, tagged := tagMap(image(t, "us-east-1", ami).Tags)[activities.TagTest]
	assert.False(t, tagged, "a cancelled test tags nothing")
}

// makeNetwork creates a VPC, a subnet and a security group in moto's
// us-east-1 for the testpass pipeline, which names them.
func makeNetwork(ctx context.Context, motoURL string) (subnet, group string, err error) {
	c := ec2.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(motoURL),
	})
	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.42.0.0/16")})
	if err != nil {
		return "", "", err
	}
	sn, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.42.1.0/24")})
	if err != nil {
		return "", "", err
	}
	sg, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName: aws.String("kiln-test"), Description: aws.String("kiln test instances"), VpcId: vpc.Vpc.VpcId,
	})
	if err != nil {
		return "", "", err
	}
	return aws.ToString(sn.Subnet.SubnetId), aws.ToString(sg.GroupId), nil
}

// testInstance is the one instance tagged kiln:run=id.
func testInstance(t *testing.T, id string) ec2types.Instance {
	t.Helper()
	out, err := ec2At("us-east-1").DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{
		Filters: []ec2types.Filter{{Name: aws.String("tag:" + activities.TagRun), Values: []string{id}}},
	})
	require.NoError(t, err)
	var all []ec2types.Instance
	for _, r := range out.Reservations {
		all = append(all, r.Instances...)
	}
	require.Len(t, all, 1, "instances tagged %s=%s", activities.TagRun, id)
	return all[0]
}

func assertTerminated(t *testing.T, inst ec2types.Instance) {
	t.Helper()
	require.NotNil(t, inst.State)
	assert.Equal(t, ec2types.InstanceStateNameTerminated, inst.State.Name, "%s", aws.ToString(inst.InstanceId))
}

// runInstances are the RunInstances requests that carried the ClientToken
// kiln derives for run id's first test instance: Packer's build instances
// carry none.
func runInstances(t *testing.T, id, ami string) []awsproxy.Request {
	t.Helper()
	token := activities.InstanceClientToken(id, "us-east-1", ami, 1)
	var out []awsproxy.Request
	for _, r := range it.proxy.Requests() {
		if r.Action == "RunInstances" && r.Params.Get("ClientToken") == token {
			out = append(out, r)
		}
	}
	return out
}

// launchedAMI is the AMI the run's test instance was launched from.
func launchedAMI(t *testing.T, id string) string {
	t.Helper()
	ami := launchedAMIOrEmpty(t, id)
	require.NotEmpty(t, ami, "no test instance of %s", id)
	require.Len(t, runInstances(t, id, ami), 1, "the test instance carried the derived ClientToken")
	return ami
}

// launchedAMIOrEmpty is launchedAMI before the instance may exist.
func launchedAMIOrEmpty(t *testing.T, id string) string {
	t.Helper()
	out, err := ec2At("us-east-1").DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{
		Filters: []ec2types.Filter{{Name: aws.String("tag:" + activities.TagRun), Values: []string{id}}},
	})
	require.NoError(t, err)
	for _, r := range out.Reservations {
		for _, inst := range r.Instances {
			return aws.ToString(inst.ImageId)
		}
	}
	return ""
}

// readState reads the lines a test command wrote to the state directory.
func readState(t *testing.T, name string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(it.stateDir, name))
	require.NoError(t, err)
	return strings.Split(strings.TrimRight(string(data), "\n"), "\n")
}

// testLog is where the worker writes a test attempt's log.
func testLog(id string, attempt int) string {
	return filepath.Join(filepath.Dir(bakeLog(id, attempt)), fmt.Sprintf("test-%d.log", attempt))
}
