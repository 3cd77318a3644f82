package workflows_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	kilnworker "github.com/kiln-ci/kiln/worker"
	"github.com/kiln-ci/kiln/workflows"
)

// acts names the activities for mocking, the same way the workflow names them:
// through a nil pointer, so the mocked names are the registered ones.
var acts *activities.Activities

const (
	testPipeline = "widget"
	testRunID    = "widget/main/delivery-1"
	testCommit   = "0123456789abcdef0123456789abcdef01234567"
)

// pushEvent is a webhook push to main: it names its repo and commit up front.
var pushEvent = event.Event{
	Kind: event.KindBranch, Repo: "acme/widget", Ref: "refs/heads/main", Branch: "main",
	Commit: testCommit, DeliveryID: "delivery-1",
}

// testPlan is what the plan activity returns for pushEvent. Its build timeout
// is above the default on purpose, so a workflow that ignored the plan's
// timeout and used the default would fail TestBuildActivityOptions.
func testPlan() activities.Plan {
	return activities.Plan{
		Repo: "acme/widget", CloneURL: "/srv/git/widget.git", Commit: testCommit,
		Build: &config.BuildStage{
			Buildspec: config.BuildspecSource{Path: "buildspec.yml"},
			Timeout:   config.Duration(90 * time.Minute),
		},
	}
}

// pipelineSuite runs the Pipeline workflow in the SDK's test environment with
// its activities mocked. Every search attribute upsert is recorded, because
// KilnStage and KilnCommit are how people find runs in the UI and `kiln runs`.
type pipelineSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env     *testsuite.TestWorkflowEnvironment
	upserts []temporal.SearchAttributes
}

func TestPipelineWorkflow(t *testing.T) { suite.Run(t, new(pipelineSuite)) }

// SetupSuite keeps the test environment's logs to warnings and errors, so a
// failing assertion is not buried in debug lines.
func (s *pipelineSuite) SetupSuite() {
	s.SetLogger(quietLogger())
}

// SetupTest registers the workflow and activities with worker.Register, as the
// real worker does, so a test starting the workflow by its registered name
// also proves the name starters use.
func (s *pipelineSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	kilnworker.Register(s.env, &activities.Activities{})
	s.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: testRunID, TaskQueue: workflows.TaskQueue})
	s.upserts = nil
	s.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		s.upserts = append(s.upserts, args.Get(0).(temporal.SearchAttributes))
	}).Maybe()
}

func (s *pipelineSuite) TearDownTest() { s.env.AssertExpectations(s.T()) }

// run executes the workflow for ev to completion.
func (s *pipelineSuite) run(ev event.Event) {
	s.env.ExecuteWorkflow(workflows.PipelineWorkflowName, workflows.PipelineInput{Pipeline: testPipeline, Event: ev})
	s.Require().True(s.env.IsWorkflowCompleted())
}

// onPlan mocks the plan activity to return plan, or err when not nil. Mocks
// that fail are left unlimited: a call past a mock's Times panics before the
// mock counts it, which would hide retries from AssertActivityNumberOfCalls.
func (s *pipelineSuite) onPlan(plan activities.Plan, err error) {
	if err != nil {
		s.env.OnActivity(acts.Plan, mock.Anything, mock.Anything).Return(nil, err)
		return
	}
	s.env.OnActivity(acts.Plan, mock.Anything, mock.Anything).Return(&plan, nil).Once()
}

// progress asks the run's progress query, which works after the run ends. The
// test plans have one stage, build.
func (s *pipelineSuite) progress() workflows.Progress {
	p := s.progressAny()
	s.Require().Len(p.Stages, 1, "stages: %+v", p.Stages)
	return p
}

// progressAny is progress without the check on the number of stages.
func (s *pipelineSuite) progressAny() workflows.Progress {
	v, err := s.env.QueryWorkflow(workflows.QueryProgress)
	s.Require().NoError(err)
	var p workflows.Progress
	s.Require().NoError(v.Get(&p))
	return p
}

// keywords lists the values the run upserted for key, in order.
func (s *pipelineSuite) keywords(key temporal.SearchAttributeKeyKeyword) []string {
	var out []string
	for _, sa := range s.upserts {
		if v, ok := sa.GetKeyword(key); ok {
			out = append(out, v)
		}
	}
	return out
}

