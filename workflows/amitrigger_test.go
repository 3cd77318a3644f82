package workflows_test

import (
	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/workflows"
)

// amiTriggerPlan bakes and tests, and its tested AMIs start "app".
func amiTriggerPlan() activities.Plan {
	p := testedPlan()
	p.DefaultBranch = "main"
	p.AMIDependents = []activities.AMIDependent{{Pipeline: "app"}}
	return p
}

// onTest mocks the AMI test with its outcome.
func (s *pipelineSuite) onTest(passed bool) {
	var err error
	if !passed {
		err = temporal.NewNonRetryableApplicationError("test failed", activities.ErrAMITestFailed, nil)
	}
	s.env.OnActivity(acts.TestAMI, mock.Anything, mock.Anything).Return(
		&activities.TestResult{Region: "us-east-1", AMI: "ami-1", Passed: passed}, err).Once()
}

// TestTestedAMITriggersDependents: once the default branch's AMI passes its
// test, the pipeline its AMI triggers starts on HEAD, with the AMIs of the
// bake and the run that tested them, as a child whose ID carries the AMI.
func (s *pipelineSuite) TestTestedAMITriggersDependents() {
	plan := amiTriggerPlan()
	children := s.onPlanWithChildren(&plan)
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(&activities.BuildResult{}, nil).Once()
	s.onBake()
	s.onTest(true)

	s.run(pushEvent)

	s.Require().NoError(s.env.GetWorkflowError())
	var res workflows.PipelineResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal([]string{"app/HEAD/ami-1"}, res.Triggered)
	s.Equal([]string{"app/HEAD/ami-1"}, res.Progress.Made.Triggered, "the summary lists it")
	s.Require().Len(*children, 1, "the child run started")
	child := (*children)[0]
	s.Equal(event.KindAMI, child.Event.Kind)
	s.Equal("HEAD", child.Event.Ref)
	s.Equal(&event.AMIPass{Pipeline: testPipeline, RunID: testRunID, Commit: testCommit, Region: "us-east-1", AMIs: bakedAMIs},
		child.Event.AMI)
}

// TestOnlyTestedReleaseAMIsTrigger: an AMI that failed its test, or one
// baked from a pull request or a feature branch, starts nothing.
func (s *pipelineSuite) TestOnlyTestedReleaseAMIsTrigger() {
	review := event.Event{Kind: event.KindReview, Repo: pushEvent.Repo, Ref: "refs/pull/7/head", Commit: pushEvent.Commit,
		PullRequest: &event.PullRequest{Number: 7}}
	feature := event.Event{Kind: event.KindBranch, Repo: pushEvent.Repo, Ref: "refs/heads/wip", Branch: "wip", Commit: pushEvent.Commit}
	for name, tc := range map[string]struct {
		ev     event.Event
		passed bool
	}{
		"failed test":    {pushEvent, false},
		"review":         {review, true},
		"feature branch": {feature, true},
	} {
		s.Run(name, func() {
			s.SetupTest()
			plan := amiTriggerPlan()
			children := s.onPlanWithChildren(&plan)
			s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(&activities.BuildResult{}, nil).Once()
			s.onBake()
			s.onTest(tc.passed)

			s.run(tc.ev)

			var res workflows.PipelineResult
			_ = s.env.GetWorkflowResult(&res)
			s.Empty(res.Triggered)
			s.Empty(*children, "no dependent run started")
		})
	}
}

// TestAMITriggerStartsEachDependentOnce: a second run that tests the same
// AMI (a reused bake, or a retry) starts no second dependent run.
func (s *pipelineSuite) TestAMITriggerStartsEachDependentOnce() {
	plan := amiTriggerPlan()
	plan.AMIDependents = append(plan.AMIDependents, activities.AMIDependent{Pipeline: "app"})
	children := s.onPlanWithChildren(&plan)
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).Return(&activities.BuildResult{}, nil).Once()
	s.onBake()
	s.onTest(true)

	s.run(pushEvent)

	var res workflows.PipelineResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal([]string{"app/HEAD/ami-1"}, res.Triggered, "the same ID is refused the second time")
	s.Len(*children, 1)
}
