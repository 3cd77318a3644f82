package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/workflows"
)

// distributePlan bakes in us-east-1 and distributes: account 222 gets
// encrypted copies in three regions through its role, account 333 gets the
// AMI shared in the source region and in eu-west-1.
func distributePlan() activities.Plan {
	p := bakePlan()
	p.Build = nil
	p.Distribute = &config.DistributeStage{
		RetryWindow: config.Duration(2 * time.Hour),
		Targets: []config.Target{
			{Account: "222222222222", Role: "arn:aws:iam::222222222222:role/kiln", Mode: config.ModeCopy,
				Regions: []config.TargetRegion{{Region: "eu-west-1", KMSKey: "k-eu"}, {Region: "us-west-2", KMSKey: "k-usw2"}, {Region: "us-east-1", KMSKey: "k-use1"}}},
			{Account: "333333333333", Mode: config.ModeShare,
				Regions: []config.TargetRegion{{Region: "us-east-1"}, {Region: "eu-west-1"}}},
		},
	}
	return p
}

// copyRecorder mocks CopyAMI and ShareAMI, recording their inputs; fail says
// which copies fail, by "account/region" ("/region" for regional copies).
type copyRecorder struct {
	mu     sync.Mutex
	copies []activities.CopyInput
	shares []activities.ShareInput
	fail   func(key string, in activities.CopyInput) error
}

func (c *copyRecorder) copyAMI(_ context.Context, in activities.CopyInput) (*activities.CopyResult, error) {
	c.mu.Lock()
	c.copies = append(c.copies, in)
	c.mu.Unlock()
	key := in.Account + "/" + in.Region
	if c.fail != nil {
		if err := c.fail(key, in); err != nil {
			return nil, err
		}
	}
	return &activities.CopyResult{Account: in.Account, Region: in.Region, AMI: "ami-copy-" + key}, nil
}

func (c *copyRecorder) shareAMI(_ context.Context, in activities.ShareInput) (*activities.ShareResult, error) {
	c.mu.Lock()
	c.shares = append(c.shares, in)
	c.mu.Unlock()
	return &activities.ShareResult{Account: in.Account, Region: in.Region, AMI: in.AMI}, nil
}

func (c *copyRecorder) calls(key string) []activities.CopyInput {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []activities.CopyInput
	for _, in := range c.copies {
		if in.Account+"/"+in.Region == key {
			out = append(out, in)
		}
	}
	return out
}

func (s *pipelineSuite) onDistribute(rec *copyRecorder) {
	s.env.OnActivity(acts.CopyAMI, mock.Anything, mock.Anything).Return(rec.copyAMI)
	s.env.OnActivity(acts.ShareAMI, mock.Anything, mock.Anything).Return(rec.shareAMI).Maybe()
}

// TestDistributeEveryTarget: every account × region is copied or shared once,
// from the bake region's AMI, with the target's role and KMS key; a share in
// another region shares a same-account copy made there first; the AMI map is
// the stage's output.
func (s *pipelineSuite) TestDistributeEveryTarget() {
	s.onPlan(distributePlan(), nil)
	s.onBake()
	rec := &copyRecorder{}
	s.onDistribute(rec)

	s.run(pushEvent)
	s.Require().NoError(s.env.GetWorkflowError())

	src := activities.SourceAMI{Region: "us-east-1", AMI: "ami-1"}
	s.Len(rec.copies, 4, "three copies for 222, one regional copy for sharing in eu-west-1")
	for _, r := range []struct{ region, key string }{{"eu-west-1", "k-eu"}, {"us-west-2", "k-usw2"}, {"us-east-1", "k-use1"}} {
		got := rec.calls("222222222222/" + r.region)
		s.Require().Len(got, 1, r.region)
		s.Equal(activities.CopyInput{RunID: testRunID, Pipeline: testPipeline, Source: src, Account: "222222222222",
			Role: "arn:aws:iam::222222222222:role/kiln", Region: r.region, KMSKey: r.key}, got[0])
	}
	regional := rec.calls("/eu-west-1")
	s.Require().Len(regional, 1)
	s.Empty(regional[0].Role + regional[0].KMSKey)
	s.ElementsMatch([]activities.ShareInput{
		{RunID: testRunID, Region: "us-east-1", AMI: "ami-1", Account: "333333333333"},
		{RunID: testRunID, Region: "eu-west-1", AMI: "ami-copy-/eu-west-1", Account: "333333333333"},
	}, rec.shares)

	var res workflows.PipelineResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Require().NotNil(res.Distribution)
	s.Equal(workflows.AMIMap{
		"222222222222": {"eu-west-1": "ami-copy-222222222222/eu-west-1", "us-west-2": "ami-copy-222222222222/us-west-2",
			"us-east-1": "ami-copy-222222222222/us-east-1"},
		"333333333333": {"us-east-1": "ami-1", "eu-west-1": "ami-copy-/eu-west-1"},
	}, res.Distribution.AMIs)
	s.Equal([]string{"bake", "distribute", "done"}, s.keywords(workflows.AttrStage))
	p := s.progressAny()
	s.Require().NotNil(p.Distribution)
	s.Len(p.Distribution.Targets, 6)
	for _, t := range p.Distribution.Targets {
		s.Equal(workflows.StateSucceeded, t.State, "%+v", t)
	}
}

