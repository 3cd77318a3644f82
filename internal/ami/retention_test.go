package ami_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/ami"
	"github.com/kiln-ci/kiln/test/awsproxy"
	"github.com/kiln-ci/kiln/test/motoserver"
)

var now = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func daysAgo(n int) time.Time { return now.Add(-time.Duration(n) * 24 * time.Hour) }

// bakeOf is one bake's images: the source in 111111111111/us-east-1 and a
// copy in 222222222222/eu-west-1, made a minute later.
func bakeOf(run, ref string, age int) []ami.Image {
	return []ami.Image{
		{ID: "ami-" + run + "-src", Account: "111111111111", Region: "us-east-1", State: "available", Created: daysAgo(age), Run: run, Ref: ref},
		{ID: "ami-" + run + "-copy", Account: "222222222222", Region: "eu-west-1", State: "available",
			Created: daysAgo(age).Add(time.Minute), Run: run, Ref: ref, Source: "ami-" + run + "-src"},
	}
}

func actions(ds []ami.Decision) map[string]string {
	m := map[string]string{}
	for _, d := range ds {
		m[d.Image.ID] = d.Action + ": " + d.Reason
	}
	return m
}

// TestRetentionPlan: a bake's copies age with it; a ref's newest bakes,
// young bakes, pending and in-use images are kept with their reason; the
// rest take the furthest step due that they have not taken; a ref policy
// overrides the pipeline's.
func TestRetentionPlan(t *testing.T) {
	var images []ami.Image
	for run, age := range map[string]int{"r1": 200, "r2": 100, "r3": 45, "r4": 35, "r5": 20, "r6": 2} {
		images = append(images, bakeOf(run, "refs/heads/main", age)...)
	}
	images = append(images, bakeOf("pr", "refs/pull/7/head", 3)...)
	// r3 was deprecated already; r2's source is disabled; r4's copy is
	// still pending; r1's copy is in a launch template.
	for i := range images {
		switch images[i].ID {
		case "ami-r3-src", "ami-r3-copy":
			images[i].Deprecated = daysAgo(5)
		case "ami-r2-src":
			images[i].State = "disabled"
		case "ami-r4-copy":
			images[i].State = "pending"
		}
	}
	policy := func(ref string) ami.Policy {
		if strings.HasPrefix(ref, "refs/pull/") {
			return ami.Policy{DeleteAfter: 24 * time.Hour}
		}
		return ami.Policy{Keep: 2, KeepFor: 7 * 24 * time.Hour, DeprecateAfter: 30 * 24 * time.Hour,
			DisableAfter: 60 * 24 * time.Hour, DeleteAfter: 180 * 24 * time.Hour}
	}
	inUse := map[string]string{"ami-r1-copy": "launch template web version 3"}

	got := actions(ami.Plan(images, policy, inUse, now))
	assert.Equal(t, map[string]string{
		"ami-r1-src":  "delete: older than 180d",
		"ami-r1-copy": "keep: in use: launch template web version 3",
		"ami-r2-src":  "keep: no step due", // disabled already, not old enough to delete
		"ami-r2-copy": "disable: older than 60d",
		"ami-r3-src":  "keep: no step due", // deprecated already
		"ami-r3-copy": "keep: no step due",
		"ami-r4-src":  "deprecate: older than 30d",
		"ami-r4-copy": "keep: still pending",
		"ami-r5-src":  "keep: one of the 2 newest of refs/heads/main",
		"ami-r5-copy": "keep: one of the 2 newest of refs/heads/main",
		"ami-r6-src":  "keep: one of the 2 newest of refs/heads/main",
		"ami-r6-copy": "keep: one of the 2 newest of refs/heads/main",
		"ami-pr-src":  "delete: older than 1d",
		"ami-pr-copy": "delete: older than 1d",
	}, got)

	// Keep counts bakes, not images, and KeepFor keeps young bakes past it.
	policy2 := func(string) ami.Policy {
		return ami.Policy{Keep: 1, KeepFor: 30 * 24 * time.Hour, DeleteAfter: 24 * time.Hour}
	}
	got = actions(ami.Plan(images, policy2, nil, now))
	assert.Equal(t, "keep: one of the 1 newest of refs/heads/main", got["ami-r6-copy"])
	assert.Equal(t, "keep: younger than 30d", got["ami-r5-src"])
	assert.Equal(t, "delete: older than 1d", got["ami-r4-src"])
}

// motoEC2 is an EC2 client for moto through the proxy, which answers the
// two retention calls moto lacks.
func motoEC2(t *testing.T) (*ec2.Client, *awsproxy.Proxy) {
	moto := motoserver.Start(t)
	proxy := awsproxy.Start(t, moto.URL)
	proxy.Answer("EnableImageDeprecation", awsproxy.EC2Return)
	proxy.Answer("DisableImage", awsproxy.EC2Return)
	return ec2.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(proxy.URL),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")}), proxy
}

