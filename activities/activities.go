// Package activities holds the work a pipeline's stages do: planning a run from
// config, finding superseded runs, and building. Each activity is a method on
// Activities, which holds the clients and settings they need.
package activities

import (
	"context"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rs/zerolog"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/kiln-ci/kiln/internal/ami"
	"github.com/kiln-ci/kiln/internal/artifacts"
	"github.com/kiln-ci/kiln/internal/buildkit"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/hostuser"
)

// Activities are kiln's activity implementations, registered with a worker.
type Activities struct {
	// Config is the worker's kiln.yaml: the source of pipeline definitions.
	Config *config.Config
	// DataDir holds logs, artifacts and workspaces (see Paths).
	DataDir string
	// Runs lists runs in Temporal's visibility store.
	Runs RunLister
	// Log receives structured logs; never secrets.
	Log zerolog.Logger
	// AWS makes AWS clients per region and principal; nil means
	// ami.DefaultClients.
	AWS ami.Clients
	// CopyPollInterval is how often a distribution checks whether a copy is
	// available yet; default 15s.
	CopyPollInterval time.Duration
	// PackerBinary runs bakes; empty means "packer" from PATH.
	PackerBinary string
	// PackerPlugins is the PACKER_PLUGIN_PATH bakes get (kiln's own plugin
	// first); empty leaves Packer's default.
	PackerPlugins string
	// HostQueue is the task queue only this worker polls: work that needs
	// this worker's disk (building an image from build artifacts) runs there.
	HostQueue string
	// UIURL is the Temporal Web UI's base URL, for links to runs in reports
	// and notifications; empty leaves links out.
	UIURL string
	// Containers runs builds inside images and builds Dockerfiles; nil when
	// this worker has no container runtime, and NoContainers says why.
	Containers   *buildkit.Client
	NoContainers error
	// BuildUsers, on a worker running as root, runs each host build and
	// test command as a user of its own (see internal/hostuser); nil runs
	// them as the worker's user. WorkDir must then be reachable by them.
	BuildUsers *hostuser.Pool
	// WorkDir holds the attempts' workspaces; default <DataDir>/work.
	WorkDir string
	// Artifacts is where builds store their artifacts for every worker
	// (kiln.yaml's artifacts); nil keeps them on this worker's disk only.
	Artifacts artifacts.Store

	// sources and grants remember, per worker, the source AMIs read and the
	// accounts they were shared with, so a run's many targets do not repeat
	// those calls.
	sources, grants ami.Memo
	// fetching serializes, per run, the fetches of a run's artifacts, so
	// the images of one run published at once download them once.
	fetching keyedMutex
}

// RunLister is the one visibility call the activities make; client.Client
// satisfies it.
type RunLister interface {
	ListWorkflow(ctx context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error)
}

// Paths says where one attempt of a run keeps its files under the data dir:
//
//	<data-dir>/logs/<run>/<stage>-<attempt>.log a stage's output (build, bake, test)
//	<data-dir>/artifacts/<run>/                 artifacts.files of a good build
//	<data-dir>/work/<run>/<attempt>/            the checkout, removed afterwards
//
// Each attempt gets its own workspace, so a retry after a crash never builds
// on what a killed attempt left behind.
type Paths struct{ Log, Artifacts, Work string }

// paths returns the file locations of one attempt of a run's stage.
func (a *Activities) paths(stage, runDir string, attempt int32) Paths {
	n := strconv.Itoa(int(attempt))
	return Paths{
		Log:       filepath.Join(a.DataDir, "logs", runDir, stage+"-"+n+".log"),
		Artifacts: filepath.Join(a.DataDir, "artifacts", runDir),
		Work:      filepath.Join(a.workDir(), runDir, n),
	}
}

// workDir is where the attempts' workspaces are made.
func (a *Activities) workDir() string {
	if a.WorkDir != "" {
		return a.WorkDir
	}
	return filepath.Join(a.DataDir, "work")
}
