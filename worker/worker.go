// Package worker registers kiln's workflows and activities with a Temporal
// worker polling kiln's task queue.
package worker

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/artifacts"
	"github.com/kiln-ci/kiln/internal/buildkit"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/hostuser"
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
	// PackerPlugins is the PACKER_PLUGIN_PATH bakes get, with kiln's own
	// plugin; empty leaves Packer's default.
	PackerPlugins string
	// MaxConcurrentShort caps the short activities (plans, supersede
	// queries, reports, notifications) run at once; default 8. They take
	// seconds, so a few slots keep up; more only let plans' git calls
	// crowd the webhook intake off the CPU under load.
	MaxConcurrentShort int
	// MaxConcurrentCopies caps distribution activities (AMI copies and
	// shares) run at once; default 100. They mostly wait on AWS, so they get
	// their own task queue and limit, apart from builds.
	MaxConcurrentCopies int
	// CopyPollInterval is how often a copy's state is read; default
	// activities.DefaultCopyPollInterval.
	CopyPollInterval time.Duration
	// UIURL is the Temporal Web UI's base URL, for links in reports.
	UIURL string
	// Containers is the worker's container runtime; nil when it has none,
	// and NoContainers says why.
	Containers   *buildkit.Client
	NoContainers error
	// BuildUsers runs each host build and test command as a user of its
	// own, with its workspace under WorkDir; see NewBuildUsers. Nil runs
	// them as the worker's user, in <DataDir>/work.
	BuildUsers *hostuser.Pool
	WorkDir    string
	// Artifacts is where builds store their artifacts so any worker can
	// publish them; nil keeps them on this worker's disk.
	Artifacts artifacts.Store
	Log       zerolog.Logger
}

// Worker polls kiln's task queues, each with its own slots:
//   - workflows.TaskQueue: pipelines and their heavy stages (builds, bakes,
//     AMI tests, publishing), MaxConcurrentBuilds at once;
//   - workflows.ShortTaskQueue: plans, supersede queries, reports and
//     notifications, which builds must never hold up;
//   - workflows.DistributeTaskQueue: AMI copies and shares;
//   - HostQueue(DataDir): work that needs this machine's files.
type Worker struct {
	queues []worker.Worker
}

// Start starts polling every queue.
func (w *Worker) Start() error {
	for i, q := range w.queues {
		if err := q.Start(); err != nil {
			for _, started := range slices.Backward(w.queues[:i]) {
				started.Stop()
			}
			return err
		}
	}
	return nil
}

// Stop stops polling and waits for running activities to return.
func (w *Worker) Stop() {
	for _, q := range slices.Backward(w.queues) {
		q.Stop()
	}
}

// heartbeatThrottle is the longest the SDK may hold back a build's
// heartbeat, and so how late a cancellation reaches it. It is also how long
// the SDK retries a heartbeat the server does not answer before it cancels
// the activity itself: at 500 ms, a Temporal restart of a few seconds
// cancelled every running build, bake and copy, and each started again.
// 5 s rides out a restart of the server (TestClusterServerRestart keeps it
// down about 4 s) and still stops a superseded build within seconds, not
// the 24 s the SDK's default would take.
const heartbeatThrottle = 5 * time.Second

// stopGrace is how long a stopping worker lets its running activities
// finish before it cancels them: enough for a plan, a report or the end of
// a build; what it cancels, Temporal retries on the next worker.
const stopGrace = 5 * time.Second