// bakeInMoto makes an AMI of pipeline from an instance, tagged as kiln's.
func bakeInMoto(t *testing.T, c *ec2.Client, pipeline, run string) string {
	ctx := context.Background()
	inst, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-1e749f67"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	require.NoError(t, err)
	img, err := c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: inst.Instances[0].InstanceId, Name: aws.String(run)})
	require.NoError(t, err)
	_, err = c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{aws.ToString(inst.Instances[0].InstanceId)}})
	require.NoError(t, err)
	_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{aws.ToString(img.ImageId)}, Tags: []ec2types.Tag{
		{Key: aws.String(ami.TagPipeline), Value: aws.String(pipeline)}, {Key: aws.String(ami.TagRun), Value: aws.String(run)},
		{Key: aws.String(ami.TagRef), Value: aws.String("refs/heads/main")}}})
	require.NoError(t, err)
	return aws.ToString(img.ImageId)
}

// TestRetentionStepsAgainstMoto: List finds a pipeline's AMIs with their
// snapshots; InUse names the launch template, instance and dependent that
// use them, and ParametersInUse the SSM parameter; Retire deprecates and disables (asserted on the requests, as
// moto lacks both) and deletes an image with its snapshots, and a retried
// delete of what is gone succeeds.
func TestRetentionStepsAgainstMoto(t *testing.T) {
	ctx := context.Background()
	c, proxy := motoEC2(t)
	old := bakeInMoto(t, c, "base", "base/main/1")
	tmpl := bakeInMoto(t, c, "base", "base/main/2")
	running := bakeInMoto(t, c, "base", "base/main/3")
	parent := bakeInMoto(t, c, "base", "base/main/4")
	param := bakeInMoto(t, c, "base", "base/main/5")
	bakeInMoto(t, c, "other", "other/main/1")

	images, err := ami.List(ctx, c, "111111111111", "us-east-1", "base")
	require.NoError(t, err)
	require.Len(t, images, 5, "the other pipeline's AMI is not listed")
	byID := map[string]ami.Image{}
	for _, im := range images {
		byID[im.ID] = im
		assert.Equal(t, "base", im.Pipeline)
		assert.Equal(t, "111111111111", im.Account)
		assert.False(t, im.Created.IsZero())
	}
	require.NotEmpty(t, byID[old].Snapshots, "moto's image has a snapshot")

	_, err = c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("web"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(tmpl)}})
	require.NoError(t, err)
	_, err = c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(running), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	require.NoError(t, err)
	child := bakeInMoto(t, c, "app", "app/HEAD/1")
	_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{child}, Tags: []ec2types.Tag{
		{Key: aws.String(ami.TagParent), Value: aws.String(parent)}, {Key: aws.String(ami.TagParentRegion), Value: aws.String("us-east-1")}}})
	require.NoError(t, err)

	used, err := ami.InUse(ctx, c, "us-east-1")
	require.NoError(t, err)
	s := ssm.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(proxy.URL),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
	_, err = s.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/kiln/base/ami"), Value: aws.String(param),
		Type: ssmtypes.ParameterTypeString})
	require.NoError(t, err)
	require.NoError(t, ami.ParametersInUse(ctx, s, "us-east-1", []string{"/kiln/base/ami", "/kiln/not/set"}, used))
	assert.Equal(t, "SSM parameter /kiln/base/ami", used[param])
	assert.Equal(t, "launch template web version 1", used[tmpl])
	assert.Contains(t, used[running], "instance i-")
	assert.Equal(t, "the base of "+child+" (app)", used[parent])
	assert.NotContains(t, used, old)

	require.NoError(t, ami.Retire(ctx, c, ami.Decision{Image: byID[old], Action: ami.ActionDeprecate}, now))
	require.NoError(t, ami.Retire(ctx, c, ami.Decision{Image: byID[old], Action: ami.ActionDisable}, now))
	require.NoError(t, ami.Retire(ctx, c, ami.Decision{Image: byID[old], Action: ami.ActionDelete}, now))
	require.NoError(t, ami.Retire(ctx, c, ami.Decision{Image: byID[old], Action: ami.ActionDelete}, now), "a retried delete")

	deprecations := proxy.Requests()
	var sent []string
	for _, r := range deprecations {
		switch r.Action {
		case "EnableImageDeprecation":
			sent = append(sent, r.Action+" "+r.Params.Get("ImageId")+" "+r.Params.Get("DeprecateAt"))
		case "DisableImage", "DeregisterImage":
			sent = append(sent, r.Action+" "+r.Params.Get("ImageId"))
		case "DeleteSnapshot":
			sent = append(sent, r.Action+" "+r.Params.Get("SnapshotId"))
		}
	}
	snap := byID[old].Snapshots[0]
	assert.Equal(t, []string{
		"EnableImageDeprecation " + old + " 2026-12-06T12:01:00Z", "DisableImage " + old,
		"DeregisterImage " + old, "DeleteSnapshot " + snap, "DeregisterImage " + old, "DeleteSnapshot " + snap,
	}, sent)
	left, err := ami.List(ctx, c, "111111111111", "us-east-1", "base")
	require.NoError(t, err)
	assert.Len(t, left, 4, "the deleted image is gone")
	_, err = c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snap}})
	assert.ErrorContains(t, err, "InvalidSnapshot.NotFound", "its snapshot is gone")
}
