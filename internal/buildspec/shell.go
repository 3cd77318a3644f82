package buildspec

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// errShellDied reports that the shell ended while kiln was talking to it.
var errShellDied = errors.New("build shell exited")

// shell is one long-lived shell running a build's commands, so state
// (variables, functions, cwd) carries over between them as in CodeBuild 0.2.
//
// The protocol is the same in every Sandbox. The shell reads its script
// from stdin, a step per line; each step sources one command from a
// here-document (kiln writes no files, so it works in any container) and
// then writes "s<status>\0" to stdout. Commands see neither: their stdin is
// /dev/null and their stdout and stderr are the log (fd 3, the script, is
// closed at start and fd 4, the records, around each command). Values of
// variables never appear in the script, only in the environment, so they
// cannot inject shell code.
type shell struct {
	proc    ShellProcess
	ctl     *os.File    // write end of the script pipe
	records chan string // records the shell reports; closed when it exits
	delim   string      // ends each command's here-document
	grace   time.Duration
	done    bool
	exit    int // the shell's status once it reported one; -1 before
}

// shellArgv is the shell for each supported env.shell: no rc files, so the
// image's or worker's dotfiles cannot change a build. Unset means bash, or
// sh where there is no bash (a busybox or alpine image).
func shellArgv(kind string) ([]string, error) {
	switch kind {
	case "", "bash":
		return []string{"bash", "--noprofile", "--norc"}, nil
	case "sh":
		return []string{"sh"}, nil
	}
	return nil, fmt.Errorf("buildspec: unsupported shell %q", kind)
}

// Argv is what a Sandbox runs for p: /bin/sh, which moves the script to fd
// 3, the records to fd 4 and the log to stdout, then runs p.Shell, so that
// every Sandbox can hand the shell three plain streams.
//
// Without report it becomes the shell (exec), so signals and Pdeathsig
// reach the shell itself. With report it waits for the shell, reports its
// status as a record and exits 0: in a BuildKit container, an exec'd
// process that exits non-zero takes the whole container down, and a
// command that ends the shell must not end the build's container.
func (p ShellSpec) Argv(report bool) []string {
	script := `exec "$@" /dev/fd/3 3<&0 </dev/null 4>&1 >&2`
	if report {
		script = `"$@" /dev/fd/3 3<&0 </dev/null 4>&1 >&2; command printf 'x%s\0' "$?"`
	}
	if p.Fallback {
		script = `command -v "$1" >/dev/null 2>&1 || set -- sh; ` + script
	}
	return append([]string{"/bin/sh", "-c", script, "kiln-shell"}, p.Shell...)
}

// startShell starts a shell in the sandbox.
func startShell(ctx context.Context, sb Sandbox, kind, dir string, env []string, secrets []Secret, log io.Writer, grace time.Duration) (*shell, error) {
	argv, err := shellArgv(kind)
	if err != nil {
		return nil, err
	}
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("buildspec: script pipe: %w", err)
	}
	recR, recW, err := os.Pipe()
	if err != nil {
		ctlR.Close()
		ctlW.Close()
		return nil, fmt.Errorf("buildspec: record pipe: %w", err)
	}
	proc, err := sb.StartShell(ctx, ShellSpec{Shell: argv, Fallback: kind == "", Env: env, Secrets: secrets, Dir: dir, Stdin: ctlR, Stdout: recW, Stderr: log})
	if err != nil {
		ctlW.Close()
		recR.Close()
		return nil, err
	}
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	s := &shell{proc: proc, ctl: ctlW, records: make(chan string, 16), delim: "KILN_EOF_" + hex.EncodeToString(nonce), grace: grace, exit: -1}
	go s.readRecords(recR)
	// The shell reads its script through its own descriptor; fd 3 would only
	// let a command read (and eat) the script.
	if _, err := ctlW.WriteString("exec 3<&-\n"); err != nil {
		s.stop()
		return nil, fmt.Errorf("buildspec: start %s: %w", argv[0], err)
	}
	return s, nil
}

