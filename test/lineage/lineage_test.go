// Package lineage tests AMI lineage on real parts: a base AMI baked and
// tested by kiln, whose pass starts the pipeline its AMI triggers name; that
// pipeline's Packer 1.9.4 bake finds the base through kiln's own plugin
// (data "kiln-ami"), and kiln records the base as its parent. The embedded
// Temporal server, a real kiln worker, Packer 1.9.4 and packer-plugin-kiln
// built from this repository, and a private moto_server behind the
// recording proxy.
package lineage

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/ami"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/gitx"
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/test/awsproxy"
	"github.com/kiln-ci/kiln/test/motoserver"
	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/worker"
	"github.com/kiln-ci/kiln/workflows"
)

const kilnYAML = `
repos:
  - name: lineage/repo
    clone_url: {{REPO}}
    webhook_secret: {env: KILN_LINEAGE_UNUSED}
pipelines:
  - name: base
    repo: lineage/repo
    triggers: {manual: true}
    stages:
      bake: {template: base.pkr.hcl, region: us-east-1, timeout: 5m, vars: {endpoint: {{ENDPOINT}}}}
      test: {commands: ["echo testing $KILN_AMI_ID"], timeout: 5m}
    lifecycle: {delete_after: 1s}
  - name: app
    repo: lineage/repo
    triggers: {ami: [{pipeline: base}]}
    stages:
      bake: {template: app.pkr.hcl, region: us-east-1, timeout: 5m, vars: {endpoint: {{ENDPOINT}}}}
      test: {commands: ["echo testing $KILN_AMI_ID on $KILN_BASE_AMI"], timeout: 5m}
    lifecycle: {deprecate_after: 1s}
`

