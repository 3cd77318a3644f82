package cluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// process is a child the package runs: PostgreSQL, the Temporal server,
// kiln serve or a kiln worker. It leads its own process group, so a kill
// takes what it started (a build, Packer) with it, and has a parent-death
// signal, so nothing outlives a test binary that dies.
type process struct {
	name string
	cmd  *exec.Cmd
	// log gets its stdout and stderr.
	log  string
	done chan struct{} // closed once it has exited
}

// startProcess runs bin with args and env (nil: the test's), its output
// appended to logPath.
func startProcess(name, logPath string, env []string, bin string, args ...string) (*process, error) {
	return startProcessAs(nil, name, logPath, env, bin, args...)
}

// startProcessAs is startProcess as the user cred names (nil: the test's).
func startProcessAs(cred *syscall.Credential, name, logPath string, env []string, bin string, args ...string) (*process, error) {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child holds its own descriptor
	p := &process{name: name, log: logPath, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// pid is the process's ID, which a kiln worker's Temporal identity starts with.
func (p *process) pid() int { return p.cmd.Process.Pid }

// kill sends SIGKILL to the process group and waits for the process to be
// reaped. Killing one that is gone already is harmless.
func (p *process) kill() error {
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(15 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit within 15s of SIGKILL", p.name, p.pid())
	}
}

// stop asks the process to end with sig and kills it after grace.
func (p *process) stop(sig syscall.Signal, grace time.Duration) {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.kill()
	}
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// output is what the process has written so far.
func (p *process) output() string {
	data, _ := os.ReadFile(p.log)
	return string(data)
}

// errExited is waitOutput's error when the process ends first.
var errExited = errors.New("exited")

// waitOutput waits until the process has written want, failing early if it
// exits.
func (p *process) waitOutput(want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(p.output(), want) {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s %w (%v) before it printed %q; its output:\n%s", p.name, errExited, p.cmd.ProcessState, want, lastLines(p.output(), 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not print %q within %s; its output:\n%s", p.name, want, timeout, lastLines(p.output(), 40))
}

// lastLines returns the last n lines of s, enough to read a failure by.
func lastLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "")
}
