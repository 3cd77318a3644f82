package workflows_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/ami"
	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/workflows"
)

// retentionEnv runs Retention over two places: the worker's account in
// us-east-1, holding an old AMI and a young one, and a target account that
// denies kiln its listing.
func retentionEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *[]activities.RetireInput) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(workflows.Retention, workflow.RegisterOptions{Name: workflows.RetentionWorkflowName})
	env.RegisterActivity(acts)
	own, target := activities.Place{Region: "us-east-1"}, activities.Place{Account: "222222222222", Region: "eu-west-1", Role: "arn:aws:iam::222222222222:role/kiln"}
	env.OnActivity(acts.PlanRetention, mock.Anything, "base").Return(&activities.RetentionPlan{
		Places:    []activities.Place{target, own},
		Lifecycle: &config.Lifecycle{Retention: config.Retention{DeleteAfter: config.Age(30 * 24 * time.Hour)}},
	}, nil)
	now := env.Now()
	env.OnActivity(acts.ListAMIs, mock.Anything, activities.PlaceInput{Pipeline: "base", Place: own}).Return(&activities.PlaceAMIs{
		Images: []ami.Image{
			{ID: "ami-old", Region: "us-east-1", Run: "r1", State: "available", Created: now.Add(-40 * 24 * time.Hour)},
			{ID: "ami-new", Region: "us-east-1", Run: "r2", State: "available", Created: now.Add(-time.Hour)},
		},
	}, nil)
	env.OnActivity(acts.ListAMIs, mock.Anything, activities.PlaceInput{Pipeline: "base", Place: target}).Return(nil,
		temporal.NewNonRetryableApplicationError("list the AMIs of base in eu-west-1: access denied", awsx.TypeAccessDenied, nil)).Once()
	var retired []activities.RetireInput
	env.OnActivity(acts.RetireAMIs, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RetireInput) (int, error) {
		retired = append(retired, in)
		return len(in.Decisions), nil
	})
	return env, &retired
}

// TestRetentionRetiresPlaceByPlace: the old AMI is deleted in its place;
// the young one is kept; the denied account fails alone and is named.
func TestRetentionRetiresPlaceByPlace(t *testing.T) {
	env, retired := retentionEnv(t)
	env.ExecuteWorkflow(workflows.RetentionWorkflowName, workflows.RetentionInput{Pipeline: "base"})
	require.NoError(t, env.GetWorkflowError())
	var res workflows.RetentionResult
	require.NoError(t, env.GetWorkflowResult(&res))

	require.Len(t, *retired, 1, "one place has steps to take")
	in := (*retired)[0]
	assert.Equal(t, activities.Place{Region: "us-east-1"}, in.Place)
	require.Len(t, in.Decisions, 1, "only the steps, not what is kept")
	assert.Equal(t, "ami-old", in.Decisions[0].Image.ID)
	assert.Equal(t, ami.ActionDelete, in.Decisions[0].Action)
	assert.Equal(t, 1, res.Retired)
	assert.Len(t, res.Decisions, 2, "the result lists what is kept too")
	assert.Equal(t, map[string]string{"222222222222/eu-west-1": "list the AMIs of base in eu-west-1: access denied"}, res.Failed)
}

// TestRetentionDryRunRetiresNothing: kiln amis prune --dry-run plans the
// same and takes no step.
func TestRetentionDryRunRetiresNothing(t *testing.T) {
	env, retired := retentionEnv(t)
	env.ExecuteWorkflow(workflows.RetentionWorkflowName, workflows.RetentionInput{Pipeline: "base", DryRun: true})
	require.NoError(t, env.GetWorkflowError())
	var res workflows.RetentionResult
	require.NoError(t, env.GetWorkflowResult(&res))
	assert.Empty(t, *retired)
	assert.Zero(t, res.Retired)
	actions := map[string]string{}
	for _, d := range res.Decisions {
		actions[d.Image.ID] = d.Action
	}
	assert.Equal(t, map[string]string{"ami-old": ami.ActionDelete, "ami-new": ami.ActionKeep}, actions)
}

// TestRetentionWaitsForRetry: a scheduled run whose place failed waits for
// kiln retry, which lists and retires that place again; once the window
// closes, the run ends naming what still fails.
func TestRetentionWaitsForRetry(t *testing.T) {
	for _, retried := range []bool{true, false} {
		env, retired := retentionEnv(t)
		target := activities.Place{Account: "222222222222", Region: "eu-west-1", Role: "arn:aws:iam::222222222222:role/kiln"}
		env.OnActivity(acts.ListAMIs, mock.Anything, activities.PlaceInput{Pipeline: "base", Place: target}).Return(&activities.PlaceAMIs{
			Images: []ami.Image{{ID: "ami-copy", Account: "222222222222", Region: "eu-west-1", Run: "r1", State: "available",
				Created: env.Now().Add(-40 * 24 * time.Hour)}},
		}, nil)
		if retried {
			env.RegisterDelayedCallback(func() {
				env.UpdateWorkflow(workflows.UpdateRetry, "retry-1", &testsuite.TestUpdateCallback{
					OnReject:   func(err error) { t.Errorf("retry refused: %v", err) },
					OnComplete: func(any, error) {},
				})
			}, time.Hour)
		}
		env.ExecuteWorkflow(workflows.RetentionWorkflowName, workflows.RetentionInput{Pipeline: "base", RetryWindow: 20 * time.Hour})
		require.NoError(t, env.GetWorkflowError())
		var res workflows.RetentionResult
		require.NoError(t, env.GetWorkflowResult(&res))
		if !retried {
			assert.Equal(t, map[string]string{"222222222222/eu-west-1": "list the AMIs of base in eu-west-1: access denied"}, res.Failed,
				"the window closed")
			assert.Len(t, *retired, 1)
			continue
		}
		assert.Empty(t, res.Failed, "the retry listed the place")
		assert.Equal(t, 1, res.Retries)
		require.Len(t, *retired, 2, "the first pass's place, then the retried one")
		assert.Equal(t, target, (*retired)[1].Place)
		assert.Equal(t, "ami-copy", (*retired)[1].Decisions[0].Image.ID)
		assert.Equal(t, 2, res.Retired)
	}
}
