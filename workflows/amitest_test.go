package workflows_test

import (
	"context"
	"errors"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/workflows"
)

// testedPlan is bakePlan with a test stage after the bake.
func testedPlan() activities.Plan {
	p := bakePlan()
	p.Test = &config.TestStage{Commands: []string{"inspec exec test"}, Timeout: config.Duration(20 * time.Minute)}
	return p
}

var bakedAMIs = map[string]string{"us-east-1": "ami-1", "us-west-2": "ami-2"}

// onBake mocks a bake that made bakedAMIs.
func (s *pipelineSuite) onBake() {
	s.env.OnActivity(acts.Bake, mock.Anything, mock.Anything).Return(
		&activities.BakeResult{Region: "us-east-1", AMIs: bakedAMIs}, nil).Once()
}

// TestTestAfterBake: the test stage runs after the bake, with the bake's AMIs,
// the resolved commit and the run's ID, under the configured timeout plus
// slack, and its result is the run's.
func (s *pipelineSuite) TestTestAfterBake() {
	s.onPlan(testedPlan(), nil)
	var order []string
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.BuildInput) (*activities.BuildResult, error) {
			order = append(order, "build")
			return &activities.BuildResult{}, nil
		}).Once()
	s.env.OnActivity(acts.Bake, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.BakeInput) (*activities.BakeResult, error) {
			order = append(order, "bake")
			return &activities.BakeResult{Region: "us-east-1", AMIs: bakedAMIs}, nil
		}).Once()
	var got activities.TestInput
	var timeout time.Duration
	s.env.OnActivity(acts.TestAMI, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.TestInput) (*activities.TestResult, error) {
			order = append(order, "test")
			got = in
			deadline, _ := ctx.Deadline()
			timeout = deadline.Sub(s.env.Now())
			return &activities.TestResult{Region: "us-east-1", AMI: "ami-1", InstanceID: "i-1", Passed: true}, nil
		}).Once()

	s.run(pushEvent)
	s.Require().NoError(s.env.GetWorkflowError())

	s.Equal([]string{"build", "bake", "test"}, order)
	s.Equal(bakedAMIs, got.AMIs)
	s.Equal(testCommit, got.Event.Commit)
	s.Equal(testRunID, got.RunID)
	s.Equal([]string{"inspec exec test"}, got.Plan.Test.Commands)
	s.InDelta(30*time.Minute, timeout, float64(time.Minute), "StartToClose is the test timeout plus 10m")
	var res workflows.PipelineResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Require().NotNil(res.Test)
	s.True(res.Test.Passed)
	s.Equal("i-1", res.Test.InstanceID)
	p := s.progressAny()
	s.Require().Len(p.Stages, 3)
	s.Equal(workflows.StageTest, p.Stages[2].Name)
	s.Equal(workflows.StateSucceeded, p.Stages[2].State)
	s.Equal([]string{"build", "bake", "test", "done"}, s.keywords(workflows.AttrStage))
}

// TestFailedTestFailsRun: a failed test is permanent (not retried) and ends
// the run with AMITestFailed, and KilnStage keeps "test".
func (s *pipelineSuite) TestFailedTestFailsRun() {
	s.onPlan(testedPlan(), nil)
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(&activities.BuildResult{}, nil).Once()
	s.onBake()
	s.env.OnActivity(acts.TestAMI, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("exit 4", activities.ErrAMITestFailed, nil))

	s.run(pushEvent)

	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(s.env.GetWorkflowError(), &appErr))
	s.Equal(activities.ErrAMITestFailed, appErr.Type())
	s.env.AssertActivityNumberOfCalls(s.T(), "TestAMI", 1)
	p := s.progressAny()
	s.Require().Len(p.Stages, 3)
	s.Equal(workflows.StateFailed, p.Stages[2].State)
	s.Equal([]string{"build", "bake", "test"}, s.keywords(workflows.AttrStage))
}

// TestFailedBakeSkipsTest: the test runs only after a bake succeeded.
func (s *pipelineSuite) TestFailedBakeSkipsTest() {
	plan := testedPlan()
	plan.Build = nil
	s.onPlan(plan, nil)
	s.env.OnActivity(acts.Bake, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("packer build failed", activities.ErrBakeFailed, nil))
	s.env.OnActivity(acts.TestAMI, mock.Anything, mock.Anything).Return(&activities.TestResult{}, nil).Maybe()

	s.run(pushEvent)

	s.Error(s.env.GetWorkflowError())
	s.env.AssertActivityNotCalled(s.T(), "TestAMI", mock.Anything, mock.Anything)
	p := s.progressAny()
	s.Equal([]string{"bake", "test"}, []string{p.Stages[0].Name, p.Stages[1].Name})
	s.Equal(workflows.StatePending, p.Stages[1].State)
}

// TestNoTestStageNoTest: a bake-only plan schedules no test activity, so
// plans without a test stage run exactly as before the stage existed.
func (s *pipelineSuite) TestNoTestStageNoTest() {
	s.onPlan(bakePlan(), nil)
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(&activities.BuildResult{}, nil).Once()
	s.onBake()

	s.run(pushEvent)

	s.Require().NoError(s.env.GetWorkflowError())
	s.env.AssertActivityNotCalled(s.T(), "TestAMI", mock.Anything, mock.Anything)
	s.Len(s.progressAny().Stages, 2)
}
