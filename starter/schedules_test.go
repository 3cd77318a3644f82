package starter

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/workflows"
)

// TestRetentionSchedule: a pipeline with a lifecycle gets a retention
// schedule on its lifecycle's cron (daily by default), which starts the
// Retention workflow with a retry window; one without gets none, and a
// changed cron changes the schedule's fingerprint.
func TestRetentionSchedule(t *testing.T) {
	bake := config.Stages{Bake: &config.BakeStage{Template: "t.pkr.hcl", Region: "us-east-1"}}
	cfg := &config.Config{Pipelines: []config.Pipeline{
		{Name: "base", Stages: bake, Lifecycle: &config.Lifecycle{Retention: config.Retention{DeleteAfter: config.Age(time.Hour)}}},
		{Name: "app", Stages: bake},
	}}
	want := desiredSchedules(cfg)
	require.Len(t, want, 1)
	opts, ok := want["kiln/base#retention"]
	require.True(t, ok, "schedules: %v", want)
	assert.Equal(t, []string{"@daily"}, opts.Spec.CronExpressions)
	action := opts.Action.(*client.ScheduleWorkflowAction)
	assert.Equal(t, workflows.RetentionWorkflowName, action.Workflow)
	assert.Equal(t, "kiln-retention/base", action.ID)
	assert.Equal(t, workflows.TaskQueue, action.TaskQueue)
	assert.Equal(t, []any{workflows.RetentionInput{Pipeline: "base", RetryWindow: workflows.RetentionRetryWindow}}, action.Args)

	cfg.Pipelines[0].Lifecycle.Schedule = "0 4 * * *"
	again := desiredSchedules(cfg)["kiln/base#retention"]
	assert.Equal(t, []string{"0 4 * * *"}, again.Spec.CronExpressions)
	assert.NotEqual(t, opts.Note, again.Note, "a changed schedule is updated")
}
