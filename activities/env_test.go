package activities

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
)

// amiEvent is a run started by base's tested AMIs, baked in us-east-1 and
// copied to eu-west-1 by Packer.
func amiEvent() event.Event {
	ev := event.Event{Kind: event.KindAMI, AMI: &event.AMIPass{Pipeline: "base", RunID: "base/main/r1", Commit: "c0ffee",
		Region: "us-east-1", AMIs: map[string]string{"us-east-1": "ami-1", "eu-west-1": "ami-2"}}}
	ev.FromRef("HEAD")
	return ev
}

// TestBaseAMIReachesTheBuildAndTheBake: a run started by a tested AMI sees
// the AMI of its own bake region (or the base's bake region's), every
// region's, and the run that tested it.
func TestBaseAMIReachesTheBuildAndTheBake(t *testing.T) {
	for region, want := range map[string]string{"eu-west-1": "ami-2", "ap-south-1": "ami-1"} {
		plan := Plan{Commit: "abc", Bake: &config.BakeStage{Template: "app.pkr.hcl", Region: region}}
		in := BuildInput{RunID: "app/HEAD/ami-1", Pipeline: "app", Event: amiEvent(), Plan: plan}
		env := EventEnv(in)
		assert.Contains(t, env, "KILN_BASE_AMI="+want, region)
		assert.Contains(t, env, "KILN_BASE_AMI_US_EAST_1=ami-1")
		assert.Contains(t, env, "KILN_BASE_AMI_EU_WEST_1=ami-2")
		assert.Contains(t, env, "KILN_BASE_AMI_COMMIT=c0ffee")
		assert.Contains(t, env, "KILN_TRIGGER_PIPELINE=base")
		assert.Contains(t, env, "KILN_TRIGGER_RUN_ID=base/main/r1")

		opts, err := (&Activities{}).packerOptions(BakeInput{RunID: in.RunID, Pipeline: "app", Event: in.Event, Plan: plan}, t.TempDir())
		require.NoError(t, err)
		assert.Contains(t, opts.Env, "PKR_VAR_kiln_base_ami="+want, region)
	}
	opts, err := (&Activities{PackerPlugins: "/data/packer-plugins"}).packerOptions(BakeInput{Event: event.Event{Kind: event.KindManual},
		Plan: Plan{Bake: &config.BakeStage{Region: "us-east-1"}}}, t.TempDir())
	require.NoError(t, err)
	for _, kv := range opts.Env {
		assert.NotContains(t, kv, "kiln_base_ami", "only an AMI trigger sets a base")
	}
	assert.Contains(t, opts.Env, "PACKER_PLUGIN_PATH=/data/packer-plugins", "kiln's plugin reaches Packer")
}

// TestAMIDependents: a pipeline that bakes and tests lists, in config
// order, the pipelines its AMIs trigger; one that does not test lists none.
func TestAMIDependents(t *testing.T) {
	bakes := config.Stages{Bake: &config.BakeStage{Region: "us-east-1"}, Test: &config.TestStage{Commands: []string{"true"}}}
	cfg := &config.Config{Pipelines: []config.Pipeline{
		{Name: "base", Stages: bakes},
		{Name: "app", Triggers: config.Triggers{AMI: []config.AMITrigger{{Pipeline: "base"}}}},
		{Name: "site", Triggers: config.Triggers{AMI: []config.AMITrigger{{Pipeline: "base", Ref: "release"}, {Pipeline: "app"}}}},
		{Name: "untested", Stages: config.Stages{Bake: bakes.Bake}},
	}}
	a := &Activities{Config: cfg}
	assert.Equal(t, []AMIDependent{{Pipeline: "app"}, {Pipeline: "site", Ref: "release"}}, a.amiDependents(&cfg.Pipelines[0]))
	assert.Empty(t, a.amiDependents(&cfg.Pipelines[3]))
}
