package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/test/testkit"
)

// TestSchedulesFollowConfig reconciles Temporal Schedules against changing
// kiln.yaml text: create, leave unchanged, update a changed cron, delete a
// removed trigger, and never touch a schedule kiln does not own. It then
// fires the kiln schedule once and follows the run it starts.
func TestSchedulesFollowConfig(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sc := it.temporal.ScheduleClient()
	const nightly, weekly = "kiln/sched/nightly", "kiln/sched/weekly"

	// Another team's schedule on the same namespace, paused so it never fires.
	foreign := "reports/" + testkit.NewDeliveryID()
	_, err := sc.Create(ctx, client.ScheduleOptions{
		ID: foreign, Paused: true, Spec: client.ScheduleSpec{CronExpressions: []string{"0 5 * * *"}},
		Action: &client.ScheduleWorkflowAction{ID: "report", Workflow: "Report", TaskQueue: "reports"},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sc.GetHandle(context.Background(), foreign).Delete(context.Background()) })

	t.Cleanup(func() {
		for _, id := range []string{nightly, weekly} {
			_ = sc.GetHandle(context.Background(), id).Delete(context.Background())
		}
	})

	both := schedConfig(t, "0 3 * * *", "0 4 * * 1")
	assert.Equal(t, starter.ScheduleChanges{Created: []string{nightly, weekly}}, reconcile(ctx, t, both))
	assert.Equal(t, starter.ScheduleChanges{Unchanged: []string{nightly, weekly}}, reconcile(ctx, t, both))

	// Deletion finds kiln's schedules through the schedule list, which comes
	// from visibility and lags a moment behind a create.
	waitListed(ctx, t, nightly, weekly)
	changed := schedConfig(t, "30 2 * * *", "")
	assert.Equal(t, starter.ScheduleChanges{Updated: []string{nightly}, Deleted: []string{weekly}}, reconcile(ctx, t, changed))
	desc, err := sc.GetHandle(ctx, nightly).Describe(ctx)
	require.NoError(t, err)
	assertCron(t, desc, 2, 30)
	_, err = sc.GetHandle(ctx, weekly).Describe(ctx)
	assert.Error(t, err, "the removed trigger's schedule is gone")
	other, err := sc.GetHandle(ctx, foreign).Describe(ctx)
	require.NoError(t, err, "a schedule kiln does not own survives reconciliation")
	assert.True(t, other.Schedule.State.Paused)

	triggered := time.Now()
	require.NoError(t, sc.GetHandle(ctx, nightly).Trigger(ctx, client.ScheduleTriggerOptions{
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL,
	}))
	var id string
	waitFor(t, 20*time.Second, "the triggered schedule to start a run", func() bool {
		d, err := sc.GetHandle(ctx, nightly).Describe(ctx)
		if err == nil && len(d.Info.RecentActions) > 0 {
			id = d.Info.RecentActions[0].StartWorkflowResult.WorkflowID
		}
		return id != ""
	})
	require.True(t, strings.HasPrefix(id, "sched/main/schedule"), "schedule run ID %q", id)
	res := mustSucceed(t, id)
	assert.Equal(t, map[string]string{"KilnPipeline": "sched", "KilnEvent": "schedule", "KilnRef": "main", "KilnStage": "done"},
		pick(searchAttrsOf(describe(t, id)), "KilnPipeline", "KilnEvent", "KilnRef", "KilnStage"))

	env := readEnvFile(t, filepath.Join(res.Build.ArtifactsDir, "out", "env.txt"))
	assert.Equal(t, "schedule", env["KILN_EVENT"])
	assert.Equal(t, "nightly", env["KILN_SCHEDULE"])
	assert.Equal(t, "main", env["FLOW_BRANCH"])
	at, err := time.Parse(time.RFC3339, env["FLOW_SCHEDULE"])
	require.NoError(t, err, "FLOW_SCHEDULE is RFC 3339: %q", env["FLOW_SCHEDULE"])
	assert.WithinRange(t, at, triggered.Add(-time.Minute), time.Now().Add(time.Minute))

	none := schedConfig(t, "", "")
	assert.Equal(t, starter.ScheduleChanges{Deleted: []string{nightly}}, reconcile(ctx, t, none))
	// The list still shows nightly, deleted a moment ago, with its old spec:
	// adding the triggers back must create both, not fail to update nightly.
	assert.Equal(t, starter.ScheduleChanges{Created: []string{nightly, weekly}}, reconcile(ctx, t, both))
	waitListed(ctx, t, nightly, weekly)
	assert.Equal(t, starter.ScheduleChanges{Deleted: []string{nightly, weekly}}, reconcile(ctx, t, none))
}

