package buildspec

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Phase statuses in PhaseResult, named as CodeBuild names them.
const (
	StatusSucceeded = "SUCCEEDED"
	StatusFailed    = "FAILED"
	StatusSkipped   = "SKIPPED"
)

// DefaultKillGrace is how long a cancelled build's processes get between
// SIGTERM and SIGKILL: long enough for tools like docker to clean up.
const DefaultKillGrace = 10 * time.Second

// RunOptions is what a build needs from its caller.
type RunOptions struct {
	// Dir is the source directory: the build's working directory and
	// CODEBUILD_SRC_DIR. "" means the current directory.
	Dir string
	// Env holds KEY=VALUE pairs describing the event (KILN_*, FLOW_*). They
	// override env.variables. Values may come from untrusted webhook payloads:
	// they reach the shell only as environment variables, never as code.
	Env []string
	// BaseEnv is the environment the shell starts from (PATH, HOME...); nil
	// means the worker's PATH alone. The worker's own environment is never
	// passed on by default: it holds the worker's credentials.
	BaseEnv []string
	// Log receives all command output (stdout and stderr interleaved) and
	// kiln's "[kiln] ..." lines. It is written from one goroutine at a time,
	// and not after Run returns. nil discards the log.
	Log io.Writer
	// ArtifactsDir receives copies of the artifact files; "" skips collection.
	ArtifactsDir string
	// Progress, if set, is called when a phase or command starts or ends, so
	// the caller can heartbeat. It must be safe to call from any goroutine.
	Progress func(Progress)
	// Sandbox runs the build's shells; nil runs them on the worker, in Dir
	// (Host). With a container sandbox, Dir is the source directory as the
	// container sees it.
	Sandbox Sandbox
	// Secrets are declared secrets, set in every shell's environment over
	// every other variable of the same name, and scrubbed from the log.
	Secrets []Secret
	// KillGrace is the time between SIGTERM and SIGKILL when the build is
	// cancelled or its leftover processes are cleaned up; 0 means DefaultKillGrace.
	KillGrace time.Duration
}

// Progress is one step of a build, reported through RunOptions.Progress.
type Progress struct {
	// Phase is the phase's name, e.g. "build".
	Phase string
	// Command is the 1-based command number within the phase (finally commands
	// continue the numbering); 0 when the phase itself starts or ends.
	Command int
	// CommandText is the command as written in the buildspec; "" for phases.
	CommandText string
	// Done is false when the step starts and true when it ends.
	Done bool
}

// Result is what a build did; Run returns it even when the build failed.
type Result struct {
	// Phases lists the phases present in the buildspec, in run order.
	Phases []PhaseResult
	// Artifacts are the copied files, relative to ArtifactsDir, sorted.
	Artifacts []string
	// Exported holds the env.exported-variables that were set at the end of
	// the build, read from the build's shell.
	Exported map[string]string
	// Reports are the test results of the buildspec's reports section, in
	// file order, as CollectReports reads them.
	Reports []ReportResult
	// Succeeded is true when every phase succeeded and the artifacts were copied.
	Succeeded bool
}

// PhaseResult is one phase's outcome.
type PhaseResult struct {
	// Name is the phase's name, e.g. "pre_build".
	Name string
	// Status is StatusSucceeded, StatusFailed or StatusSkipped.
	Status string
	// Start and End are zero for a skipped phase.
	Start, End time.Time
	// ExitCode and FailedCommand describe the first command that failed the phase.
	ExitCode      int
	FailedCommand string
}

// Run runs the build: the phases in order in one shell, then the export of
// env.exported-variables, then, if the build succeeded, the artifacts.
//
// A failed command makes Run return the Result and a *CommandError. When ctx
// is done the build's processes are stopped (SIGTERM, KillGrace, SIGKILL) and
// Run returns the Result and an error wrapping ctx.Err(). Any other error
// means kiln itself could not run the build.
func (s *Spec) Run(ctx context.Context, o RunOptions) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("buildspec: build not started: %w", err)
	}
	r, err := newRunner(s, o)
	if err != nil {
		return nil, err
	}
	return r.run(ctx)
}

// withDefaults fills unset options and makes Dir absolute, since it is also
// exported as CODEBUILD_SRC_DIR.
func (o RunOptions) withDefaults() (RunOptions, error) {
	if o.Sandbox != nil {
		return o.fill(), nil
	}
	if o.Dir == "" {
		o.Dir = "."
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return o, fmt.Errorf("buildspec: source directory: %w", err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return o, fmt.Errorf("buildspec: source directory %s is not a directory", dir)
	}
	o.Dir, o.Sandbox = dir, Host{Dir: dir}
	return o.fill(), nil
}

// fill sets the defaults of the options every sandbox shares.
func (o RunOptions) fill() RunOptions {
	if o.BaseEnv == nil {
		o.BaseEnv = []string{"PATH=" + os.Getenv("PATH")}
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Progress == nil {
		o.Progress = func(Progress) {}
	}
	if o.KillGrace <= 0 {
		o.KillGrace = DefaultKillGrace
	}
	return o
}
