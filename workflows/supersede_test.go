package workflows_test

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/stretchr/testify/mock"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/workflows"
)

// The older runs FindSuperseded reports in these tests.
const (
	olderRun1 = "widget/main/delivery-0"
	olderRun2 = "widget/main/delivery-00"
)

// callLog records mocked calls in the order they happen. Mocks of external
// workflow calls run on their own goroutines, hence the lock.
type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *callLog) add(call string) func(mock.Arguments) {
	return func(mock.Arguments) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.calls = append(l.calls, call)
	}
}

// supersedingPlan is a plan for a ref whose pipeline cancels superseded runs.
func supersedingPlan() activities.Plan {
	p := testPlan()
	p.CancelSuperseded = true
	return p
}

// onSupersede mocks the signal and the cancel request to one older run;
// signalErr makes the signal fail as it does when that run already ended.
func (s *pipelineSuite) onSupersede(log *callLog, older string, signalErr error) {
	s.env.OnSignalExternalWorkflow(mock.Anything, older, "", workflows.SignalSuperseded, testRunID).
		Run(log.add("signal " + older)).Return(signalErr).Once()
	cancel := s.env.OnRequestCancelExternalWorkflow(mock.Anything, older, "").
		Run(log.add("cancel " + older)).Return(nil)
	if signalErr != nil {
		cancel.Maybe()
	} else {
		cancel.Once()
	}
}

// onBuildLogged mocks a successful build that records when it ran.
func (s *pipelineSuite) onBuildLogged(log *callLog) {
	s.env.OnActivity(acts.Build, mock.Anything, mock.Anything).
		Run(log.add("build")).Return(&activities.BuildResult{}, nil).Once()
}

// TestSupersedesOlderRuns checks the whole hand-over: the lookup is asked for
// this pipeline and ref, started before this run; each older run is told who
// replaces it before it is cancelled (so its cancellation can say so); and the
// build starts only after the older runs were dealt with.
func (s *pipelineSuite) TestSupersedesOlderRuns() {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s.env.SetStartTime(start)
	s.onPlan(supersedingPlan(), nil)
	var query activities.SupersedeQuery
	s.env.OnActivity(acts.FindSuperseded, mock.Anything, mock.Anything).
		Return(func(_ context.Context, q activities.SupersedeQuery) ([]string, error) {
			query = q
			return []string{olderRun1, olderRun2}, nil
		}).Once()
	log := &callLog{}
	s.onSupersede(log, olderRun1, nil)
	s.onSupersede(log, olderRun2, nil)
	s.onBuildLogged(log)

	s.run(pushEvent)

	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal(activities.SupersedeQuery{
		PipelineAttr: workflows.AttrPipeline.GetName(), RefAttr: workflows.AttrRef.GetName(),
		Pipeline: testPipeline, Ref: "main", StartedAt: start, WorkflowID: testRunID,
	}, query)
	s.Equal([]string{
		"signal " + olderRun1, "cancel " + olderRun1,
		"signal " + olderRun2, "cancel " + olderRun2,
		"build",
	}, log.calls)
}

// TestSupersedeIsBestEffort checks that superseding never fails the run: an
// older run that cannot take the signal (it just finished) is not cancelled,
// the next one still is, and the build goes ahead.
func (s *pipelineSuite) TestSupersedeIsBestEffort() {
	s.onPlan(supersedingPlan(), nil)
	s.env.OnActivity(acts.FindSuperseded, mock.Anything, mock.Anything).
		Return([]string{olderRun1, olderRun2}, nil).Once()
	log := &callLog{}
	s.onSupersede(log, olderRun1, errors.New("workflow execution already completed"))
	s.onSupersede(log, olderRun2, nil)
	s.onBuildLogged(log)

	s.run(pushEvent)

	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal([]string{"signal " + olderRun1, "signal " + olderRun2, "cancel " + olderRun2, "build"}, log.calls)
}

// TestSupersedeLookupFails checks that a failing visibility query costs only
// the clean-up: the run still builds and succeeds.
func (s *pipelineSuite) TestSupersedeLookupFails() {
	s.onPlan(supersedingPlan(), nil)
	s.env.OnActivity(acts.FindSuperseded, mock.Anything, mock.Anything).
		Return(nil, errors.New("list runs of widget: unavailable"))
	log := &callLog{}
	s.onBuildLogged(log)

	s.run(pushEvent)

	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal([]string{"build"}, log.calls)
	s.Equal([]string{workflows.StageBuild, "done"}, s.keywords(workflows.AttrStage))
}
