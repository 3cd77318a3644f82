package workflows_test

import (
	"context"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/workflows"
)

// forkPR is a pull request from a fork, which the plan finds untrusted.
var forkPR = event.Event{
	Kind: event.KindReview, Repo: "acme/widget", Ref: "refs/pull/7/head", Branch: "feature",
	Commit: testCommit, DeliveryID: "delivery-7",
	PullRequest: &event.PullRequest{Number: 7, SourceBranch: "feature", TargetBranch: "main",
		SourceCommit: testCommit, Fork: true, Author: "outsider"},
}

func untrustedPlan() activities.Plan {
	p := testPlan()
	p.Untrusted = "pull request #7 comes from a fork"
	p.ApprovalTimeout = 72 * time.Hour
	return p
}

// decide sends an approve or reject update after delay and records how the
// run answered it.
func (s *pipelineSuite) decide(update string, d workflows.Decision, delay time.Duration) *decision {
	out := &decision{}
	s.env.RegisterDelayedCallback(func() {
		if v, err := s.env.QueryWorkflow(workflows.QueryProgress); err == nil { // none before the run starts
			s.Require().NoError(v.Get(&out.progress))
		}
		s.env.UpdateWorkflow(update, update+"-"+d.By+"-"+delay.String(), &testsuite.TestUpdateCallback{
			OnReject: func(err error) { out.rejected = err },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				if err == nil {
					out.result = v.(workflows.ApprovalResult)
				}
			},
		}, d)
	}, delay)
	return out
}

type decision struct {
	progress workflows.Progress // before the update
	rejected error
	result   workflows.ApprovalResult
}

// TestUntrustedRunWaitsForApproval: a fork's pull request builds nothing
// until it is approved; KilnStage says it waits, the progress query says
// why, and the approval is recorded with who, how and when.
func (s *pipelineSuite) TestUntrustedRunWaitsForApproval() {
	s.onPlan(untrustedPlan(), nil)
	s.env.OnActivity(acts.FindSuperseded, mock.Anything, mock.Anything).Return(nil, nil).Maybe()
	var builtAt time.Time
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(func(context.Context, activities.BuildInput) (*activities.BuildResult, error) {
		builtAt = s.env.Now()
		return &activities.BuildResult{}, nil
	}).Once()
	start := s.env.Now()
	d := s.decide(workflows.UpdateApprove, workflows.Decision{By: "maintainer", Via: workflows.ViaCLI}, 5*time.Hour)

	s.run(forkPR)

	s.Require().NoError(s.env.GetWorkflowError())
	s.NoError(d.rejected)
	s.Equal(workflows.StageBuild, d.result.Stage)
	s.Equal(workflows.StageBuild+": awaiting approval", d.progress.Stage)
	s.Require().Len(d.progress.Approvals, 1)
	s.True(d.progress.Approvals[0].Waiting)
	s.Equal("pull request #7 comes from a fork", d.progress.Approvals[0].Why)
	s.GreaterOrEqual(builtAt.Sub(start), 5*time.Hour, "nothing was built before the approval")

	p := s.progressAny()
	s.Require().Len(p.Approvals, 1)
	a := p.Approvals[0]
	s.True(a.Approved)
	s.False(a.Waiting)
	s.Equal(&workflows.Decision{By: "maintainer", Via: workflows.ViaCLI}, a.Decision)
	s.False(a.At.IsZero())
	s.Equal([]string{"build: awaiting approval", workflows.StageBuild, "done"}, s.keywords(workflows.AttrStage))
}

// TestUntrustedBuildsInImageFirst: an untrusted change whose pipeline
// builds in an image builds at once, without secrets, and waits for
// approval before the bake; approved, the bake runs. A build-only pipeline
// needs no approval at all: its untrusted build has nothing more to do.
func (s *pipelineSuite) TestUntrustedBuildsInImageFirst() {
	plan := untrustedPlan()
	plan.BuildImage = "registry.example.com/ci/go@sha256:0123"
	plan.Bake = &config.BakeStage{Template: "ami.pkr.hcl", Region: "us-east-1"}
	s.onPlan(plan, nil)
	s.env.OnActivity(acts.FindSuperseded, mock.Anything, mock.Anything).Return(nil, nil).Maybe()
	var build activities.BuildInput
	var builtAt, bakedAt time.Time
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BuildInput) (*activities.BuildResult, error) {
		build, builtAt = in, s.env.Now()
		return &activities.BuildResult{}, nil
	}).Once()
	s.env.OnActivity(acts.Bake, mock.Anything, mock.Anything).Return(func(context.Context, activities.BakeInput) (*activities.BakeResult, error) {
		bakedAt = s.env.Now()
		return &activities.BakeResult{Region: "us-east-1", AMIs: bakedAMIs}, nil
	}).Once()
	start := s.env.Now()
	d := s.decide(workflows.UpdateApprove, workflows.Decision{By: "maintainer", Via: workflows.ViaComment}, 5*time.Hour)

	s.run(forkPR)

	s.Require().NoError(s.env.GetWorkflowError())
	s.True(build.Untrusted, "the build before the approval goes without secrets")
	s.Less(builtAt.Sub(start), time.Hour, "it built before the approval")
	s.Equal("bake: awaiting approval", d.progress.Stage)
	s.Equal(workflows.StageBake, d.result.Stage)
	s.GreaterOrEqual(bakedAt.Sub(start), 5*time.Hour, "nothing but the build before the approval")
}

