package buildspec

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// errShellDied reports that the shell ended while kiln was talking to it.
var errShellDied = errors.New("build shell exited")

// shell is one long-lived shell process running a build's commands, so state
// (variables, functions, cwd) carries over between them as in CodeBuild 0.2.
//
// The shell runs its script from a control pipe (fd 3), a line per step. A
// step sources the command from a file kiln wrote, then prints $? to a status
// pipe (fd 4). Commands see neither pipe: stdin is /dev/null, fd 3 is closed
// at start and fd 4 around each command. Values of variables never appear in
// the script, only in the environment, so they cannot inject shell code.
type shell struct {
	cmd    *exec.Cmd
	ctl    *os.File // write end of the control pipe
	status chan int // statuses the shell reports; closed when it exits
	tmp    string   // where command files are written
	seq    int
	grace  time.Duration
	done   bool
}

// shellArgs are the argv for each supported env.shell: no rc files, so the
// worker's dotfiles cannot change a build; the script is the control pipe.
var shellArgs = map[string][]string{
	"bash": {"bash", "--noprofile", "--norc", "/dev/fd/3"},
	"sh":   {"sh", "/dev/fd/3"},
}

// startShell starts a shell in its own process group, so stop can signal the
// shell and everything it started at once.
func startShell(kind, dir string, env []string, out *os.File, tmp string, grace time.Duration) (*shell, error) {
	args, ok := shellArgs[kind]
	if !ok {
		return nil, fmt.Errorf("buildspec: unsupported shell %q", kind)
	}
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("buildspec: control pipe: %w", err)
	}
	statR, statW, err := os.Pipe()
	if err != nil {
		ctlR.Close()
		ctlW.Close()
		return nil, fmt.Errorf("buildspec: status pipe: %w", err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ExtraFiles = []*os.File{ctlR, statW}
	cmd.SysProcAttr = sysProcAttr()
	err = cmd.Start()
	ctlR.Close()
	statW.Close()
	if err != nil {
		ctlW.Close()
		statR.Close()
		return nil, fmt.Errorf("buildspec: start %s: %w", kind, err)
	}
	s := &shell{cmd: cmd, ctl: ctlW, status: make(chan int, 1), tmp: tmp, grace: grace}
	go s.readStatus(statR)
	// The shell reads its script through its own descriptor; fd 3 would only
	// let a command read (and eat) the script.
	if _, err := ctlW.WriteString("exec 3<&-\n"); err != nil {
		s.stop()
		return nil, fmt.Errorf("buildspec: start %s: %w", kind, err)
	}
	return s, nil
}

func (s *shell) readStatus(r *os.File) {
	defer close(s.status)
	defer r.Close()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if n, err := strconv.Atoi(strings.TrimSpace(sc.Text())); err == nil {
			s.status <- n
		}
	}
}

// run sources one command and returns its exit status. errShellDied means the
// command ended the shell; the caller then stops it and reads exitStatus.
func (s *shell) run(ctx context.Context, command string) (int, error) {
	s.seq++
	file := filepath.Join(s.tmp, fmt.Sprintf("command-%d-%d.sh", s.cmd.Process.Pid, s.seq))
	if err := os.WriteFile(file, []byte(command+"\n"), 0o600); err != nil {
		return 0, fmt.Errorf("buildspec: write command file: %w", err)
	}
	// `command printf` still works if the build defines a function named printf.
	return s.step(ctx, fmt.Sprintf("{ . %s; } 4>&-; command printf '%%s\\n' \"$?\" >&4\n", shQuote(file)))
}

// step sends one line of script and waits for the status it reports.
func (s *shell) step(ctx context.Context, line string) (int, error) {
	if _, err := s.ctl.WriteString(line); err != nil {
		return 0, errShellDied
	}
	select {
	case code, ok := <-s.status:
		if !ok {
			return 0, errShellDied
		}
		return code, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// setFailed tells the running shell that the build is failing, as CodeBuild
// does for post_build and finally commands.
func (s *shell) setFailed(ctx context.Context) error {
	_, err := s.step(ctx, "CODEBUILD_BUILD_SUCCEEDING=0; export CODEBUILD_BUILD_SUCCEEDING; command printf '0\\n' >&4\n")
	return err
}

// readVars returns the values of the set variables among names, read from the
// shell itself because commands may have changed them.
func (s *shell) readVars(ctx context.Context, names []string) (map[string]string, error) {
	var b strings.Builder
	for i, name := range names {
		if !validName(name) { // names are written into the script: never trust them blindly
			return nil, fmt.Errorf("buildspec: exported variable %q is not a valid name", name)
		}
		f := shQuote(filepath.Join(s.tmp, fmt.Sprintf("export-%d-%d", s.cmd.Process.Pid, i)))
		fmt.Fprintf(&b, "case ${%s+set} in set) command printf '%%s' \"$%s\" >%s;; esac; ", name, name, f)
	}
	b.WriteString("command printf '0\\n' >&4\n")
	if _, err := s.step(ctx, b.String()); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i, name := range names {
		data, err := os.ReadFile(filepath.Join(s.tmp, fmt.Sprintf("export-%d-%d", s.cmd.Process.Pid, i)))
		if err == nil {
			out[name] = string(data)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("buildspec: read exported variable %s: %w", name, err)
		}
	}
	return out, nil
}

// stop ends the shell and everything in its process group: SIGTERM, up to
// grace for them to exit, then SIGKILL. The shell is reaped only afterwards,
// so its pid, which is the group id, cannot be reused while kiln signals it.
func (s *shell) stop() {
	if s.done {
		return
	}
	s.done = true
	_ = s.ctl.Close() // an idle shell exits on end of script
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	for deadline := time.Now().Add(s.grace); groupAlive(pgid) && time.Now().Before(deadline); {
		time.Sleep(25 * time.Millisecond)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	_ = s.cmd.Wait()
}

// exitStatus is the stopped shell's exit status in shell convention: 128+N
// when killed by signal N.
func (s *shell) exitStatus() int {
	st := s.cmd.ProcessState
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}

// shQuote quotes s for the shell. It is used only for kiln's own temp paths.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
