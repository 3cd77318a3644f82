package workflows_test

import (
	"context"
	"errors"
	"sync"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/buildspec"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/internal/junit"
	"github.com/kiln-ci/kiln/workflows"
)

// reportedPlan builds, bakes, reports on GitHub and notifies on failure.
func reportedPlan() activities.Plan {
	p := bakePlan()
	p.Report = &config.Report{Token: config.SecretRef{Env: "GH_TOKEN"}}
	p.Notify = &config.Notify{On: []string{workflows.OutcomeFailed}, Email: &config.EmailNotify{From: "kiln@example.com"}}
	return p
}

// reportLog records the ReportRun calls in order.
type reportLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *reportLog) record(_ context.Context, in activities.ReportInput) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	entry := "outcome " + in.Outcome
	if in.Outcome == "" {
		for _, s := range in.Stages {
			if s.Name == in.Changed[0] {
				entry = s.Name + " " + s.State
			}
		}
	}
	l.calls = append(l.calls, entry)
	return nil
}

// TestReportsEachStageThenOutcome: every stage is reported when it starts
// and when it ends, in order, then the outcome; a succeeded run notifies
// nobody when notify.on lists only failures.
func (s *pipelineSuite) TestReportsEachStageThenOutcome() {
	s.onPlan(reportedPlan(), nil)
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(&activities.BuildResult{}, nil).Once()
	s.onBake()
	log := &reportLog{}
	s.env.OnActivity(acts.ReportRun, mock.Anything, mock.Anything).Return(log.record)

	s.run(pushEvent)

	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal([]string{"build running", "build succeeded", "bake running", "bake succeeded", "outcome succeeded"}, log.calls)
	s.env.AssertActivityNotCalled(s.T(), "Notify", mock.Anything, mock.Anything)
}

// TestNotifiedIsInTheResult: a succeeded run's result says whom it told.
func (s *pipelineSuite) TestNotifiedIsInTheResult() {
	plan := reportedPlan()
	plan.Report, plan.Notify.On = nil, nil
	s.onPlan(plan, nil)
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(&activities.BuildResult{}, nil).Once()
	s.onBake()
	s.env.OnActivity(acts.Notify, mock.Anything, mock.Anything).Return(
		&activities.NotifyResult{Sent: []string{"email"}, Failed: map[string]string{"sns": "throttled"}}, nil).Once()

	s.run(pushEvent)

	s.Require().NoError(s.env.GetWorkflowError())
	var res workflows.PipelineResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Require().NotNil(res.Progress.Notified)
	s.Equal([]string{"email"}, res.Progress.Notified.Sent)
	s.Equal("throttled", res.Progress.Notified.Failed["sns"], "a failure to notify is in the result, and the run succeeded")
}

// TestFailedRunReportsAndNotifies: a failed build is reported as failed,
// people are told which stage failed and why, and a git host that refuses
// the report does not change the run's outcome.
func (s *pipelineSuite) TestFailedRunReportsAndNotifies() {
	s.onPlan(reportedPlan(), nil)
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("exit 3", activities.ErrBuildFailed, nil))
	s.env.OnActivity(acts.ReportRun, mock.Anything, mock.Anything).Return(
		temporal.NewNonRetryableApplicationError("unauthorized", activities.ErrReportRefused, nil))
	var told activities.NotifyInput
	s.env.OnActivity(acts.Notify, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.NotifyInput) (*activities.NotifyResult, error) {
			told = in
			return &activities.NotifyResult{Sent: []string{"email"}}, nil
		}).Once()

	s.run(pushEvent)

	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(s.env.GetWorkflowError(), &appErr))
	s.Equal(activities.ErrBuildFailed, appErr.Type(), "the build's failure, not the report's")
	s.Equal(workflows.OutcomeFailed, told.Outcome)
	s.Equal("build", told.FailedStage)
	s.Equal("exit 3", told.Error)
	s.Equal(pushEvent.Email, told.Event.Email)
	p := s.progressAny()
	s.Equal("unauthorized", p.ReportError)
	s.Require().NotNil(p.Notified)
	s.Equal([]string{"email"}, p.Notified.Sent)
	s.env.AssertActivityNumberOfCalls(s.T(), "ReportRun", 3) // build running, build failed, outcome
}