func (s *pipelineSuite) TestUntrustedBuildOnlyNeedsNoApproval() {
	plan := untrustedPlan()
	plan.BuildImage = "registry.example.com/ci/go@sha256:0123"
	s.onPlan(plan, nil)
	s.env.OnActivity(acts.FindSuperseded, mock.Anything, mock.Anything).Return(nil, nil).Maybe()
	var build activities.BuildInput
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BuildInput) (*activities.BuildResult, error) {
		build = in
		return &activities.BuildResult{}, nil
	}).Once()

	s.run(forkPR)

	s.Require().NoError(s.env.GetWorkflowError())
	s.True(build.Untrusted)
	s.Empty(s.progressAny().Approvals, "nothing waited")
	s.Equal([]string{workflows.StageBuild, "done"}, s.keywords(workflows.AttrStage))
}

// TestRejectedRunEndsNotApproved: a rejection ends the run, completed as
// not approved rather than failed, with the reason, and nothing built.
func (s *pipelineSuite) TestRejectedRunEndsNotApproved() {
	s.onPlan(untrustedPlan(), nil)
	s.env.OnActivity(acts.FindSuperseded, mock.Anything, mock.Anything).Return(nil, nil).Maybe()
	noReason := s.decide(workflows.UpdateReject, workflows.Decision{By: "maintainer"}, time.Hour)
	d := s.decide(workflows.UpdateReject, workflows.Decision{By: "maintainer", Reason: "mines coins"}, 2*time.Hour)

	s.run(forkPR)

	s.Require().NoError(s.env.GetWorkflowError(), "not approved is no failure")
	s.Require().Error(noReason.rejected)
	s.Contains(noReason.rejected.Error(), "say why")
	s.NoError(d.rejected)
	s.env.AssertActivityNotCalled(s.T(), "Build", mock.Anything, mock.Anything)
	p := s.progressAny()
	s.Equal("mines coins", p.Approvals[0].Decision.Reason)
	s.Equal(workflows.OutcomeNotApproved, s.keywords(workflows.AttrStage)[len(s.keywords(workflows.AttrStage))-1])
	for _, st := range p.Stages {
		if st.Name == workflows.ApprovalStage(workflows.StageBuild) {
			s.Equal(workflows.StateFailed, st.State)
			s.Equal("rejected by maintainer: mines coins", st.Error)
		}
	}
}

// TestApprovalTimesOut: nobody answers within the repository's approval
// timeout, and the run ends as not approved.
func (s *pipelineSuite) TestApprovalTimesOut() {
	s.onPlan(untrustedPlan(), nil)
	s.env.OnActivity(acts.FindSuperseded, mock.Anything, mock.Anything).Return(nil, nil).Maybe()
	start := s.env.Now()

	s.run(forkPR)

	s.Require().NoError(s.env.GetWorkflowError())
	s.GreaterOrEqual(s.env.Now().Sub(start), 72*time.Hour)
	s.env.AssertActivityNotCalled(s.T(), "Build", mock.Anything, mock.Anything)
	p := s.progressAny()
	s.True(p.Approvals[0].TimedOut)
	s.Equal(workflows.OutcomeNotApproved, s.keywords(workflows.AttrStage)[len(s.keywords(workflows.AttrStage))-1])
}

// TestApprovalRefusedWhenNotWaiting: a trusted run waits for nothing, and
// an approval of it is refused without a trace.
func (s *pipelineSuite) TestApprovalRefusedWhenNotWaiting() {
	s.onPlan(testPlan(), nil)
	// The approval arrives while the build runs: a trusted run is then
	// surely under way and waits for nothing. (Sent on a timer instead, it
	// could arrive after the run ended, and be neither taken nor refused.)
	rejected := make(chan error, 1)
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(func(context.Context, activities.BuildInput) (*activities.BuildResult, error) {
		s.env.UpdateWorkflow(workflows.UpdateApprove, "approve-while-building", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { rejected <- err },
			OnAccept:   func() { rejected <- nil },
			OnComplete: func(any, error) {},
		}, workflows.Decision{By: "maintainer", Via: workflows.ViaCLI})
		return &activities.BuildResult{}, nil
	}).Once()

	s.run(pushEvent)

	s.Require().NoError(s.env.GetWorkflowError())
	var err error
	select {
	case err = <-rejected:
	default:
		s.FailNow("the update was neither refused nor taken")
	}
	s.Require().Error(err)
	s.Contains(err.Error(), "is not waiting for approval")
}

// TestApprovalGateBeforeDistribute: a distribute stage with an approval
// waits after the bake, durably; an approval by someone not listed is
// refused with a message that says who may, and one by an approver lets
// the copies start.
func (s *pipelineSuite) TestApprovalGateBeforeDistribute() {
	plan := distributePlan()
	plan.Distribute.Approval = &config.Approval{Required: true, Approvers: []string{"ada", "grace"}, Timeout: config.Duration(24 * time.Hour)}
	s.onPlan(plan, nil)
	s.onBake()
	rec := &copyRecorder{}
	s.onDistribute(rec)
	stranger := s.decide(workflows.UpdateApprove, workflows.Decision{By: "mallory", Via: workflows.ViaCLI}, time.Hour)
	ada := s.decide(workflows.UpdateApprove, workflows.Decision{By: "Ada", Via: workflows.ViaCLI}, 2*time.Hour)

	s.run(pushEvent)

	s.Require().NoError(s.env.GetWorkflowError())
	s.Require().Error(stranger.rejected)
	s.Contains(stranger.rejected.Error(), "mallory may not approve the distribute stage")
	s.Contains(stranger.rejected.Error(), "its approvers are ada, grace")
	s.NoError(ada.rejected)
	s.Equal(workflows.StageDistribute, ada.result.Stage)
	s.Equal("distribute: awaiting approval", ada.progress.Stage)
	s.NotEmpty(rec.calls("222222222222/eu-west-1"), "the copies ran after the approval")
	s.Equal([]string{"bake", "distribute: awaiting approval", "distribute", "done"}, s.keywords(workflows.AttrStage))
}