// TestKilnAMILineageAndPrune: kiln bakes and tests base; its pass starts
// app, whose bake takes source_ami from data.kiln-ami. Packer launches its
// build instance from the base AMI, the template's check that the data
// source and the trigger agree holds (or the bake fails), and app's AMI
// names base's AMI and run as its parent. The lineage walks both ways;
// retention keeps base while app is built on it, deprecates app, and
// deletes base, with its snapshots, once app is gone.
func TestKilnAMILineageAndPrune(t *testing.T) {
	packer := packer19(t)
	moto := motoserver.Start(t)
	proxy := awsproxy.Start(t, moto.URL)
	// moto gives the AMIs it makes a "standard" root device, which Packer
	// 1.9's amazon-ebs refuses as a source; on AWS they are EBS-backed.
	proxy.Answer("EnableImageDeprecation", awsproxy.EC2Return) // moto has neither
	proxy.Answer("DisableImage", awsproxy.EC2Return)
	proxy.Rewrite("DescribeImages", func(_ awsproxy.Request, body []byte) []byte {
		return []byte(strings.ReplaceAll(string(body), "<rootDeviceType>standard</rootDeviceType>", "<rootDeviceType>ebs</rootDeviceType>"))
	})
	for _, kv := range []string{"AWS_ENDPOINT_URL=" + proxy.URL, "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing",
		"AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true", "KILN_LINEAGE_UNUSED=x"} {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	root := t.TempDir()
	repo := filepath.Join(root, "repo")
	_, err := gitx.InitRepo(ctx, repo, os.DirFS("testdata/repo"), "initial commit")
	require.NoError(t, err)
	cfg, err := config.Parse("kiln.yaml", []byte(strings.NewReplacer("{{REPO}}", strconv.Quote(repo),
		"{{ENDPOINT}}", strconv.Quote(proxy.URL)).Replace(kilnYAML)))
	require.NoError(t, err)

	tmp, err := testkit.StartTemporal(ctx)
	require.NoError(t, err)
	t.Cleanup(tmp.Close)
	w := worker.New(tmp.Client, worker.Options{Config: cfg, DataDir: filepath.Join(root, "data"), Log: zerolog.Nop(),
		PackerBinary: packer, PackerPlugins: buildPlugin(t)})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	runs := &starter.Runs{Client: tmp.Client}
	baseID, err := runs.Start(ctx, starter.ManualRun{Pipeline: "base", Ref: "main"})
	require.NoError(t, err)
	var base workflows.PipelineResult
	require.NoError(t, tmp.Client.GetWorkflow(ctx, baseID, "").Get(ctx, &base), "run %s", baseID)
	baseAMI := base.Bake.AMI()
	require.True(t, base.Test.Passed)
	require.Len(t, base.Triggered, 1, "base's tested AMI starts app")
	appID := base.Triggered[0]
	assert.Equal(t, "app/HEAD/"+baseAMI, appID, "the run's ID carries the base AMI")

	var app workflows.PipelineResult
	require.NoError(t, tmp.Client.GetWorkflow(ctx, appID, "").Get(ctx, &app), "run %s", appID)
	appAMI := app.Bake.AMI()
	require.NotEqual(t, baseAMI, appAMI)

	var sources []string
	for _, r := range proxy.Requests() {
		// Packer's build instances; kiln's test instances carry its token.
		if r.Action == "RunInstances" && r.Status == 200 && !strings.HasPrefix(r.Params.Get("ClientToken"), "kiln-test-") {
			sources = append(sources, r.Params.Get("ImageId"))
		}
	}
	assert.Equal(t, []string{"ami-1e749f67", baseAMI}, sources, "Packer built base on moto's AMI, and app on base's")

	tags := imageTags(t, proxy.URL, appAMI)
	assert.Equal(t, baseAMI, tags[ami.TagParent])
	assert.Equal(t, "us-east-1", tags[ami.TagParentRegion])
	assert.Equal(t, baseID, tags[ami.TagParentRun])
	assert.Equal(t, ami.TestPassed, tags[ami.TagTest])
	assert.Empty(t, app.Triggered, "nothing depends on app")

	var lineage activities.Lineage
	require.NoError(t, runs.Ask(ctx, client.StartWorkflowOptions{ID: "lineage-app"}, workflows.LineageWorkflowName,
		activities.LineageInput{AMI: appAMI, Region: "us-east-1"}, &lineage))
	require.Len(t, lineage.Ancestors, 1)
	assert.Equal(t, baseAMI, lineage.Ancestors[0].ID)
	assert.Equal(t, "base", lineage.Ancestors[0].Pipeline)
	assert.Empty(t, lineage.Descendants)
	lineage = activities.Lineage{}
	require.NoError(t, runs.Ask(ctx, client.StartWorkflowOptions{ID: "lineage-base"}, workflows.LineageWorkflowName,
		activities.LineageInput{AMI: baseAMI, Region: "us-east-1"}, &lineage))
	assert.Empty(t, lineage.Ancestors)
	require.Len(t, lineage.Descendants, 1)
	assert.Equal(t, appAMI, lineage.Descendants[0].ID)

	// The same through the CLI, as a person would ask.
	kiln := kilnCLI(t, tmp.Server.Address())
	out := kiln("amis", "--pipeline", "app")
	assert.Regexp(t, `(?m)^ACCOUNT +REGION +AMI +STATE +CREATED +TEST +COMMIT +REF +PARENT$`, out)
	assert.Regexp(t, `(?m)^123456789012 +us-east-1 +`+appAMI+` +available +\S+ \S+ +passed +[0-9a-f]{12} +refs/heads/main +`+baseAMI+`$`, out)
	out = kiln("amis", "--lineage", appAMI, "--region", "us-east-1")
	assert.Regexp(t, `(?s)^`+baseAMI+`  us-east-1  base  passed .*\n   \* `+appAMI+`  us-east-1  app  passed `, out)
	out = kiln("amis", "prune", "--pipeline", "base", "--dry-run")
	assert.Regexp(t, `(?m)^keep +`+baseAMI+` +123456789012 +us-east-1 +\S+ +in use: the base of `+appAMI+` \(app\)$`, out)

	prune := func(id, pipeline string, dryRun bool) map[string]string {
		var res workflows.RetentionResult
		require.NoError(t, runs.Ask(ctx, client.StartWorkflowOptions{ID: id}, workflows.RetentionWorkflowName,
			workflows.RetentionInput{Pipeline: pipeline, DryRun: dryRun}, &res))
		require.Empty(t, res.Failed)
		got := map[string]string{}
		for _, d := range res.Decisions {
			got[d.Image.ID] = d.Action + ": " + d.Reason
		}
		return got
	}
	time.Sleep(time.Second) // past delete_after and deprecate_after
	assert.Equal(t, map[string]string{baseAMI: "keep: in use: the base of " + appAMI + " (app)"}, prune("base-1", "base", false))
	assert.Equal(t, map[string]string{appAMI: "deprecate: older than 1s"}, prune("app-1", "app", false))
	assert.Equal(t, 1, proxy.Count("EnableImageDeprecation", func(r awsproxy.Request) bool { return r.Params.Get("ImageId") == appAMI }))

	snaps := snapshotsOf(t, proxy.URL, baseAMI)
	require.NotEmpty(t, snaps)
	_, err = ec2Client(proxy.URL).DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(appAMI)})
	require.NoError(t, err, "app's AMI goes")
	assert.Equal(t, map[string]string{baseAMI: "delete: older than 1s"}, prune("base-2", "base", true), "the dry run plans")
	assert.Equal(t, map[string]string{baseAMI: "delete: older than 1s"}, prune("base-3", "base", false))
	_, err = ec2Client(proxy.URL).DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: snaps})
	assert.ErrorContains(t, err, "InvalidSnapshot.NotFound", "base's snapshots went with it")
	assert.Empty(t, prune("base-4", "base", true), "nothing is left to retire")
}