// schedConfig parses a kiln.yaml whose sched pipeline has a nightly and a
// weekly schedule trigger, each left out when its cron is "".
func schedConfig(t *testing.T, nightlyCron, weeklyCron string) *config.Config {
	t.Helper()
	var triggers strings.Builder
	triggers.WriteString("{manual: true")
	if nightlyCron != "" || weeklyCron != "" {
		triggers.WriteString(", schedule: [")
		var list []string
		if nightlyCron != "" {
			list = append(list, fmt.Sprintf("{name: nightly, cron: %q, ref: main}", nightlyCron))
		}
		if weeklyCron != "" {
			list = append(list, fmt.Sprintf("{name: weekly, cron: %q, ref: main}", weeklyCron))
		}
		triggers.WriteString(strings.Join(list, ", ") + "]")
	}
	triggers.WriteString("}")
	yaml := `repos:
  - name: kiln-it/sched
    clone_url: ` + strconv.Quote(repoDir("sched")) + `
    webhook_secret: {env: ` + secretEnv + `}
pipelines:
  - name: sched
    repo: kiln-it/sched
    triggers: ` + triggers.String() + `
    stages:
      build: {buildspec: buildspec.yml}
`
	cfg, err := config.Parse("schedules.yaml", []byte(yaml))
	require.NoError(t, err, "schedules.yaml:\n%s", yaml)
	return cfg
}

// reconcile runs one reconciliation and returns what it did, with empty lists
// as nil so results compare with a literal.
func reconcile(ctx context.Context, t *testing.T, cfg *config.Config) starter.ScheduleChanges {
	t.Helper()
	ch, err := starter.ReconcileSchedules(ctx, it.temporal.ScheduleClient(), cfg)
	require.NoError(t, err)
	for _, l := range []*[]string{&ch.Created, &ch.Updated, &ch.Deleted, &ch.Unchanged} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	return ch
}

// waitListed waits until the schedule list, which reconciliation reads, shows
// every one of ids.
func waitListed(ctx context.Context, t *testing.T, ids ...string) {
	t.Helper()
	waitFor(t, 15*time.Second, "schedules "+strings.Join(ids, ", ")+" in the list", func() bool {
		iter, err := it.temporal.ScheduleClient().List(ctx, client.ScheduleListOptions{})
		if err != nil {
			return false
		}
		seen := map[string]bool{}
		for iter.HasNext() {
			if e, err := iter.Next(); err == nil {
				seen[e.ID] = true
			}
		}
		for _, id := range ids {
			if !seen[id] {
				return false
			}
		}
		return true
	})
}

// assertCron checks a schedule fires daily at hour:minute UTC. The server
// keeps a cron string as a structured calendar, so the next action times are
// the reliable reading of it.
func assertCron(t *testing.T, d *client.ScheduleDescription, hour, minute int) {
	t.Helper()
	require.NotEmpty(t, d.Info.NextActionTimes)
	for _, next := range d.Info.NextActionTimes {
		next = next.UTC()
		assert.Equal(t, [2]int{hour, minute}, [2]int{next.Hour(), next.Minute()}, "next action at %s", next)
	}
}

// readEnvFile reads KEY=VALUE lines a build wrote with env.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
		}
	}
	return out
}