// TestDistributeCapsCopiesPerRegion: with twelve accounts copying into one
// region and max_copies_per_region 3, never more than three copies run at
// once, and all twelve finish.
func (s *pipelineSuite) TestDistributeCapsCopiesPerRegion() {
	plan := distributePlan()
	plan.Distribute.MaxCopiesPerRegion = 3
	plan.Distribute.Targets = nil
	for i := range 12 {
		plan.Distribute.Targets = append(plan.Distribute.Targets, config.Target{
			Account: fmt.Sprintf("1000000000%02d", i), Mode: config.ModeCopy,
			Regions: []config.TargetRegion{{Region: "eu-west-1", KMSKey: "k"}},
		})
	}
	s.onPlan(plan, nil)
	s.onBake()
	var running, most atomic.Int32
	s.env.OnActivity(acts.CopyAMI, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CopyInput) (*activities.CopyResult, error) {
			n := running.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(30 * time.Millisecond)
			running.Add(-1)
			return &activities.CopyResult{AMI: "ami-" + in.Account}, nil
		})

	s.run(pushEvent)
	s.Require().NoError(s.env.GetWorkflowError())

	s.env.AssertActivityNumberOfCalls(s.T(), "CopyAMI", 12)
	s.Equal(int32(3), most.Load(), "copies into eu-west-1 at once")
}

// deniedFor fails the key's copy as AWS does when the target role may not be
// assumed; everything else succeeds.
func deniedFor(key string, times int) func(string, activities.CopyInput) error {
	var n atomic.Int32
	return func(k string, _ activities.CopyInput) error {
		if k == key && int(n.Add(1)) <= times {
			return temporal.NewNonRetryableApplicationError("assume arn:aws:iam::222222222222:role/kiln: access denied (AccessDenied)",
				awsx.TypeAccessDenied, nil)
		}
		return nil
	}
}

