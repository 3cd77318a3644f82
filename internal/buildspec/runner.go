package buildspec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kiln-ci/kiln/internal/scrub"
)

// runner is one execution of a Spec. Run hands off to it so each step of a
// build stays a short method.
type runner struct {
	spec    *Spec
	o       RunOptions
	log     *logPump
	tail    *TailWriter
	sh      *shell // nil until needed, and again after a command ends it
	failed  bool   // CODEBUILD_BUILD_SUCCEEDING is 0 from the first failure on
	failure *CommandError
	res     *Result
	scrub   *scrub.Scrubber // of the declared secrets; nil without any
}

func newRunner(s *Spec, o RunOptions) (*runner, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	// The tail is for what the build printed: the failure's headline
	// already says which command failed and how, as kiln's lines do.
	tail := NewTailWriter(DefaultTailLines)
	tail.Skip = kilnLinePrefix
	// The tail comes first: io.MultiWriter stops at a failing writer, and a
	// broken log must not also cost the failure report its tail. Both see
	// the output scrubbed: the tail goes into the failure, and so into the
	// run's history.
	scrubber := scrub.New(SecretValues(o.Secrets))
	log, err := newLogPump(scrubber.Writer(io.MultiWriter(tail, o.Log)))
	if err != nil {
		return nil, err
	}
	res := &Result{Exported: map[string]string{}}
	return &runner{spec: s, o: o, log: log, tail: tail, res: res, scrub: scrubber}, nil
}

func (r *runner) run(ctx context.Context) (*Result, error) {
	for _, why := range r.spec.Ignored {
		r.log.printf("buildspec %s; the section is ignored", why)
	}
	err := r.phases(ctx)
	if err == nil {
		err = r.export(ctx)
	}
	if r.sh != nil {
		r.sh.stop() // also ends processes the build left in the background
	}
	r.log.close()
	if err != nil {
		return r.res, err
	}
	// Reports are read whether the build failed or not: a failed test run
	// is when they matter most.
	r.reports()
	if r.failure != nil {
		return r.res, r.failure
	}
	if err := r.collect(); err != nil {
		return r.res, err
	}
	r.res.Succeeded = true
	return r.res, nil
}

// phases runs the phases with CodeBuild's transitions: a failed install or
// pre_build skips the rest unless its on-failure is CONTINUE; post_build runs
// after a failed build.
func (r *runner) phases(ctx context.Context) error {
	all := r.spec.Phases.ordered()
	for i, np := range all {
		pr, err := r.phase(ctx, np)
		r.res.Phases = append(r.res.Phases, pr)
		if err != nil {
			if ctx.Err() != nil {
				r.log.printf("build cancelled: stopping its processes")
				err = fmt.Errorf("buildspec: build cancelled in phase %s: %w", np.name, err)
			}
			r.skip(all[i+1:])
			return err
		}
		early := np.name == PhaseInstall || np.name == PhasePreBuild
		if pr.Status == StatusFailed && early && np.phase.OnFailure != OnFailureContinue {
			r.skip(all[i+1:])
			return nil
		}
	}
	return nil
}

func (r *runner) skip(rest []namedPhase) {
	for _, np := range rest {
		r.log.printf("phase %s: %s", np.name, StatusSkipped)
		r.res.Phases = append(r.res.Phases, PhaseResult{Name: np.name, Status: StatusSkipped})
	}
}

// phase runs a phase's commands up to the first failure, then its finally
// commands whatever happened. The error is for cancellation and kiln's own
// failures; a failed command only marks the PhaseResult.
func (r *runner) phase(ctx context.Context, np namedPhase) (PhaseResult, error) {
	pr := PhaseResult{Name: np.name, Status: StatusSucceeded, Start: time.Now()}
	r.o.Progress(Progress{Phase: np.name})
	err := r.commands(ctx, &pr, np.phase.Commands, 0, "")
	if err == nil {
		err = r.commands(ctx, &pr, np.phase.Finally, len(np.phase.Commands), "finally ")
	}
	pr.End = time.Now()
	if err != nil {
		pr.Status = StatusFailed
	}
	r.log.printf("phase %s: %s (%.1fs)", np.name, pr.Status, pr.End.Sub(pr.Start).Seconds())
	r.o.Progress(Progress{Phase: np.name, Done: true})
	return pr, err
}