// TestNoReportWithoutConfig: a repo without report settings reports nothing.
func (s *pipelineSuite) TestNoReportWithoutConfig() {
	s.onPlan(bakePlan(), nil)
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(&activities.BuildResult{}, nil).Once()
	s.onBake()

	s.run(pushEvent)

	s.Require().NoError(s.env.GetWorkflowError())
	s.env.AssertActivityNotCalled(s.T(), "ReportRun", mock.Anything, mock.Anything)
	s.env.AssertActivityNotCalled(s.T(), "Notify", mock.Anything, mock.Anything)
}

// TestCodeCommitReviewIsReported: a CodeCommit repository's review run is
// reported (in its pull-request comment) without any GitHub settings, and
// its branch pushes are not.
func (s *pipelineSuite) TestCodeCommitReviewIsReported() {
	plan := bakePlan()
	plan.CodeCommit = &config.CodeCommitRepo{Region: "eu-west-1"}
	s.onPlan(plan, nil)
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(&activities.BuildResult{}, nil).Once()
	s.onBake()
	var got []activities.ReportInput
	s.env.OnActivity(acts.ReportRun, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ReportInput) error { got = append(got, in); return nil })
	ev := event.Event{Kind: event.KindReview, Host: event.HostCodeCommit, Repo: "widget", Ref: "refs/heads/feature",
		Branch: "feature", Commit: testCommit, DeliveryID: "eb-1",
		PullRequest: &event.PullRequest{Number: 3, SourceBranch: "feature", TargetBranch: "main", SourceCommit: testCommit, TargetCommit: "d0"}}

	s.run(ev)

	s.Require().NoError(s.env.GetWorkflowError())
	s.Require().Len(got, 5)
	s.Equal("eu-west-1", got[0].CodeCommit.Region)
	s.Nil(got[0].Report)
	s.Equal(workflows.OutcomeSucceeded, got[4].Outcome)
	s.False(plan.Reports(pushEvent), "a push to a CodeCommit repository has no comment to keep")
}

// TestFailedBuildsTestsAreReported: the test reports a failed build's error
// carries reach the build's "failed" report, the outcome's, the
// notification and the progress query; a passed build's come from its
// result.
func (s *pipelineSuite) TestFailedBuildsTestsAreReported() {
	reports := []buildspec.ReportResult{{Name: "unit", Format: buildspec.FormatJUnitXML, Files: []string{"reports/unit.xml"},
		Summary: junit.Summary{Total: 2, Passed: 1, Failed: 1, Failures: []junit.Case{{Suite: "widget", Name: "TestFrobnicate", Message: "want 3, got 4"}}}}}
	s.onPlan(reportedPlan(), nil)
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("exit 1", activities.ErrBuildFailed, nil, reports))
	var got []activities.ReportInput
	s.env.OnActivity(acts.ReportRun, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ReportInput) error { got = append(got, in); return nil })
	var told activities.NotifyInput
	s.env.OnActivity(acts.Notify, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.NotifyInput) (*activities.NotifyResult, error) {
			told = in
			return &activities.NotifyResult{}, nil
		}).Once()

	s.run(pushEvent)

	s.Require().Error(s.env.GetWorkflowError())
	s.Require().Len(got, 3)
	s.Nil(got[0].Tests, "the build is running: no tests yet")
	s.Equal(reports, got[1].Tests, "build failed")
	s.Equal(reports, got[2].Tests, "the outcome")
	s.Equal(reports, told.Tests)
	s.Equal(reports, s.progressAny().Tests)
}

// TestPassedBuildsTestsAreReported: a passed build's reports come from its
// result.
func (s *pipelineSuite) TestPassedBuildsTestsAreReported() {
	reports := []buildspec.ReportResult{{Name: "unit", Summary: junit.Summary{Total: 1, Passed: 1}}}
	plan := reportedPlan()
	plan.Notify.On = nil
	s.onPlan(plan, nil)
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(&activities.BuildResult{Reports: reports}, nil).Once()
	s.onBake()
	var last activities.ReportInput
	s.env.OnActivity(acts.ReportRun, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ReportInput) error { last = in; return nil })
	var told activities.NotifyInput
	s.env.OnActivity(acts.Notify, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.NotifyInput) (*activities.NotifyResult, error) {
			told = in
			return &activities.NotifyResult{}, nil
		}).Once()

	s.run(pushEvent)

	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal(workflows.OutcomeSucceeded, last.Outcome)
	s.Equal(reports, last.Tests)
	s.Equal(reports, told.Tests)
}
