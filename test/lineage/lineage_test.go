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
  - name: app
    repo: lineage/repo
    triggers: {ami: [{pipeline: base}]}
    stages:
      bake: {template: app.pkr.hcl, region: us-east-1, timeout: 5m, vars: {endpoint: {{ENDPOINT}}}}
      test: {commands: ["echo testing $KILN_AMI_ID on $KILN_BASE_AMI"], timeout: 5m}
`

// TestKilnAMILineage: kiln bakes and tests base; its pass starts app, whose
// bake takes source_ami from data.kiln-ami. Packer launches its build
// instance from the base AMI, the template's check that the data source and
// the trigger agree holds (or the bake fails), and app's AMI names base's
// AMI and run as its parent.
func TestKilnAMILineage(t *testing.T) {
	packer := packer19(t)
	moto := motoserver.Start(t)
	proxy := awsproxy.Start(t, moto.URL)
	// moto gives the AMIs it makes a "standard" root device, which Packer
	// 1.9's amazon-ebs refuses as a source; on AWS they are EBS-backed.
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
	c := ec2.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
	out, err := c.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{id}})
	require.NoError(t, err)
	require.Len(t, out.Images, 1, "image %s", id)
	m := map[string]string{}
	for _, tag := range out.Images[0].Tags {
		m[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	return m
}
