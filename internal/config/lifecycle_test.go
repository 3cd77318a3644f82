package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLifecycleProblems: a lifecycle needs a bake, steps in EC2's order,
// valid ref globs and a valid schedule; each problem names its field.
func TestLifecycleProblems(t *testing.T) {
	requireProblems(t, head+`pipelines:
  - name: base
    repo: acme/widget
    triggers: {manual: true}
    stages: {bake: {template: t.pkr.hcl, region: us-east-1}}
    lifecycle:
      deprecate_after: 60d
      disable_after: 30d
      refs: [{ref: "refs/pull/[", delete_after: 7d}]
      schedule: "every day"
  - name: nobake
    repo: acme/widget
    triggers: {manual: true}
    stages: {build: {buildspec: b.yml}}
    lifecycle: {keep: 1, delete_after: 90d}
`,
		problem{12, "pipelines[0].lifecycle.disable_after", "disable_after (30d) comes before deprecate_after (60d); the steps go deprecate, disable, delete"},
		problem{13, "pipelines[0].lifecycle.refs[0].ref", `"refs/pull/[" is not a valid glob`},
		problem{14, "pipelines[0].lifecycle.schedule", `"every day" is not a valid cron expression`},
		problem{19, "pipelines[1].lifecycle", `pipeline "nobake" bakes no AMI to retire`},
	)
	requireProblems(t, head+`pipelines:
  - name: base
    repo: acme/widget
    triggers: {manual: true}
    stages: {bake: {template: t.pkr.hcl, region: us-east-1}}
    lifecycle: {keep: 1, delete_after: 90x}
`, problem{10, "pipelines[0].lifecycle.delete_after", `"90x" is not a valid age: a number of days such as 30d`})
}

// TestLifecycleFor: the first matching ref's retention wins, else the
// pipeline's; ages read days and Go durations.
func TestLifecycleFor(t *testing.T) {
	cfg, err := Parse("kiln.yaml", []byte(head+`pipelines:
  - name: base
    repo: acme/widget
    triggers: {manual: true}
    stages: {bake: {template: t.pkr.hcl, region: us-east-1}}
    lifecycle:
      keep: 5
      deprecate_after: 30d
      delete_after: 90d
      refs:
        - {ref: "refs/pull/**", keep: 1, delete_after: 36h}
        - {ref: "refs/tags/v*", keep: 100}
`))
	require.NoError(t, err)
	l := cfg.Pipelines[0].Lifecycle
	assert.Equal(t, Retention{Keep: 5, DeprecateAfter: Age(30 * 24 * time.Hour), DeleteAfter: Age(90 * 24 * time.Hour)}, l.For("refs/heads/main"))
	assert.Equal(t, Retention{Keep: 1, DeleteAfter: Age(36 * time.Hour)}, l.For("refs/pull/7/head"))
	assert.Equal(t, 100, l.For("refs/tags/v1.2.0").Keep)
	assert.Equal(t, "@daily", l.ScheduleOrDefault())
	assert.Equal(t, "30d", l.DeprecateAfter.String())
}
