package packer

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// drainTimeout bounds the wait for packer's pipes after it exited: only a
// process that left the group (setsid) can hold them open, and it must not
// hang the activity.
const drainTimeout = 2 * time.Second

// proc is a running packer and the goroutines reading its output.
type proc struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed when packer has been reaped
	drained chan struct{} // closed when both pipes reached EOF
	pipes   []*os.File    // read ends, closed after draining
}

// run starts packer, waits for it or for ctx, and returns its output. A
// non-zero exit is a *BuildError.
func run(ctx context.Context, o Options) (*output, error) {
	out := newOutput(o)
	p, err := start(o, out)
	if err != nil {
		return nil, err
	}
	var stopErr error
	select {
	case <-p.exited:
	case <-ctx.Done():
		stopErr = p.stop(ctx.Err(), o.grace())
	}
	p.finish()
	if stopErr != nil {
		return nil, stopErr
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		errs, tail := out.failure()
		be := &BuildError{ExitCode: code, Errors: errs, LogTail: tail}
		if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			be.Signal = ws.Signal().String()
		}
		return nil, be
	}
	return out, nil
}

func (o *Options) grace() time.Duration {
	if o.KillGrace <= 0 {
		return DefaultKillGrace
	}
	return o.KillGrace
}

// start runs packer in its own process group with both output streams piped
// into out.
func start(o Options, out *output) (*proc, error) {
	bin := o.Packer
	if bin == "" {
		bin = "packer"
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("%w: stdout pipe: %w", ErrStart, err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("%w: stderr pipe: %w", ErrStart, err)
	}
	secretFile, removeSecrets, err := o.writeSecretVars()
	if err != nil {
		outR.Close()
		outW.Close()
		errR.Close()
		errW.Close()
		return nil, err
	}
	cmd := exec.Command(bin, o.args(secretFile)...)
	cmd.Dir, cmd.Env = o.Dir, o.env()
	cmd.Stdout, cmd.Stderr = outW, errW
	cmd.SysProcAttr = sysProcAttr()
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		removeSecrets()
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("%w: %w (install packer, e.g. apt-get install packer)", ErrStart, err)
	}
	p := &proc{cmd: cmd, exited: make(chan struct{}), drained: make(chan struct{}), pipes: []*os.File{outR, errR}}
	go p.read(out, outR, errR)
	go func() { _ = cmd.Wait(); removeSecrets(); close(p.exited) }()
	return p, nil
}

// read drains both pipes into out and closes drained when both are done.
func (p *proc) read(out *output, stdout, stderr *os.File) {
	done := make(chan struct{})
	go func() { out.readLines(stderr, out.stderrLine); close(done) }()
	out.readLines(stdout, out.stdoutLine)
	<-done
	close(p.drained)
}

// stop interrupts packer's whole process group (signalling packer alone is
// ignored), giving it grace to clean up its cloud resources, then kills it.
func (p *proc) stop(cause error, grace time.Duration) error {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGINT)
	select {
	case <-p.exited:
		return fmt.Errorf("packer: cancelled; packer cleaned up: %w", cause)
	case <-time.After(grace):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.exited
	return fmt.Errorf("packer: killed after grace of %s; its instance, key pair or security group may remain: %w", grace, cause)
}

// finish kills whatever packer left in its group and waits for its output to
// be read. The group outlives the reaped leader only while members remain, so
// its id cannot have been reused.
func (p *proc) finish() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.drained:
	case <-time.After(drainTimeout):
		for _, f := range p.pipes {
			_ = f.SetReadDeadline(time.Now())
		}
		<-p.drained
	}
	for _, f := range p.pipes {
		_ = f.Close()
	}
}

// BuildError is a packer build that exited non-zero: the template or a
// provisioner failed, AWS failed the build, or packer was killed. Every field
// is scrubbed of Options.Secrets.
type BuildError struct {
	// ExitCode is packer's exit status (1 for any failed build, -1 when a
	// signal killed it).
	ExitCode int
	// Signal names the signal that killed packer ("killed" for SIGKILL,
	// e.g. from the OOM killer); empty when packer exited.
	Signal string
	// Errors are packer's error messages, one per failed build.
	Errors []string
	// LogTail is the last lines of the human log, for a failure report.
	LogTail []string
}

// Error says what failed in a line fit for a commit status.
func (e *BuildError) Error() string {
	msg := fmt.Sprintf("packer build failed (exit code %d)", e.ExitCode)
	if e.Signal != "" {
		msg = fmt.Sprintf("packer was killed by signal %q (out of memory?)", e.Signal)
	}
	if len(e.Errors) > 0 {
		msg += ": " + strings.Join(e.Errors, "; ")
	}
	return msg
}

// transientAWS matches, in packer's error messages, the AWS error codes and
// network failures after which the same build can succeed. A code must stand
// as a word of its own: InvalidAMIID.Unavailable is not Unavailable.
var transientAWS = regexp.MustCompile(`(?:^|[^\w.])(RequestLimitExceeded|Throttling(?:Exception)?|` +
	`InsufficientInstanceCapacity|InternalError|ServiceUnavailable|Unavailable|RequestTimeout(?:Exception)?)\b|` +
	`(connection reset)`)

// Transient says why running the same build again may succeed, or "" when
// it would fail the same way (a template or provisioner error): packer was
// killed by a signal, or a build failed on AWS throttling, capacity, an AWS
// internal error or a dropped connection.
func (e *BuildError) Transient() string {
	if e.Signal != "" {
		return "packer was killed by signal " + e.Signal
	}
	for _, msg := range e.Errors {
		if m := transientAWS.FindStringSubmatch(msg); m != nil {
			return "AWS failed the build with " + m[1] + m[2]
		}
	}
	return ""
}
