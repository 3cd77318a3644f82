package workflows_test

import (
	"context"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/workflows"
)

// buildFailedMsg is what the build activity says when a command fails: the
// progress query must show people exactly this, not Temporal's wrapping of it.
const buildFailedMsg = "phase build: command 2 (exit 3) exited with status 3\nlog: /data/logs/widget_main_delivery-1/build-1.log"

// TestBuildFailed checks that a failing build fails the run at once, with the
// activity's error type and message intact, and that KilnStage keeps naming
// the stage that failed.
func (s *pipelineSuite) TestBuildFailed() {
	s.onPlan(testPlan(), nil)
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).
		Return(nil, temporal.NewNonRetryableApplicationError(buildFailedMsg, activities.ErrBuildFailed, nil))

	s.run(pushEvent)

	var appErr *temporal.ApplicationError
	s.Require().ErrorAs(s.env.GetWorkflowError(), &appErr)
	s.Equal(activities.ErrBuildFailed, appErr.Type())
	s.True(appErr.NonRetryable())
	s.env.AssertActivityNumberOfCalls(s.T(), "Build", 1)

	p := s.progress()
	s.Equal(workflows.StateFailed, p.Stages[0].State)
	s.Equal(buildFailedMsg, p.Stages[0].Error)
	s.False(p.Stages[0].End.IsZero())
	s.Equal([]string{workflows.StageBuild}, s.keywords(workflows.AttrStage), "KilnStage stays at the failed stage")
}

// TestPlanFailed checks that a permanent plan error (a pipeline the worker's
// config does not have) ends the run without retrying the plan and without
// building anything.
func (s *pipelineSuite) TestPlanFailed() {
	s.onPlan(activities.Plan{}, temporal.NewNonRetryableApplicationError(
		`pipeline "widget" is not in kiln.yaml (pipelines: gadget)`, activities.ErrUnknownPipeline, nil))
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(&activities.BuildResult{}, nil).Maybe()

	s.run(pushEvent)

	var appErr *temporal.ApplicationError
	s.Require().ErrorAs(s.env.GetWorkflowError(), &appErr)
	s.Equal(activities.ErrUnknownPipeline, appErr.Type())
	s.env.AssertActivityNumberOfCalls(s.T(), "Plan", 1)
	s.env.AssertActivityNotCalled(s.T(), "Build", mock.Anything, mock.Anything)
	p := s.progressAny()
	s.Empty(p.Stages, "no plan, so no stages are known, and none ran")
	s.Equal(workflows.StagePlan, p.Stage)
	s.Equal([]string{workflows.StagePlan}, s.keywords(workflows.AttrStage), "KilnStage says the plan failed, not queued")
}

// blockBuild makes the build call whileBuilding once it runs and then wait to
// be cancelled, so cancellation arrives mid-build as it does in production.
// The test's own context bounds the wait, in case cancellation never comes.
func (s *pipelineSuite) blockBuild(whileBuilding func()) {
	done := s.T().Context().Done()
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).
		Return(func(ctx context.Context, _ activities.BuildInput) (*activities.BuildResult, error) {
			whileBuilding()
			select {
			case <-ctx.Done():
			case <-done:
			}
			return nil, ctx.Err()
		}).Once()
}

// cancelledWith asserts the run ended as a cancellation whose details are msg.
func (s *pipelineSuite) cancelledWith(msg string) {
	var cancelled *temporal.CanceledError
	s.Require().ErrorAs(s.env.GetWorkflowError(), &cancelled)
	var details string
	s.Require().NoError(cancelled.Details(&details))
	s.Equal(msg, details)
}

// TestCancelWhileBuilding checks that a run cancelled mid-build ends as
// cancelled, not failed, both in its result and in what people see.
func (s *pipelineSuite) TestCancelWhileBuilding() {
	s.onPlan(testPlan(), nil)
	s.blockBuild(s.env.CancelWorkflow)

	s.run(pushEvent)

	s.cancelledWith("cancelled")
	p := s.progress()
	s.Equal(workflows.StateCancelled, p.Stages[0].State)
	s.Empty(p.SupersededBy)
	s.Equal([]string{workflows.StageBuild, "cancelled"}, s.keywords(workflows.AttrStage))
}

// TestSuperseded plays the part of a newer run for the same ref: it signals
// its ID and then cancels, as supersedeOlder does. The older run must say who
// replaced it, in its error and in the progress query.
func (s *pipelineSuite) TestSuperseded() {
	const newer = "widget/main/delivery-2"
	s.onPlan(testPlan(), nil)
	s.blockBuild(func() {
		s.env.SignalWorkflow(workflows.SignalSuperseded, newer)
		s.env.CancelWorkflow()
	})

	s.run(pushEvent)

	s.cancelledWith("superseded by " + newer)
	p := s.progress()
	s.Equal(newer, p.SupersededBy)
	s.Equal(workflows.StateCancelled, p.Stages[0].State)
	s.Equal([]string{workflows.StageBuild, "cancelled"}, s.keywords(workflows.AttrStage))
}

// TestPermanentBuildErrorTypesAreNotRetried checks the build's retry policy
// itself: it must list the permanent error types, so even a BuildFailed error
// not flagged non-retryable (say, from an older worker) is not run again.
func (s *pipelineSuite) TestPermanentBuildErrorTypesAreNotRetried() {
	s.onPlan(testPlan(), nil)
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).
		Return(nil, temporal.NewApplicationError(buildFailedMsg, activities.ErrBuildFailed))

	s.run(pushEvent)

	s.Require().Error(s.env.GetWorkflowError())
	s.env.AssertActivityNumberOfCalls(s.T(), "Build", 1)
}

// TestPermanentPlanErrorTypesAreNotRetried is the same check for the plan's
// retry policy, with a ref the repository does not have.
func (s *pipelineSuite) TestPermanentPlanErrorTypesAreNotRetried() {
	s.onPlan(activities.Plan{}, temporal.NewApplicationError(`ref "refs/heads/gone": not found`, activities.ErrRefNotFound))

	s.run(pushEvent)

	s.Require().Error(s.env.GetWorkflowError())
	s.env.AssertActivityNumberOfCalls(s.T(), "Plan", 1)
}
