package activities

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/config"
)

// TestPlanRetentionPlaces: the worker's account is searched in the bake,
// test and distribution regions; a copy target's account in its regions,
// as its role; a share target's only when kiln sets its parameter or
// launch template, and the parameters are named per place. An unknown
// pipeline names those that exist.
func TestPlanRetentionPlaces(t *testing.T) {
	role := func(acct string) string { return "arn:aws:iam::" + acct + ":role/kiln" }
	cfg := &config.Config{File: "kiln.yaml", Pipelines: []config.Pipeline{{
		Name: "app",
		Stages: config.Stages{
			Bake: &config.BakeStage{Region: "us-east-1"},
			Test: &config.TestStage{Region: "us-west-2"},
			Distribute: &config.DistributeStage{Targets: []config.Target{
				{Account: "222222222222", Role: role("222222222222"), Mode: config.ModeCopy, SSMParameter: "/app/ami",
					Regions: []config.TargetRegion{{Region: "eu-west-1"}}},
				{Account: "333333333333", Role: role("333333333333"), Mode: config.ModeShare,
					Regions: []config.TargetRegion{{Region: "ap-south-1"}}},
				{Account: "444444444444", Role: role("444444444444"), Mode: config.ModeShare, SSMParameter: "/app/ami",
					Regions: []config.TargetRegion{{Region: "us-east-1"}}},
			}},
		},
		Lifecycle: &config.Lifecycle{Retention: config.Retention{Keep: 2}},
	}}}
	a := &Activities{Config: cfg}
	plan, err := a.PlanRetention(context.Background(), "app")
	require.NoError(t, err)
	var places []string
	for _, p := range plan.Places {
		places = append(places, p.String())
	}
	assert.Equal(t, []string{"222222222222/eu-west-1", "444444444444/us-east-1",
		"self/ap-south-1", "self/eu-west-1", "self/us-east-1", "self/us-west-2"}, places)
	assert.Equal(t, role("222222222222"), plan.Places[0].Role)
	assert.Equal(t, map[string][]string{"222222222222/eu-west-1": {"/app/ami"}, "444444444444/us-east-1": {"/app/ami"}}, plan.Parameters)
	assert.Equal(t, 2, plan.Lifecycle.Keep)

	_, err = a.PlanRetention(context.Background(), "nope")
	assert.ErrorContains(t, err, `pipeline "nope" is not in kiln.yaml (pipelines: app)`)
}
