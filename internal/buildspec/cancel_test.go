package buildspec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readPid waits for a command of the build to write its pid into file.
func readPid(t *testing.T, file string) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(file)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && perr == nil {
			return pid
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no pid in %s", file)
	return 0
}

// alive reports whether pid runs. A zombie counts as dead: it was killed but
// its new parent (here pid 1, which may not reap) has not collected it.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	state, _, ok := parseStat(stat)
	return ok && state != "Z" && state != "X"
}

func wantDead(t *testing.T, what string, pid int) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !alive(pid) {
			return
		}
	}
	syscall.Kill(pid, syscall.SIGKILL) // don't leak it from the test either
	t.Errorf("%s (pid %d) survived", what, pid)
}

// cancelWhenReady runs src, cancels once each file holds a pid, and returns
// the build and how long Run took after the cancel.
func cancelWhenReady(t *testing.T, src string, grace time.Duration, files ...string) (*build, time.Duration) {
	t.Helper()
	b := &build{dir: t.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.res, b.err = mustParse(t, src).Run(ctx, RunOptions{Dir: b.dir, Log: &b.log, KillGrace: grace})
	}()
	for _, f := range files {
		readPid(t, filepath.Join(b.dir, f))
	}
	start := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(grace + 20*time.Second):
		t.Fatal("Run did not return after cancel")
	}
	return b, time.Since(start)
}

// TestRunCancelKillsProcessTree: cancelling ends the shell, the running
// command and what it put in the background; nothing outlives the build.
func TestRunCancelKillsProcessTree(t *testing.T) {
	b, took := cancelWhenReady(t, `version: 0.2
phases:
  build:
    commands:
      - sleep 300 & echo $! > bg.pid
      - echo $$ > shell.pid
      - sh -c 'echo $$ > fg.pid; exec sleep 300'
  post_build:
    commands: ["echo post"]
`, DefaultKillGrace, "fg.pid")
	if !errors.Is(b.err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", b.err)
	}
	wantContains(t, b.err.Error(), "cancelled in phase build")
	if took > 3*time.Second {
		t.Errorf("stopping took %v: waited for the grace period although everything had exited", took)
	}
	if got := b.statuses(); got != "build=FAILED post_build=SKIPPED" {
		t.Errorf("statuses = %s", got)
	}
	wantNotContains(t, b.log.String(), "post\n")
	for _, name := range []string{"bg.pid", "shell.pid", "fg.pid"} {
		wantDead(t, name, readPid(t, filepath.Join(b.dir, name)))
	}
}

// TestRunCancelGrace: processes get SIGTERM first and KillGrace to exit; one
// ignoring SIGTERM is killed once the grace has passed.
func TestRunCancelGrace(t *testing.T) {
	const grace = 500 * time.Millisecond
	b, took := cancelWhenReady(t, `version: 0.2
phases:
  build:
    commands:
      - bash -c 'trap "echo got-term > term.txt; exit 0" TERM; echo $$ > polite.pid; while :; do sleep 0.05; done' &
      - bash -c 'trap "" TERM; echo $$ > stubborn.pid; while :; do sleep 0.05; done' &
      - sleep 300
`, grace, "polite.pid", "stubborn.pid")
	if !errors.Is(b.err, context.Canceled) {
		t.Fatalf("error = %v", b.err)
	}
	if data, err := os.ReadFile(filepath.Join(b.dir, "term.txt")); err != nil || string(data) != "got-term\n" {
		t.Errorf("polite process did not get SIGTERM: %q %v", data, err)
	}
	if took < grace {
		t.Errorf("stopped after %v, before the %v grace", took, grace)
	}
	wantDead(t, "TERM-ignoring process", readPid(t, filepath.Join(b.dir, "stubborn.pid")))
}

// TestRunEndsLeftoverProcesses: a successful build's background processes are
// stopped when it ends, without waiting out the grace period.
func TestRunEndsLeftoverProcesses(t *testing.T) {
	start := time.Now()
	b := runSpec(t, "version: 0.2\nphases:\n  install:\n    commands: ['sleep 300 & echo $! > bg.pid']\n",
		func(o *RunOptions) { o.KillGrace = DefaultKillGrace })
	if b.err != nil {
		t.Fatal(b.err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("build took %v", took)
	}
	wantDead(t, "background sleep", readPid(t, filepath.Join(b.dir, "bg.pid")))
}

func TestRunAlreadyCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	res, err := mustParse(t, "version: 0.2\nphases:\n  build:\n    commands: ['touch ran']\n").Run(ctx, RunOptions{Dir: dir})
	if !errors.Is(err, context.Canceled) || res != nil {
		t.Errorf("Run = %v, %v", res, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("a cancelled build ran a command")
	}
}

// TestRunShellDiesWithKiln: if the kiln process dies, Pdeathsig takes the
// shell with it. A child test process plays kiln and is SIGKILLed.
func TestRunShellDiesWithKiln(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperKilnProcess$")
	// TMPDIR: the killed helper cannot remove its command files itself.
	cmd.Env = append(os.Environ(), "KILN_BUILDSPEC_HELPER_DIR="+dir, "TMPDIR="+t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	shell := readPid(t, filepath.Join(dir, "shell.pid"))
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	wantDead(t, "shell of a dead kiln", shell)
	if pid := readPid(t, filepath.Join(dir, "sleep.pid")); alive(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL) // Pdeathsig reaches only the shell
	}
}

// TestHelperKilnProcess is the kiln process of TestRunShellDiesWithKiln.
func TestHelperKilnProcess(t *testing.T) {
	dir := os.Getenv("KILN_BUILDSPEC_HELPER_DIR")
	if dir == "" {
		t.Skip("helper for TestRunShellDiesWithKiln")
	}
	s := mustParse(t, "version: 0.2\nphases:\n  build:\n    commands: ['sleep 300 & echo $! > sleep.pid; echo $$ > shell.pid; wait']\n")
	_, _ = s.Run(context.Background(), RunOptions{Dir: dir})
}