// TestDistributeWaitsForRetry: a permanently failed target does not end the
// run. The others finish; the run waits, visibly, until `kiln retry`; the
// retry copies only the failed target, with a new generation, and the run
// completes.
func (s *pipelineSuite) TestDistributeWaitsForRetry() {
	s.onPlan(distributePlan(), nil)
	s.onBake()
	rec := &copyRecorder{fail: deniedFor("222222222222/us-west-2", 1)}
	s.onDistribute(rec)
	var waiting workflows.Progress
	var retried workflows.RetryResult
	s.env.RegisterDelayedCallback(func() {
		waiting = s.progressAny()
		s.env.UpdateWorkflow(workflows.UpdateRetry, "retry-1", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { s.Fail("retry rejected", err.Error()) },
			OnAccept:   func() {},
			OnComplete: func(v any, err error) { s.NoError(err); retried = v.(workflows.RetryResult) },
		})
	}, time.Hour)

	s.run(pushEvent)
	s.Require().NoError(s.env.GetWorkflowError())

	s.Require().NotNil(waiting.Distribution)
	s.True(waiting.Distribution.WaitingForRetry)
	var failed []workflows.TargetProgress
	for _, t := range waiting.Distribution.Targets {
		if t.State == workflows.StateFailed {
			failed = append(failed, t)
		}
	}
	s.Require().Len(failed, 1)
	s.Equal("us-west-2", failed[0].Region)
	s.Contains(failed[0].Error, "access denied")
	s.Equal([]string{"222222222222/us-west-2 (copy)"}, retried.Targets)

	s.Len(rec.calls("222222222222/eu-west-1"), 1, "a target that succeeded is not copied again")
	again := rec.calls("222222222222/us-west-2")
	s.Require().Len(again, 2, "the failed target is not retried until kiln retry, then once")
	s.Equal([]int{0, 1}, []int{again[0].Generation, again[1].Generation})
	s.Equal([]string{"bake", "distribute", workflows.StageDistributeWaiting, "distribute", "done"},
		s.keywords(workflows.AttrStage))
}

// TestDistributeFailsAfterRetryWindow: nobody retries, so after the window
// the run fails with a report naming each failed target and why.
func (s *pipelineSuite) TestDistributeFailsAfterRetryWindow() {
	s.onPlan(distributePlan(), nil)
	s.onBake()
	s.onDistribute(&copyRecorder{fail: deniedFor("222222222222/us-west-2", 100)})
	start := s.env.Now()

	s.run(pushEvent)

	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(s.env.GetWorkflowError(), &appErr))
	s.Equal(workflows.ErrDistributionFailed, appErr.Type())
	// The Web UI heads the failure with its stage.
	s.Equal("distribute: 1 distribution target(s) failed and were not retried within 2h0m0s:\n"+
		"  222222222222/us-west-2 (copy): assume arn:aws:iam::222222222222:role/kiln: access denied (AccessDenied)",
		appErr.Message())
	s.GreaterOrEqual(s.env.Now().Sub(start), 2*time.Hour)
	s.env.AssertActivityNumberOfCalls(s.T(), "CopyAMI", 4)
	p := s.progressAny()
	s.Equal(workflows.StateFailed, p.Stages[len(p.Stages)-1].State)
}

// TestRetryRefusedWhenNotWaiting: the update's validator refuses a retry of a
// run whose distribution is not waiting, and the run goes on unaffected.
func (s *pipelineSuite) TestRetryRefusedWhenNotWaiting() {
	s.onPlan(distributePlan(), nil)
	s.onBake()
	s.onDistribute(&copyRecorder{})
	var rejected error
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(workflows.UpdateRetry, "retry-early", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { rejected = err },
			OnAccept:   func() { s.Fail("a retry was accepted while nothing waited") },
			OnComplete: func(any, error) {},
		})
	}, time.Nanosecond)

	s.run(pushEvent)

	s.Require().NoError(s.env.GetWorkflowError())
	s.Require().Error(rejected)
	s.Contains(rejected.Error(), "is not waiting for a retry")
}

// TestFailedSharePrerequisite: when the regional copy a share needs fails,
// the share fails with it, without being attempted, and both are retried.
func (s *pipelineSuite) TestFailedSharePrerequisite() {
	s.onPlan(distributePlan(), nil)
	s.onBake()
	rec := &copyRecorder{fail: func(key string, _ activities.CopyInput) error {
		if key == "/eu-west-1" {
			return temporal.NewNonRetryableApplicationError("no", awsx.TypeInvalidRequest, nil)
		}
		return nil
	}}
	s.onDistribute(rec)

	s.run(pushEvent)

	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(s.env.GetWorkflowError(), &appErr))
	s.Contains(appErr.Message(), "2 distribution target(s) failed")
	s.Contains(appErr.Message(), "333333333333/eu-west-1 (share): needs the copy in eu-west-1 to share, which failed")
	s.Len(rec.shares, 1, "only the us-east-1 share ran")
}
