//go:build record

package workflows_test

import (
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/test/awsproxy"
	"github.com/kiln-ci/kiln/test/motoserver"
	"github.com/kiln-ci/kiln/workflows"
)

// recUpdatesPipeline copies to 222222222222 in eu-west-1 and then points
// the account's SSM parameter and launch template at the copy.
const recUpdatesPipeline = "replay-dist-updates"

// recordUpdateScenarios records a distribution whose target updates its
// SSM parameter and launch template after the copy.
func recordUpdateScenarios(t *testing.T) (*recorder, map[string]string) {
	tmpl, err := os.ReadFile(filepath.Join("testdata", "record", "ami.pkr.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	moto := motoserver.Start(t)
	proxy := awsproxy.Start(t, moto.URL)
	proxy.ShareAcrossAccounts()
	for _, kv := range [][2]string{
		{"AWS_ENDPOINT_URL", proxy.URL}, {"AWS_ACCESS_KEY_ID", "testing"}, {"AWS_SECRET_ACCESS_KEY", "testing"},
		{"AWS_REGION", "us-east-1"}, {"AWS_EC2_METADATA_DISABLED", "true"},
	} {
		t.Setenv(kv[0], kv[1])
	}
	recMakeKeys(t, moto.URL)
	role := awsx.AssumeRole(aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String(moto.URL),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")},
		"arn:aws:iam::222222222222:role/kiln-test", "kiln-recorder")
	if _, err := ec2.NewFromConfig(role).CreateLaunchTemplate(t.Context(), &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("replay"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String("ami-1e749f67"), InstanceType: ec2types.InstanceTypeT3Micro},
	}); err != nil {
		t.Fatal(err)
	}
	r := newRecorder(t, recFixture{
		files: fstest.MapFS{"ami.pkr.hcl": {Data: tmpl}},
		config: func(cloneURL string) *config.Config {
			return &config.Config{
				File:  "kiln.yaml (replay recorder, distribute updates)",
				Repos: []config.Repo{{Name: recRepo, CloneURL: cloneURL}},
				Pipelines: []config.Pipeline{{Name: recUpdatesPipeline, Repo: recRepo, Triggers: config.Triggers{Branch: []string{"main"}},
					Stages: config.Stages{
						Bake: &config.BakeStage{Template: "ami.pkr.hcl", Region: "us-east-1", Timeout: config.Duration(5 * time.Minute),
							Vars: map[string]string{"endpoint": proxy.URL}},
						Distribute: &config.DistributeStage{Targets: []config.Target{{
							Account: "222222222222", Role: recCopyRole, Mode: config.ModeCopy,
							Regions:        []config.TargetRegion{{Region: "eu-west-1", KMSKey: recKMSAlias}},
							SSMParameter:   "/kiln/replay/ami",
							LaunchTemplate: &config.LaunchTemplate{Name: "replay", SetDefault: true},
						}}},
					}}},
			}
		},
		packer: recPacker,
	})
	id := r.start(recUpdatesPipeline, "dist-updates")
	r.wait(id, nil)
	var res workflows.PipelineResult
	if err := r.c.GetWorkflow(t.Context(), id, "").Get(t.Context(), &res); err != nil || res.Distribution == nil || len(res.Distribution.Updates) != 1 {
		t.Fatalf("distribute-updated: %v, %+v", err, res.Distribution)
	}
	return r, map[string]string{"distribute-updated": id}
}
