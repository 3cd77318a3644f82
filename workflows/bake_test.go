package workflows_test

import (
	"context"
	"errors"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/workflows"
)

// bakePlan is testPlan with a bake stage after the build.
func bakePlan() activities.Plan {
	p := testPlan()
	p.Bake = &config.BakeStage{Template: "ami.pkr.hcl", Region: "us-east-1"}
	return p
}

// TestBakeAfterBuild checks that a plan with a bake stage bakes after the
// build, hands the resolved commit and the run's Force flag to the bake, and
// reports the AMIs in the result and both stages in the progress query.
func (s *pipelineSuite) TestBakeAfterBuild() {
	s.onPlan(bakePlan(), nil)
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(&activities.BuildResult{}, nil).Once()
	var got activities.BakeInput
	s.env.OnActivity(acts.Bake, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.BakeInput) (*activities.BakeResult, error) {
			got = in
			return &activities.BakeResult{Region: "us-east-1", AMIs: map[string]string{"us-east-1": "ami-1"}}, nil
		}).Once()

	s.env.ExecuteWorkflow(workflows.PipelineWorkflowName, workflows.PipelineInput{Pipeline: testPipeline, Event: pushEvent, Force: true})
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())

	var res workflows.PipelineResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal("ami-1", res.Bake.AMI())
	s.True(got.Force, "the run's --force reaches the bake")
	s.Equal(testCommit, got.Event.Commit)
	s.Equal(testRunID, got.RunID)
	p := s.progressAny()
	s.Require().Len(p.Stages, 2)
	s.Equal([]string{"build", "bake"}, []string{p.Stages[0].Name, p.Stages[1].Name})
	s.Equal(workflows.StateSucceeded, p.Stages[1].State)
	s.Equal([]string{"build", "bake", "done"}, s.keywords(workflows.AttrStage))
}

// TestFailedBuildSkipsBake: a failed build ends the run; nothing is baked.
func (s *pipelineSuite) TestFailedBuildSkipsBake() {
	s.onPlan(bakePlan(), nil)
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("exit 2", activities.ErrBuildFailed, nil))
	s.env.OnActivity(acts.Bake, mock.Anything, mock.Anything).Return(&activities.BakeResult{}, nil).Maybe()

	s.run(pushEvent)

	s.Error(s.env.GetWorkflowError())
	s.env.AssertActivityNotCalled(s.T(), "Bake", mock.Anything, mock.Anything)
	p := s.progressAny()
	s.Equal(workflows.StateFailed, p.Stages[0].State)
	s.Equal(workflows.StatePending, p.Stages[1].State)
}

// TestBakeOnlyPipeline: a pipeline without a build stage goes straight to the
// bake, and a permanent bake failure is not retried.
func (s *pipelineSuite) TestBakeOnlyPipeline() {
	plan := bakePlan()
	plan.Build = nil
	s.onPlan(plan, nil)
	s.env.OnActivity(acts.Bake, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("packer build failed (exit code 1)", activities.ErrBakeFailed, nil))

	s.run(pushEvent)

	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(s.env.GetWorkflowError(), &appErr))
	s.Equal(activities.ErrBakeFailed, appErr.Type())
	s.env.AssertActivityNumberOfCalls(s.T(), "Bake", 1)
	s.env.AssertActivityNotCalled(s.T(), "Build", mock.Anything, mock.Anything)
	s.Equal("bake", s.progressAny().Stages[0].Name)
}
