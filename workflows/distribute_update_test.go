package workflows_test

import (
	"context"
	"sync"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/workflows"
)

const shareRole = "arn:aws:iam::333333333333:role/kiln"

// updatePlan is distributePlan with account 222's copies setting an SSM
// parameter and a launch template, and account 333's shares, through a
// role, setting a launch template; a third account updates nothing.
func updatePlan() activities.Plan {
	p := distributePlan()
	t := p.Distribute.Targets
	t[0].SSMParameter = "/kiln/app/ami"
	t[0].LaunchTemplate = &config.LaunchTemplate{Name: "app", SetDefault: true}
	t[1].Role = shareRole
	t[1].LaunchTemplate = &config.LaunchTemplate{Name: "web"}
	p.Distribute.Targets = append(t, config.Target{Account: "444444444444", Mode: config.ModeShare,
		Regions: []config.TargetRegion{{Region: "us-east-1"}}})
	return p
}

// refsRecorder mocks UpdateTargetRefs and logs, with the copies and shares,
// the order things finished in; fail says which updates fail.
type refsRecorder struct {
	*copyRecorder
	mu      sync.Mutex
	updates []activities.RefsInput
	log     []string
	fail    func(key string) error
}

func (r *refsRecorder) note(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, s)
}

func (r *refsRecorder) updateRefs(_ context.Context, in activities.RefsInput) (*activities.RefsResult, error) {
	key := in.Account + "/" + in.Region
	r.mu.Lock()
	r.updates = append(r.updates, in)
	r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(key); err != nil {
			return nil, err
		}
	}
	r.note("update " + key)
	res := &activities.RefsResult{Account: in.Account, Region: in.Region, AMI: in.AMI}
	if in.SSMParameter != "" {
		res.Parameter = &activities.ParameterVersion{Name: in.SSMParameter, Version: 1}
	}
	if lt := in.LaunchTemplate; lt != nil {
		res.LaunchTemplate = &activities.LaunchTemplateVersion{ID: "lt-" + in.Account, Name: lt.Name, Version: 2, Default: lt.SetDefault}
	}
	return res, nil
}

func (r *refsRecorder) calls(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, in := range r.updates {
		if in.Account+"/"+in.Region == key {
			n++
		}
	}
	return n
}

func (s *pipelineSuite) onUpdates(r *refsRecorder) {
	s.env.OnActivity(acts.CopyAMI, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.CopyInput) (*activities.CopyResult, error) {
			res, err := r.copyAMI(ctx, in)
			if err == nil {
				r.note("copy " + in.Account + "/" + in.Region)
			}
			return res, err
		})
	s.env.OnActivity(acts.ShareAMI, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.ShareInput) (*activities.ShareResult, error) {
			res, err := r.shareAMI(ctx, in)
			r.note("share " + in.Account + "/" + in.Region)
			return res, err
		})
	s.env.OnActivity(acts.UpdateTargetRefs, mock.Anything, mock.Anything).Return(r.updateRefs).Maybe()
}

// TestDistributeUpdatesAfterCopyOrShare: each region of a target that asks
// is updated once, as the target's role, with the AMI its copy or share
// ended with, after that copy or share; targets that ask nothing are not
// updated; the versions are in the result.
func (s *pipelineSuite) TestDistributeUpdatesAfterCopyOrShare() {
	s.onPlan(updatePlan(), nil)
	s.onBake()
	rec := &refsRecorder{copyRecorder: &copyRecorder{}}
	s.onUpdates(rec)

	s.run(pushEvent)
	s.Require().NoError(s.env.GetWorkflowError())

	s.Len(rec.updates, 5, "three regions of 222, two of 333, none of 444")
	lt := &config.LaunchTemplate{Name: "app", SetDefault: true}
	s.Contains(rec.updates, activities.RefsInput{RunID: testRunID, Account: "222222222222",
		Role: "arn:aws:iam::222222222222:role/kiln", Region: "eu-west-1", AMI: "ami-copy-222222222222/eu-west-1",
		SSMParameter: "/kiln/app/ami", LaunchTemplate: lt})
	s.Contains(rec.updates, activities.RefsInput{RunID: testRunID, Account: "333333333333", Role: shareRole,
		Region: "eu-west-1", AMI: "ami-copy-/eu-west-1", LaunchTemplate: &config.LaunchTemplate{Name: "web"}})
	s.Contains(rec.updates, activities.RefsInput{RunID: testRunID, Account: "333333333333", Role: shareRole,
		Region: "us-east-1", AMI: "ami-1", LaunchTemplate: &config.LaunchTemplate{Name: "web"}})
	for _, key := range []string{"222222222222/eu-west-1", "222222222222/us-west-2", "222222222222/us-east-1"} {
		s.Less(index(rec.log, "copy "+key), index(rec.log, "update "+key), "%s updated after its copy: %v", key, rec.log)
	}
	for _, key := range []string{"333333333333/us-east-1", "333333333333/eu-west-1"} {
		s.Less(index(rec.log, "share "+key), index(rec.log, "update "+key), "%s updated after its share: %v", key, rec.log)
	}

	var res workflows.PipelineResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Require().NotNil(res.Distribution)
	s.Require().Len(res.Distribution.Updates, 5)
	first := res.Distribution.Updates[0]
	s.Equal("222222222222", first.Account)
	s.Equal("eu-west-1", first.Region, "in the order of the targets")
	s.Equal(&activities.ParameterVersion{Name: "/kiln/app/ami", Version: 1}, first.Parameter)
	s.Equal(&activities.LaunchTemplateVersion{ID: "lt-222222222222", Name: "app", Version: 2, Default: true}, first.LaunchTemplate)
	s.Equal("ami-1", res.Distribution.AMIs["444444444444"]["us-east-1"])
	s.Len(res.Distribution.AMIs, 3, "updates are not targets of the AMI map")

	p := s.progressAny()
	updates := 0
	for _, t := range p.Distribution.Targets {
		s.Equal(workflows.StateSucceeded, t.State, "%+v", t)
		if t.Mode == workflows.ModeUpdate {
			updates++
		}
	}
	s.Equal(5, updates)
}

