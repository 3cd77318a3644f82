package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/workflows"
)

// TestClosingSummary: a finished run ends with what it made and where to
// see it; a reused AMI names the run that tested it.
func TestClosingSummary(t *testing.T) {
	p := workflows.Progress{Commit: "0123456789abcdef0123456789abcdef01234567", UI: "http://ui/namespaces/default/workflows/ami%2Fmain%2F1",
		Made: workflows.Made{AMIs: map[string]string{"us-east-1": "ami-1"}, Reused: true, ReusedFrom: "ami/main/0",
			Images:    []activities.ImageResult{{Name: "reg/app", Digest: "sha256:ab", Tags: []string{"1.2.3", "latest"}}},
			Templates: []string{"s3://bucket/app.yaml"}},
		Distribution: &workflows.DistributionProgress{Targets: []workflows.TargetProgress{
			{Region: "eu-west-1", Mode: "regional-copy", State: "succeeded", AMI: "ami-2"},
			{Account: "222222222222", Region: "eu-west-1", Mode: "share", State: "succeeded", AMI: "ami-2"},
		}},
		Approvals: []workflows.ApprovalProgress{{Stage: "publish", Approved: true, Decision: &workflows.Decision{By: "ada", Via: workflows.ViaCLI}}},
	}
	o := outcomeOf("ami/main/1", p, nil)
	assert.Equal(t, workflows.OutcomeSucceeded, o.Outcome)
	var out bytes.Buffer
	printSummary(&out, o)
	assert.Equal(t, strings.Join([]string{
		"  commit     0123456789abcdef0123456789abcdef01234567",
		"  AMI        reused ami-1 in us-east-1 (tested in run ami/main/0)",
		"  copy       eu-west-1 ami-2 (in the builder's account, for the shares there)",
		"  share      222222222222/eu-west-1 ami-2",
		"  image      reg/app@sha256:ab (tags 1.2.3, latest)",
		"  template   s3://bucket/app.yaml",
		"  approved   publish by ada via cli",
		"  web UI     http://ui/namespaces/default/workflows/ami%2Fmain%2F1",
		"",
	}, "\n"), out.String())
}

func TestOutcomeOf(t *testing.T) {
	rejected := workflows.Progress{Approvals: []workflows.ApprovalProgress{{Stage: "build", Decision: &workflows.Decision{By: "ada", Reason: "no"}}}}
	assert.Equal(t, workflows.OutcomeNotApproved, outcomeOf("r", rejected, nil).Outcome)
	failed := outcomeOf("r", workflows.Progress{Stage: "build"}, temporal.NewApplicationError("phase build: boom", "BuildFailed"))
	assert.Equal(t, RunOutcome{WorkflowID: "r", Outcome: workflows.OutcomeFailed, Stage: "build", Cause: "phase build: boom"}, failed)
	cancelled := outcomeOf("r", workflows.Progress{}, temporal.NewCanceledError("superseded"))
	assert.Equal(t, workflows.OutcomeCancelled, cancelled.Outcome)
	assert.Equal(t, "it was cancelled", cancelled.Cause)
	assert.Equal(t, "plain words", plain(errors.New("plain words")))
}

// TestTargetsBeforeNextStage: the copies' lines come under the distribute
// stage, before the publish stage's, even when one look finds both.
func TestTargetsBeforeNextStage(t *testing.T) {
	p := workflows.Progress{Stages: []workflows.StageProgress{
		{Name: "distribute", State: "succeeded"}, {Name: "publish", State: "running"}},
		Distribution: &workflows.DistributionProgress{Targets: []workflows.TargetProgress{
			{Account: "222222222222", Region: "eu-west-1", Mode: "copy", State: "succeeded", AMI: "ami-2"}}}}
	var out bytes.Buffer
	printProgress(&out, map[string]string{}, p)
	assert.Equal(t, "distribute succeeded\n  222222222222/eu-west-1 copy succeeded ami-2\npublish    running\n", out.String())
}