// commands runs list, numbering commands from first+1, and stops at the first failure.
func (r *runner) commands(ctx context.Context, pr *PhaseResult, list []string, first int, kind string) error {
	for i, c := range list {
		n := first + i + 1
		r.log.printf("phase %s: running %scommand %d: %s", pr.Name, kind, n, summary(c))
		r.o.Progress(Progress{Phase: pr.Name, Command: n, CommandText: c})
		code, died, err := r.exec(ctx, c)
		r.o.Progress(Progress{Phase: pr.Name, Command: n, CommandText: c, Done: true})
		if err != nil {
			return err
		}
		if died || code != 0 {
			return r.fail(ctx, pr, n, c, code, died)
		}
	}
	return nil
}

// exec runs one command in the build shell, starting one if needed. died
// reports that the command ended the shell; code is then the shell's status.
func (r *runner) exec(ctx context.Context, command string) (code int, died bool, err error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	if err := r.ensureShell(ctx); err != nil {
		return 0, false, err
	}
	code, err = r.sh.run(ctx, command)
	if errors.Is(err, errShellDied) {
		r.sh.stop()
		code, r.sh = r.sh.exitStatus(), nil
		return code, true, nil
	}
	return code, false, err
}

// ensureShell starts a shell if there is none: for the first command, and
// after a command ended the previous one.
func (r *runner) ensureShell(ctx context.Context) error {
	if r.sh != nil {
		return nil
	}
	env := buildEnv(r.o.BaseEnv, r.spec.Env.Variables, r.o.Env, r.o.Dir, r.failed)
	sh, err := startShell(ctx, r.o.Sandbox, r.spec.Env.Shell, r.o.Dir, env, r.o.Secrets, r.log.w, r.o.KillGrace)
	if err != nil {
		return err
	}
	r.sh = sh
	return nil
}

// fail records a failed command: the phase's first, the build's first (the
// CommandError, with the log as it was then), and tells the shell.
func (r *runner) fail(ctx context.Context, pr *PhaseResult, n int, command string, code int, died bool) error {
	r.log.printf("phase %s: command %d exited with status %d", pr.Name, n, code)
	if died {
		r.log.printf("the build shell exited; later commands run in a new shell")
	}
	r.log.sync()
	if pr.Status != StatusFailed {
		pr.Status, pr.ExitCode, pr.FailedCommand = StatusFailed, code, command
	}
	if r.failure == nil {
		r.failure = &CommandError{Phase: pr.Name, Command: command, ExitCode: code, ShellExited: died, LogTail: r.tail.Lines()}
	}
	r.failed = true
	if r.sh == nil {
		return nil // the next shell starts with CODEBUILD_BUILD_SUCCEEDING=0
	}
	err := r.sh.setFailed(ctx)
	if errors.Is(err, errShellDied) {
		r.sh.stop()
		r.sh = nil
		return nil
	}
	return err
}

// export reads env.exported-variables from the shell the build ran in.
func (r *runner) export(ctx context.Context) error {
	names := r.spec.Env.ExportedVariables
	if len(names) == 0 {
		return nil
	}
	// If the last command ended the shell, a new one reports what it sees.
	if err := r.ensureShell(ctx); err != nil {
		return err
	}
	vals, err := r.sh.readVars(ctx, names)
	if err != nil {
		return fmt.Errorf("buildspec: read exported variables: %w", err)
	}
	// Exported values go on into the run's history: one made from a
	// secret is kept out of it.
	for k, v := range vals {
		vals[k] = r.scrub.String(v)
	}
	r.res.Exported = vals
	return nil
}

// summary shortens a command for a banner line: multi-line scripts would
// drown the log, and a banner must fit in one atomic pipe write.
func summary(c string) string {
	line, rest, multi := strings.Cut(strings.TrimSpace(c), "\n")
	if r := []rune(line); len(r) > 200 {
		line, multi = string(r[:200]), true
	}
	if multi || rest != "" {
		return line + " ..."
	}
	return line
}
