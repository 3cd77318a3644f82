package buildspec

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Sandbox is where a build's shells run: on the worker (Host, the default)
// or inside a container image (internal/buildkit). Both speak the same
// protocol with the shell, so a buildspec means the same thing in either.
type Sandbox interface {
	// StartShell starts one build shell. It takes ownership of p.Stdin and
	// p.Stdout and closes them once the process no longer needs them;
	// p.Stderr is the build's log, shared by every shell, and stays open.
	StartShell(ctx context.Context, p ShellSpec) (ShellProcess, error)
	// Source is the source directory as the build left it, for artifacts
	// and test reports. It must not let a symlink lead out of the
	// directory.
	Source() (fs.FS, error)
}

// ShellSpec is one shell for a Sandbox to start.
type ShellSpec struct {
	// Shell is the shell's argv, such as bash --noprofile --norc; Argv
	// wraps it in what the sandbox runs.
	Shell []string
	// Fallback lets sh stand in when Shell[0] is not installed.
	Fallback bool
	// Env is its whole environment, KEY=value.
	Env []string
	// Secrets are declared secrets the shell gets as environment variables
	// on top of Env. A container sandbox hands them over as BuildKit
	// secrets, so they are in no build definition or layer.
	Secrets []Secret
	// Dir is the working directory, as the shell sees it.
	Dir string
	// Stdin carries the shell's script, Stdout its status records, Stderr
	// its output (the log).
	Stdin  io.ReadCloser
	Stdout io.WriteCloser
	Stderr io.Writer
}

// Secret is a declared secret: an environment variable whose value never
// reaches a log (Run scrubs it), history or image layer.
type Secret struct {
	Name  string
	Value string
}

// SecretValues are the values of secrets, as a scrubber takes them.
func SecretValues(secrets []Secret) []string {
	out := make([]string, 0, len(secrets))
	for _, s := range secrets {
		out = append(out, s.Value)
	}
	return out
}

// ShellProcess is a running build shell.
type ShellProcess interface {
	// Kill ends the shell and whatever it started: SIGTERM, up to grace for
	// them to exit, then SIGKILL. It returns once the shell is reaped.
	Kill(grace time.Duration)
	// ExitStatus is the ended shell's status, in shell convention: 128+N
	// when a signal N killed it.
	ExitStatus() int
}

// Host runs shells as processes of the worker, each in its own process
// group so that stopping reaches everything a build started. Dir is the
// source directory on the worker. User, when set, is who the shells run
// as (see internal/hostuser); it needs a worker running as root.
type Host struct {
	Dir  string
	User *syscall.Credential
}

// StartShell starts the shell as a child process.
func (h Host) StartShell(_ context.Context, p ShellSpec) (ShellProcess, error) {
	argv := p.Argv(false)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = p.Dir, p.Env
	for _, s := range p.Secrets {
		cmd.Env = append(cmd.Env, s.Name+"="+s.Value)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.Stdin, p.Stdout, p.Stderr
	cmd.SysProcAttr = sysProcAttr()
	if h.User != nil {
		cmd.SysProcAttr.Credential = h.User
		// The shell opens its script as /dev/fd/3, which checks the pipe's
		// owner like a file's: the pipe must be the build user's.
		if f, ok := p.Stdin.(*os.File); ok {
			if err := f.Chown(int(h.User.Uid), int(h.User.Gid)); err != nil {
				p.Stdin.Close()
				p.Stdout.Close()
				return nil, fmt.Errorf("buildspec: give the script pipe to uid %d: %w", h.User.Uid, err)
			}
		}
	}
	err := cmd.Start()
	// The child has its own copies of the pipes now; ours would only keep
	// them open after it exits.
	p.Stdin.Close()
	p.Stdout.Close()
	if err != nil {
		return nil, fmt.Errorf("buildspec: start %s: %w", p.Shell[0], err)
	}
	return &hostProcess{cmd: cmd}, nil
}

// Source opens the source directory as an os.Root, which refuses paths
// and symlinks that lead out of it.
func (h Host) Source() (fs.FS, error) {
	root, err := os.OpenRoot(h.Dir)
	if err != nil {
		return nil, err
	}
	return root.FS(), nil
}

// hostProcess is a shell running on the worker.
type hostProcess struct {
	cmd  *exec.Cmd
	done bool
}

// Kill signals the shell's process group. The shell is reaped only
// afterwards, so its pid, which is the group id, cannot be reused while
// kiln signals it.
func (p *hostProcess) Kill(grace time.Duration) {
	if p.done {
		return
	}
	p.done = true
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	for deadline := time.Now().Add(grace); groupAlive(pgid) && time.Now().Before(deadline); {
		time.Sleep(25 * time.Millisecond)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	_ = p.cmd.Wait()
}

func (p *hostProcess) ExitStatus() int {
	st := p.cmd.ProcessState
	if st == nil {
		return -1
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}
