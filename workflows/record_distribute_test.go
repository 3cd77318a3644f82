//go:build record

package workflows_test

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/test/awsproxy"
	"github.com/kiln-ci/kiln/test/motoserver"
	"github.com/kiln-ci/kiln/workflows"
)

// The distribute group's pipelines: both bake and distribute to the same
// targets, one of whose roles the proxy denies; they differ in retry window.
const (
	recDistPipeline       = "replay-dist"
	recDistExpirePipeline = "replay-dist-expire"
	recCopyRole           = "arn:aws:iam::222222222222:role/kiln-distribute"
	recDeniedRole         = "arn:aws:iam::444444444444:role/kiln-denied"
	recKMSAlias           = "alias/kiln-ami"
)

// recordDistributeScenarios records two distributions with a denied target:
// one an operator retries once the role works (it completes), one nobody
// retries (it fails when its retry window ends).
func recordDistributeScenarios(t *testing.T) (*recorder, map[string]string) {
	tmpl, err := os.ReadFile(filepath.Join("testdata", "record", "ami.pkr.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	moto := motoserver.Start(t)
	proxy := awsproxy.Start(t, moto.URL)
	proxy.ShareAcrossAccounts()
	var denied atomic.Bool
	denied.Store(true)
	proxy.Fail(awsproxy.Rule{Action: "AssumeRole", Kind: awsproxy.Denied, Times: -1,
		Match: func(r awsproxy.Request) bool { return denied.Load() && r.Params.Get("RoleArn") == recDeniedRole }})
	for _, kv := range [][2]string{
		{"AWS_ENDPOINT_URL", proxy.URL},
		{"AWS_ACCESS_KEY_ID", "testing"},
		{"AWS_SECRET_ACCESS_KEY", "testing"},
		{"AWS_REGION", "us-east-1"},
		{"AWS_EC2_METADATA_DISABLED", "true"},
	} {
		t.Setenv(kv[0], kv[1])
	}
	recMakeKeys(t, moto.URL)
	r := newRecorder(t, recFixture{
		files:  fstest.MapFS{"ami.pkr.hcl": {Data: tmpl}},
		config: func(cloneURL string) *config.Config { return recDistConfig(cloneURL, proxy.URL) },
		packer: recPacker,
	})
	runs := map[string]string{}

	runs["distribute-expired"] = r.start(recDistExpirePipeline, "dist-expire")
	var appErr *temporal.ApplicationError
	if err := r.wait(runs["distribute-expired"], &appErr); appErr.Type() != workflows.ErrDistributionFailed {
		t.Fatalf("distribute-expired ended with %v", err)
	}

	id := r.start(recDistPipeline, "dist-retry")
	runs["distribute-retried"] = id
	r.poll(id+" waiting for retry", func(ctx context.Context) (bool, error) {
		v, err := r.c.QueryWorkflow(ctx, id, "", workflows.QueryProgress)
		if err != nil {
			return false, err
		}
		var p workflows.Progress
		err = v.Get(&p)
		return err == nil && p.Distribution != nil && p.Distribution.WaitingForRetry, err
	})
	denied.Store(false)
	if _, err := (&starter.Runs{Client: r.c}).Retry(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	r.wait(id, nil)
	return r, runs
}

// recDistConfig bakes in us-east-1 and distributes: copies for 222222222222
// in two regions, one denied account's copy, and shares for 333333333333 in
// the bake region and in eu-west-1.
func recDistConfig(cloneURL, endpoint string) *config.Config {
	targets := []config.Target{
		{Account: "222222222222", Role: recCopyRole, Mode: config.ModeCopy, Regions: []config.TargetRegion{
			{Region: "eu-west-1", KMSKey: recKMSAlias}, {Region: "us-west-2", KMSKey: recKMSAlias}}},
		{Account: "444444444444", Role: recDeniedRole, Mode: config.ModeCopy, Regions: []config.TargetRegion{
			{Region: "eu-west-1", KMSKey: recKMSAlias}}},
		{Account: "333333333333", Mode: config.ModeShare, Regions: []config.TargetRegion{
			{Region: "us-east-1"}, {Region: "eu-west-1"}}},
	}
	pipeline := func(name string, window time.Duration) config.Pipeline {
		return config.Pipeline{Name: name, Repo: recRepo, Triggers: config.Triggers{Branch: []string{"main"}},
			Stages: config.Stages{
				Bake: &config.BakeStage{Template: "ami.pkr.hcl", Region: "us-east-1", Timeout: config.Duration(5 * time.Minute),
					Vars: map[string]string{"endpoint": endpoint}},
				Distribute: &config.DistributeStage{Targets: targets, RetryWindow: config.Duration(window)},
			}}
	}
	return &config.Config{
		File:  "kiln.yaml (replay recorder, distribute)",
		Repos: []config.Repo{{Name: recRepo, CloneURL: cloneURL}},
		Pipelines: []config.Pipeline{
			pipeline(recDistPipeline, 10*time.Minute),
			pipeline(recDistExpirePipeline, 3*time.Second),
		},
	}
}

// recMakeKeys creates the copy targets' KMS keys in moto.
func recMakeKeys(t *testing.T, motoURL string) {
	for account, regions := range map[string][]string{
		"222222222222": {"eu-west-1", "us-west-2"},
		"444444444444": {"eu-west-1"},
	} {
		for _, region := range regions {
			cfg := awsx.AssumeRole(aws.Config{
				Region: region, BaseEndpoint: aws.String(motoURL),
				Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", ""),
			}, "arn:aws:iam::"+account+":role/kiln-test", "kiln-recorder")
			c := kms.NewFromConfig(cfg)
			key, err := c.CreateKey(t.Context(), &kms.CreateKeyInput{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.CreateAlias(t.Context(), &kms.CreateAliasInput{AliasName: aws.String(recKMSAlias), TargetKeyId: key.KeyMetadata.KeyId}); err != nil {
				t.Fatal(err)
			}
		}
	}
}