// New returns a worker with kiln's workflows and activities registered. The
// caller starts and stops it.
func New(c client.Client, o Options) *Worker {
	if o.MaxConcurrentBuilds == 0 {
		o.MaxConcurrentBuilds = 4
	}
	if o.MaxConcurrentCopies == 0 {
		o.MaxConcurrentCopies = 100
	}
	if o.MaxConcurrentShort == 0 {
		o.MaxConcurrentShort = 8
	}
	w := worker.New(c, workflows.TaskQueue, worker.Options{
		MaxConcurrentActivityExecutionSize: o.MaxConcurrentBuilds,
		WorkerStopTimeout:                  stopGrace,
		// A cancellation reaches a build only in the answer to a heartbeat the
		// SDK sends. Left alone, the SDK holds heartbeats back for 80% of the
		// 30 s heartbeat timeout, so a cancelled or superseded build would run
		// on for up to 24 s.
		MaxHeartbeatThrottleInterval: heartbeatThrottle,
	})
	acts := &activities.Activities{
		Config: o.Config, DataDir: o.DataDir, Runs: c, Log: o.Log, PackerBinary: o.PackerBinary, PackerPlugins: o.PackerPlugins,
		CopyPollInterval: o.CopyPollInterval, UIURL: o.UIURL, HostQueue: HostQueue(o.DataDir),
		Containers: o.Containers, NoContainers: o.NoContainers, BuildUsers: o.BuildUsers, WorkDir: o.WorkDir,
		Artifacts: o.Artifacts,
	}
	Register(w, acts)
	short := worker.New(c, workflows.ShortTaskQueue, worker.Options{MaxConcurrentActivityExecutionSize: o.MaxConcurrentShort,
		WorkerStopTimeout: stopGrace})
	short.RegisterActivity(acts)
	d := worker.New(c, workflows.DistributeTaskQueue, worker.Options{
		MaxConcurrentActivityExecutionSize: o.MaxConcurrentCopies,
		MaxHeartbeatThrottleInterval:       heartbeatThrottle,
		WorkerStopTimeout:                  stopGrace,
	})
	d.RegisterActivity(acts)
	h := worker.New(c, acts.HostQueue, worker.Options{MaxConcurrentActivityExecutionSize: o.MaxConcurrentBuilds,
		WorkerStopTimeout: stopGrace})
	h.RegisterActivity(acts)
	return &Worker{queues: []worker.Worker{w, short, d, h}}
}

// HostQueue names the task queue of the worker using dataDir on this
// machine: the host name and a hash of the directory, as two workers on one
// machine keep separate data.
func HostQueue(dataDir string) string {
	host, _ := os.Hostname()
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		abs = dataDir
	}
	return "kiln-host/" + host + "/" + dataDirKey(abs)
}

// dataDirKey names a data dir, by its absolute path, in what each data dir
// on a machine has of its own: its host queue and its build workspaces.
func dataDirKey(abs string) string {
	sum := sha256.Sum256([]byte(abs))
	return hex.EncodeToString(sum[:6])
}

// Register adds kiln's workflows and the given activities to any registry: a
// worker, or a test environment.
func Register(r worker.Registry, acts *activities.Activities) {
	r.RegisterWorkflowWithOptions(workflows.Pipeline, workflow.RegisterOptions{Name: workflows.PipelineWorkflowName})
	r.RegisterWorkflowWithOptions(workflows.CheckRun, workflow.RegisterOptions{Name: workflows.CheckRunWorkflowName})
	r.RegisterWorkflowWithOptions(workflows.Retention, workflow.RegisterOptions{Name: workflows.RetentionWorkflowName})
	r.RegisterWorkflowWithOptions(workflows.AMILineage, workflow.RegisterOptions{Name: workflows.LineageWorkflowName})
	r.RegisterActivity(acts)
}

// BuildUsersWorkRoot is where a root worker keeps its host builds'
// workspaces: a path every build user can reach, which a data dir under a
// private HOME (such as /root/.kiln) is not. Each data dir has its own.
const BuildUsersWorkRoot = "/var/lib/kiln"

// NewBuildUsers sets o up so that host builds and test commands run as
// users of their own (internal/hostuser), which needs root: it returns
// false, changing nothing, when the process is not root. It closes the
// data dir to others (0700), since it holds the Temporal database, the
// logs and the artifacts of every run, and makes the workspaces' root
// under BuildUsersWorkRoot.
func NewBuildUsers(o *Options) (bool, error) {
	if os.Geteuid() != 0 {
		return false, nil
	}
	abs, err := filepath.Abs(o.DataDir)
	if err != nil {
		return false, err
	}
	work := filepath.Join(BuildUsersWorkRoot, "work-"+dataDirKey(abs))
	if err := os.MkdirAll(work, 0o711); err != nil {
		return false, fmt.Errorf("build users' workspaces: %w", err)
	}
	if err := os.Chmod(work, 0o711); err != nil {
		return false, err
	}
	if err := hostuser.Reachable(work); err != nil {
		return false, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return false, err
	}
	if err := os.Chmod(abs, 0o700); err != nil {
		return false, err
	}
	users, err := hostuser.NewPool(hostuser.DefaultLockDir, hostuser.DefaultBase, hostuser.DefaultSize)
	if err != nil {
		return false, err
	}
	o.BuildUsers, o.WorkDir = users, work
	return true, nil
}