// readRecords splits the shell's stdout into NUL-terminated records.
func (s *shell) readRecords(r *os.File) {
	defer close(s.records)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 64<<20) // an exported variable may be long
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.IndexByte(data, 0); i >= 0 {
			return i + 1, data[:i], nil
		}
		if atEOF {
			return len(data), nil, nil // a partial record from a dying shell
		}
		return 0, nil, nil
	})
	for sc.Scan() {
		s.records <- sc.Text()
	}
}

// run sources one command and returns its exit status. errShellDied means the
// command ended the shell; the caller then stops it and reads exitStatus.
func (s *shell) run(ctx context.Context, command string) (int, error) {
	if !strings.HasSuffix(command, "\n") {
		command += "\n"
	}
	// `command printf` still works if the build defines a function named printf.
	step := fmt.Sprintf("{ . /dev/fd/5; } 4>&- 5<<'%s'\n%s%s\ncommand printf 's%%s\\0' \"$?\" >&4\n", s.delim, command, s.delim)
	code, _, err := s.step(ctx, step)
	return code, err
}

// step sends one step of script and waits for its status, collecting the
// variables it reports on the way.
func (s *shell) step(ctx context.Context, script string) (int, map[string]string, error) {
	if _, err := s.ctl.WriteString(script); err != nil {
		return 0, nil, errShellDied
	}
	vars := map[string]string{}
	for {
		select {
		case rec, ok := <-s.records:
			if !ok {
				return 0, nil, errShellDied
			}
			switch {
			case strings.HasPrefix(rec, "v"):
				if name, value, ok := strings.Cut(rec[1:], "="); ok {
					vars[name] = value
				}
			case strings.HasPrefix(rec, "x"):
				if code, err := strconv.Atoi(rec[1:]); err == nil {
					s.exit = code
				}
				return 0, nil, errShellDied
			case strings.HasPrefix(rec, "s"):
				code, err := strconv.Atoi(rec[1:])
				if err != nil {
					return 0, nil, fmt.Errorf("buildspec: the shell reported status %q", rec[1:])
				}
				return code, vars, nil
			}
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		}
	}
}

// setFailed tells the running shell that the build is failing, as CodeBuild
// does for post_build and finally commands.
func (s *shell) setFailed(ctx context.Context) error {
	_, _, err := s.step(ctx, "CODEBUILD_BUILD_SUCCEEDING=0; export CODEBUILD_BUILD_SUCCEEDING; command printf 's0\\0' >&4\n")
	return err
}

// readVars returns the values of the set variables among names, read from the
// shell itself because commands may have changed them.
func (s *shell) readVars(ctx context.Context, names []string) (map[string]string, error) {
	var b strings.Builder
	for _, name := range names {
		if !validName(name) { // names are written into the script: never trust them blindly
			return nil, fmt.Errorf("buildspec: exported variable %q is not a valid name", name)
		}
		fmt.Fprintf(&b, "case ${%s+set} in set) command printf 'v%%s=%%s\\0' %s \"$%s\" >&4;; esac; ", name, name, name)
	}
	b.WriteString("command printf 's0\\0' >&4\n")
	_, vars, err := s.step(ctx, b.String())
	return vars, err
}

// stop ends the shell and everything it started. A shell that reported
// its own exit (Argv's report form, in a container) is gone already; what
// it left in the background runs on until the sandbox ends, as in
// CodeBuild's container, since ending it would end the container.
func (s *shell) stop() {
	if s.done {
		return
	}
	s.done = true
	_ = s.ctl.Close() // an idle shell exits on end of script
	if s.exit >= 0 {
		return
	}
	s.proc.Kill(s.grace)
}

// exitStatus is the stopped shell's exit status in shell convention: the
// one it reported, or the process's when it was killed before it could.
func (s *shell) exitStatus() int {
	if s.exit >= 0 {
		return s.exit
	}
	return s.proc.ExitStatus()
}
