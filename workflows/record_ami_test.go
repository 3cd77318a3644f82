//go:build record

package workflows_test

import (
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/test/motoserver"
)

// recAMIPipeline builds, bakes an AMI with Packer and tests it.
const recAMIPipeline = "replay-ami"

// recPacker is Debian's packer 1.6.6, the one test/ami runs.
const recPacker = "/usr/bin/packer"

// recTestCommands are the test stage's commands. Like recBuildspec they behave
// by run ID: IDs with "exit4" fail the test. (Keep "fail" and "slow" out of
// these IDs: the build stage would act on them.)
var recTestCommands = []string{
	`test -n "$KILN_AMI_ID" && test -n "$KILN_INSTANCE_ID" && test -n "$KILN_REGION"`,
	`case "$KILN_RUN_ID" in *exit4*) echo "testing $KILN_AMI_ID fails"; exit 4 ;; esac`,
}

// recordAMIScenarios records runs of a build, bake and test pipeline, baking
// with real Packer against a private moto: one whose test passes and one
// whose test command exits 4.
func recordAMIScenarios(t *testing.T) (*recorder, map[string]string) {
	if _, err := os.Stat(recPacker); err != nil {
		t.Fatalf("packer not found at %s: apt-get install -y packer", recPacker)
	}
	tmpl, err := os.ReadFile(filepath.Join("testdata", "record", "ami.pkr.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	moto := motoserver.Start(t)
	// The worker's AWS SDK reads the environment on every activity, and
	// Packer inherits it.
	for _, kv := range [][2]string{
		{"AWS_ENDPOINT_URL", moto.URL},
		{"AWS_ACCESS_KEY_ID", "testing"},
		{"AWS_SECRET_ACCESS_KEY", "testing"},
		{"AWS_REGION", "us-east-1"},
		{"AWS_EC2_METADATA_DISABLED", "true"},
	} {
		t.Setenv(kv[0], kv[1])
	}
	r := newRecorder(t, recFixture{
		files: fstest.MapFS{
			"buildspec.yml": {Data: []byte(recBuildspec)},
			"ami.pkr.hcl":   {Data: tmpl},
		},
		config: func(cloneURL string) *config.Config { return recAMIConfig(cloneURL, moto.URL) },
		packer: recPacker,
	})
	runs := map[string]string{} // scenario -> workflow ID

	// The failing run goes first: a bake reuses an AMI of the same pipeline
	// and commit that passed its test, and test-failed must bake its own.
	runs["test-failed"] = r.start(recAMIPipeline, "ami-exit4")
	var appErr *temporal.ApplicationError
	if err := r.wait(runs["test-failed"], &appErr); appErr.Type() != activities.ErrAMITestFailed {
		t.Fatalf("test-failed ended with %v", err)
	}

	runs["bake-test-passed"] = r.start(recAMIPipeline, "ami-pass")
	r.wait(runs["bake-test-passed"], nil)
	return r, runs
}

// recAMIConfig is the AMI group's kiln.yaml: one pipeline on main whose bake
// and test reach moto at endpoint. The test stage names no subnet or
// security groups; moto launches without them.
func recAMIConfig(cloneURL, endpoint string) *config.Config {
	return &config.Config{
		File:  "kiln.yaml (replay recorder, AMI)",
		Repos: []config.Repo{{Name: recRepo, CloneURL: cloneURL}},
		Pipelines: []config.Pipeline{{
			Name: recAMIPipeline, Repo: recRepo, Triggers: config.Triggers{Branch: []string{"main"}},
			Stages: config.Stages{
				Build: &config.BuildStage{Buildspec: config.BuildspecSource{Path: "buildspec.yml"}, Timeout: config.Duration(5 * time.Minute)},
				Bake: &config.BakeStage{Template: "ami.pkr.hcl", Region: "us-east-1", Timeout: config.Duration(5 * time.Minute),
					Vars: map[string]string{"endpoint": endpoint}},
				Test: &config.TestStage{Commands: recTestCommands, Timeout: config.Duration(2 * time.Minute)},
			},
		}},
	}
}
