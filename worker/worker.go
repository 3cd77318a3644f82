// Package worker registers kiln's workflows and activities with a Temporal
// worker polling kiln's task queue.
package worker

import (
	"time"

	"github.com/rs/zerolog"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/workflows"
)

// Options configure a kiln worker.
type Options struct {
	// Config supplies pipeline definitions to the plan activity.
	Config *config.Config
	// DataDir holds logs, artifacts and workspaces.
	DataDir string
	// MaxConcurrentBuilds caps builds run at once by this worker; default 4.
	MaxConcurrentBuilds int
	// PackerBinary is the packer the bake stage runs; empty means "packer"
	// from PATH.
	PackerBinary string
	Log          zerolog.Logger
}

// heartbeatThrottle is the longest the SDK may hold back a build's heartbeat.
// It is well under how often builds heartbeat (every 5 s), so each of those
// heartbeats goes out when it is made and brings back any cancellation.
const heartbeatThrottle = time.Second

// New returns a worker with kiln's workflows and activities registered. The
// caller starts and stops it.
func New(c client.Client, o Options) worker.Worker {
	if o.MaxConcurrentBuilds == 0 {
		o.MaxConcurrentBuilds = 4
	}
	w := worker.New(c, workflows.TaskQueue, worker.Options{
		MaxConcurrentActivityExecutionSize: o.MaxConcurrentBuilds,
		// A cancellation reaches a build only in the answer to a heartbeat the
		// SDK sends. Left alone, the SDK holds heartbeats back for 80% of the
		// 30 s heartbeat timeout, so a cancelled or superseded build would run
		// on for up to 24 s; this lets the build's 5 s heartbeats through.
		MaxHeartbeatThrottleInterval: heartbeatThrottle,
	})
	Register(w, &activities.Activities{
		Config: o.Config, DataDir: o.DataDir, Runs: c, Log: o.Log, PackerBinary: o.PackerBinary,
	})
	return w
}

// Register adds kiln's workflows and the given activities to any registry: a
// worker, or a test environment.
func Register(r worker.Registry, acts *activities.Activities) {
	r.RegisterWorkflowWithOptions(workflows.Pipeline, workflow.RegisterOptions{Name: workflows.PipelineWorkflowName})
	r.RegisterActivity(acts)
}