func ec2Client(endpoint string) *ec2.Client {
	return ec2.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
}

func snapshotsOf(t *testing.T, endpoint, id string) []string {
	out, err := ec2Client(endpoint).DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{id}})
	require.NoError(t, err)
	require.Len(t, out.Images, 1)
	var snaps []string
	for _, m := range out.Images[0].BlockDeviceMappings {
		if m.Ebs != nil && m.Ebs.SnapshotId != nil {
			snaps = append(snaps, *m.Ebs.SnapshotId)
		}
	}
	return snaps
}

// packer19 is Packer 1.9.4, which test/run builds: Debian's 1.6.6 loads no
// plugins.
func packer19(t *testing.T) string {
	p := os.Getenv("KILN_PACKER_1_9")
	if p == "" {
		home, _ := os.UserHomeDir()
		p = filepath.Join(home, ".cache", "kiln-ci", "packer-v1.9.4", "packer")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("Packer 1.9.4 is not at %s (KILN_PACKER_1_9): ./test/run builds it", p)
	}
	return p
}

// buildPlugin builds packer-plugin-kiln into a directory of its own, which
// becomes the bakes' PACKER_PLUGIN_PATH.
func buildPlugin(t *testing.T) string {
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "packer-plugin-kiln"), ".")
	cmd.Dir = filepath.Join("..", "..", "packer-plugin-kiln")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build packer-plugin-kiln: %v\n%s", err, out)
	}
	return dir
}

func imageTags(t *testing.T, endpoint, id string) map[string]string {
	out, err := ec2Client(endpoint).DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{id}})
	require.NoError(t, err)
	require.Len(t, out.Images, 1, "image %s", id)
	m := map[string]string{}
	for _, tag := range out.Images[0].Tags {
		m[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	return m
}

// kilnCLI builds kiln and returns a function that runs it against the
// Temporal server at address and returns its stdout, failing on exit 1.
func kilnCLI(t *testing.T, address string) func(args ...string) string {
	bin, err := testkit.BuildKiln(t.TempDir())
	require.NoError(t, err)
	return func(args ...string) string {
		cmd := exec.Command(bin, append(args, "--temporal-address", address)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		require.NoError(t, err, "kiln %v: %s", args, stderr.String())
		t.Logf("kiln %s\n%s%s", strings.Join(args, " "), out, stderr.String())
		return string(out)
	}
}