// TestDistributeNoUpdatesNoChange: a distribution whose targets update
// nothing runs no update and reports none.
func (s *pipelineSuite) TestDistributeNoUpdatesNoChange() {
	s.onPlan(distributePlan(), nil)
	s.onBake()
	rec := &refsRecorder{copyRecorder: &copyRecorder{}}
	s.onUpdates(rec)

	s.run(pushEvent)
	s.Require().NoError(s.env.GetWorkflowError())
	s.Empty(rec.updates)
	var res workflows.PipelineResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Nil(res.Distribution.Updates)
}

// TestDistributeUpdateRetriedAlone: an update AWS refuses for good fails its
// target's update only; the run waits for `kiln retry`, which runs that
// update again and nothing else: no copy or share is repeated.
func (s *pipelineSuite) TestDistributeUpdateRetriedAlone() {
	s.onPlan(updatePlan(), nil)
	s.onBake()
	failed := false
	rec := &refsRecorder{copyRecorder: &copyRecorder{}, fail: func(key string) error {
		if key == "222222222222/us-west-2" && !failed {
			failed = true
			return temporal.NewNonRetryableApplicationError("launch template app: access denied (UnauthorizedOperation)",
				awsx.TypeAccessDenied, nil)
		}
		return nil
	}}
	s.onUpdates(rec)
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

	s.True(waiting.Distribution.WaitingForRetry)
	var failedUnits []workflows.TargetProgress
	for _, t := range waiting.Distribution.Targets {
		if t.State == workflows.StateFailed {
			failedUnits = append(failedUnits, t)
		}
	}
	s.Require().Len(failedUnits, 1)
	s.Equal(workflows.ModeUpdate, failedUnits[0].Mode)
	s.Contains(failedUnits[0].Error, "access denied")
	s.Equal([]string{"222222222222/us-west-2 (update)"}, retried.Targets)
	s.Equal(2, rec.calls("222222222222/us-west-2"), "the failed update, then its retry")
	s.Equal(1, rec.calls("222222222222/eu-west-1"))
	s.Len(rec.copyRecorder.calls("222222222222/us-west-2"), 1, "the copy is not made again")
	s.Len(rec.shares, 3, "each share once")
	var res workflows.PipelineResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Len(res.Distribution.Updates, 5)
}

// TestDistributeUpdateWaitsForItsCopy: a target whose copy failed is not
// updated; the update fails with it, and both run after `kiln retry`.
func (s *pipelineSuite) TestDistributeUpdateWaitsForItsCopy() {
	s.onPlan(updatePlan(), nil)
	s.onBake()
	rec := &refsRecorder{copyRecorder: &copyRecorder{fail: deniedFor("222222222222/eu-west-1", 1)}}
	s.onUpdates(rec)
	var waiting workflows.Progress
	s.env.RegisterDelayedCallback(func() {
		waiting = s.progressAny()
		s.env.UpdateWorkflow(workflows.UpdateRetry, "retry-1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { s.Fail("retry rejected", err.Error()) }, OnAccept: func() {}, OnComplete: func(any, error) {},
		})
	}, time.Hour)

	s.run(pushEvent)
	s.Require().NoError(s.env.GetWorkflowError())

	errs := map[string]string{}
	for _, t := range waiting.Distribution.Targets {
		if t.State == workflows.StateFailed {
			errs[t.Mode] = t.Error
		}
	}
	s.Len(errs, 2)
	s.Equal("updates after the 222222222222/eu-west-1 (copy), which failed", errs[workflows.ModeUpdate])
	s.Equal(1, rec.calls("222222222222/eu-west-1"), "updated once, after the retried copy")
	s.Less(index(rec.log, "copy 222222222222/eu-west-1"), index(rec.log, "update 222222222222/eu-west-1"))
}

// index is the position of s in log, or len(log) when it is not there.
func index(log []string, s string) int {
	for i, l := range log {
		if l == s {
			return i
		}
	}
	return len(log)
}
