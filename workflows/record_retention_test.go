//go:build record

package workflows_test

import (
	"testing"
	"testing/fstest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.temporal.io/sdk/client"

	"github.com/kiln-ci/kiln/internal/ami"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/test/motoserver"
	"github.com/kiln-ci/kiln/workflows"
)

// recRetirePipeline's lifecycle deletes its AMIs after a second but keeps
// the newest.
const recRetirePipeline = "replay-retire"

// recordRetentionScenarios records a retention run on moto: three bakes of
// the pipeline, the newest kept, the other two deleted with their snapshots.
func recordRetentionScenarios(t *testing.T) (*recorder, map[string]string) {
	moto := motoserver.Start(t)
	for _, kv := range [][2]string{
		{"AWS_ENDPOINT_URL", moto.URL}, {"AWS_ACCESS_KEY_ID", "testing"}, {"AWS_SECRET_ACCESS_KEY", "testing"},
		{"AWS_REGION", "us-east-1"}, {"AWS_EC2_METADATA_DISABLED", "true"},
	} {
		t.Setenv(kv[0], kv[1])
	}
	c := ec2.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(moto.URL),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
	for _, run := range []string{"r1", "r2", "r3"} {
		inst, err := c.RunInstances(t.Context(), &ec2.RunInstancesInput{ImageId: aws.String("ami-1e749f67"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		img, err := c.CreateImage(t.Context(), &ec2.CreateImageInput{InstanceId: inst.Instances[0].InstanceId, Name: aws.String(run)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.TerminateInstances(t.Context(), &ec2.TerminateInstancesInput{InstanceIds: []string{*inst.Instances[0].InstanceId}}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: []string{*img.ImageId}, Tags: []ec2types.Tag{
			{Key: aws.String(ami.TagPipeline), Value: aws.String(recRetirePipeline)}, {Key: aws.String(ami.TagRun), Value: aws.String(run)},
			{Key: aws.String(ami.TagRef), Value: aws.String("refs/heads/main")}}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond) // distinct creation times, a second apart
	}
	r := newRecorder(t, recFixture{
		files: fstest.MapFS{"ami.pkr.hcl": {Data: []byte("# not baked here\n")}},
		config: func(cloneURL string) *config.Config {
			return &config.Config{
				Repos: []config.Repo{{Name: recRepo, CloneURL: cloneURL, WebhookSecret: config.SecretRef{Env: "KILN_REPLAY_UNUSED"}}},
				Pipelines: []config.Pipeline{{Name: recRetirePipeline, Repo: recRepo,
					Stages:    config.Stages{Bake: &config.BakeStage{Template: "ami.pkr.hcl", Region: "us-east-1"}},
					Lifecycle: &config.Lifecycle{Retention: config.Retention{Keep: 1, DeleteAfter: config.Age(time.Second)}}}},
			}
		},
	})
	id := workflows.RetentionWorkflowID(recRetirePipeline) + "/replay"
	run, err := r.c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue},
		workflows.RetentionWorkflowName, workflows.RetentionInput{Pipeline: recRetirePipeline})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.RetentionResult
	if err := run.Get(t.Context(), &res); err != nil || res.Retired != 2 || len(res.Failed) > 0 {
		t.Fatalf("retention: %v, retired %d, failed %v", err, res.Retired, res.Failed)
	}
	return r, map[string]string{"retention-deleted": id}
}