// TestSuccess runs a manual run, which knows neither repo nor commit when it
// starts: the plan supplies both, and they must reach the build's input, the
// progress query, the result and the KilnRepo/KilnCommit search attributes.
func (s *pipelineSuite) TestSuccess() {
	manual := event.Event{Kind: event.KindManual, Ref: "refs/heads/main", Branch: "main"}
	s.env.OnActivity(acts.Plan, mock.Anything, activities.PlanInput{Pipeline: testPipeline, Event: manual}).
		Return(func(context.Context, activities.PlanInput) (*activities.Plan, error) {
			p := testPlan()
			return &p, nil
		}).Once()
	var got activities.BuildInput
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).
		Return(func(_ context.Context, in activities.BuildInput) (*activities.BuildResult, error) {
			got = in
			return &activities.BuildResult{LogPath: "/data/logs/run/build-1.log", Artifacts: []string{"app.tar"}}, nil
		}).Once()

	s.run(manual)

	s.Require().NoError(s.env.GetWorkflowError())
	var res workflows.PipelineResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal(testPipeline, res.Pipeline)
	s.Equal(testCommit, res.Commit)
	s.Require().NotNil(res.Build)
	s.Equal([]string{"app.tar"}, res.Build.Artifacts)
	s.Equal(workflows.StateSucceeded, res.Progress.Stages[0].State)

	s.Equal(testRunID, got.RunID)
	s.Equal(testCommit, got.Event.Commit, "the build must check out the planned commit")
	s.Equal("acme/widget", got.Event.Repo)
	s.Equal(testPlan(), got.Plan)

	p := s.progress()
	s.Equal("acme/widget", p.Repo)
	s.Equal(testCommit, p.Commit)
	s.Equal("done", p.Stage, "the query agrees with KilnStage once the run is done")
	s.Equal(workflows.StageBuild, p.Stages[0].Name)
	s.Equal(workflows.StateSucceeded, p.Stages[0].State)
	s.False(p.Stages[0].Start.IsZero() || p.Stages[0].End.IsZero(), "start and end are recorded")

	s.Equal([]string{testCommit}, s.keywords(workflows.AttrCommit))
	s.Equal([]string{"acme/widget"}, s.keywords(workflows.AttrRepo))
	s.Equal([]string{workflows.StageBuild, "done"}, s.keywords(workflows.AttrStage))
	s.env.AssertActivityNotCalled(s.T(), "FindSuperseded", mock.Anything, mock.Anything)
}

// TestBuildActivityOptions checks the options the build runs under, as the
// activity sees them. The heartbeat timeout is what lets Temporal notice a dead
// worker and deliver cancellation to a live one; StartToClose must leave the
// build its whole configured timeout, or Temporal would cut builds short.
func (s *pipelineSuite) TestBuildActivityOptions() {
	s.onPlan(testPlan(), nil)
	var info activity.Info
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).
		Return(func(ctx context.Context, _ activities.BuildInput) (*activities.BuildResult, error) {
			info = activity.GetInfo(ctx)
			return &activities.BuildResult{}, nil
		}).Once()

	s.run(pushEvent)

	s.Require().NoError(s.env.GetWorkflowError())
	s.Positive(info.HeartbeatTimeout, "a build without a heartbeat timeout cannot be cancelled or detected dead")
	s.LessOrEqual(info.HeartbeatTimeout, time.Minute, "a dead worker should be noticed within a minute")
	s.GreaterOrEqual(info.StartToCloseTimeout, testPlan().BuildTimeout())
}

// TestWebUIDetails: the run's current details, the Web UI's Details tab,
// list its stages with their state, and a failure is headed by its stage.
func (s *pipelineSuite) TestWebUIDetails() {
	s.onPlan(testPlan(), nil)
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).
		Return(nil, temporal.NewNonRetryableApplicationError("phase build: command \"make\" exited with status 2", activities.ErrBuildFailed, nil)).Once()

	s.run(pushEvent)

	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(s.env.GetWorkflowError(), &appErr))
	s.Equal(`build: phase build: command "make" exited with status 2`, appErr.Message())
	s.Equal(activities.ErrBuildFailed, appErr.Type(), "the headline keeps the cause's type")
	v, err := s.env.QueryWorkflow("__temporal_workflow_metadata")
	s.Require().NoError(err)
	var meta sdkpb.WorkflowMetadata
	s.Require().NoError(v.Get(&meta))
	s.Contains(meta.GetCurrentDetails(), "| stage | state | took |")
	s.Contains(meta.GetCurrentDetails(), "| build | failed: `phase build: command \"make\" exited with status 2` |")
}

// TestTransientBuildErrorIsRetried shows the other side of the build's error
// classification: an error that is not a permanent type (a failed clone, a
// full disk) is retried, up to the policy's three attempts.
func (s *pipelineSuite) TestTransientBuildErrorIsRetried() {
	s.onPlan(testPlan(), nil)
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).
		Return(nil, temporal.NewApplicationError("checkout: connection reset", ""))

	s.run(pushEvent)

	s.Require().ErrorContains(s.env.GetWorkflowError(), "connection reset")
	s.env.AssertActivityNumberOfCalls(s.T(), "Build", 3)
	s.Equal(workflows.StateFailed, s.progress().Stages[0].State)
}
