package buildspec

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// fourPhases builds a spec whose every phase logs that it ran, and whose phase
// failIn then fails with status 7 ("(exit 7)" fails without ending the shell).
func fourPhases(failIn, onFailure string) string {
	var b strings.Builder
	b.WriteString("version: 0.2\nphases:\n")
	for _, name := range []string{PhaseInstall, PhasePreBuild, PhaseBuild, PhasePostBuild} {
		fmt.Fprintf(&b, "  %s:\n", name)
		if name == failIn && onFailure != "" {
			fmt.Fprintf(&b, "    on-failure: %s\n", onFailure)
		}
		b.WriteString("    commands:\n")
		fmt.Fprintf(&b, "      - echo \"ran %s succeeding=$CODEBUILD_BUILD_SUCCEEDING\"\n", name)
		if name == failIn {
			b.WriteString("      - (exit 7)\n      - echo after-failure\n")
		}
	}
	return b.String()
}

// TestRunPhaseTransitions follows CodeBuild: install or pre_build failing skips
// the rest, build failing still runs post_build, CONTINUE runs the rest.
func TestRunPhaseTransitions(t *testing.T) {
	cases := []struct {
		failIn, onFailure, statuses string
		ran                         []string
	}{
		{PhaseInstall, "", "install=FAILED pre_build=SKIPPED build=SKIPPED post_build=SKIPPED", []string{"install succeeding=1"}},
		{PhasePreBuild, "", "install=SUCCEEDED pre_build=FAILED build=SKIPPED post_build=SKIPPED", []string{"pre_build succeeding=1"}},
		{PhaseBuild, "", "install=SUCCEEDED pre_build=SUCCEEDED build=FAILED post_build=SUCCEEDED", []string{"build succeeding=1", "post_build succeeding=0"}},
		{PhasePostBuild, "", "install=SUCCEEDED pre_build=SUCCEEDED build=SUCCEEDED post_build=FAILED", []string{"post_build succeeding=1"}},
		{PhaseInstall, "CONTINUE", "install=FAILED pre_build=SUCCEEDED build=SUCCEEDED post_build=SUCCEEDED", []string{"install succeeding=1", "pre_build succeeding=0", "post_build succeeding=0"}},
		{PhasePreBuild, "CONTINUE", "install=SUCCEEDED pre_build=FAILED build=SUCCEEDED post_build=SUCCEEDED", []string{"build succeeding=0"}},
	}
	for _, c := range cases {
		t.Run(c.failIn+"/"+c.onFailure, func(t *testing.T) {
			b := runSpec(t, fourPhases(c.failIn, c.onFailure))
			if got := b.statuses(); got != c.statuses {
				t.Errorf("statuses:\n got %s\nwant %s", got, c.statuses)
			}
			log := b.log.String()
			for _, r := range c.ran {
				wantContains(t, log, "ran "+r+"\n")
			}
			wantNotContains(t, log, "after-failure") // a phase stops at its failing command
			var ce *CommandError
			if !errors.As(b.err, &ce) || ce.Phase != c.failIn || ce.Command != "(exit 7)" || ce.ExitCode != 7 || ce.ShellExited {
				t.Fatalf("error = %#v", b.err)
			}
			if b.res.Succeeded {
				t.Error("a build with a failed phase succeeded")
			}
			for _, p := range b.res.Phases {
				if p.Name == c.failIn && (p.ExitCode != 7 || p.FailedCommand != "(exit 7)") {
					t.Errorf("failed phase result: %+v", p)
				}
				if p.Status == StatusSkipped && !p.Start.IsZero() {
					t.Errorf("skipped phase has a start time: %+v", p)
				}
			}
		})
	}
}

func TestRunFinally(t *testing.T) {
	b := runSpec(t, `version: 0.2
phases:
  pre_build:
    commands: ["echo pre"]
    finally: ["echo pre-finally succeeding=$CODEBUILD_BUILD_SUCCEEDING"]
  build:
    commands:
      - "false"
      - echo not-reached
    finally:
      - echo build-finally succeeding=$CODEBUILD_BUILD_SUCCEEDING
      - echo second-finally
`)
	log := b.log.String()
	wantContains(t, log, "pre-finally succeeding=1\n")
	wantContains(t, log, "build-finally succeeding=0\n")
	wantContains(t, log, "second-finally\n")
	wantNotContains(t, log, "not-reached\n")
	wantContains(t, log, "[kiln] phase build: running finally command 3: echo build-finally")
	if got := b.statuses(); got != "pre_build=SUCCEEDED build=FAILED" {
		t.Errorf("statuses = %s", got)
	}
}

// TestRunFailingFinallyFailsPhase: a finally command is part of the phase.
func TestRunFailingFinallyFailsPhase(t *testing.T) {
	b := runSpec(t, `version: 0.2
phases:
  build:
    commands: ["echo ok"]
    finally: ["exit 4", "echo not-reached"]
  post_build:
    commands: ["echo post succeeding=$CODEBUILD_BUILD_SUCCEEDING"]
`)
	var ce *CommandError
	if !errors.As(b.err, &ce) || ce.Command != "exit 4" || ce.ExitCode != 4 {
		t.Fatalf("error = %v", b.err)
	}
	wantNotContains(t, b.log.String(), "not-reached")
	wantContains(t, b.log.String(), "post succeeding=0\n")
	if got := b.statuses(); got != "build=FAILED post_build=SUCCEEDED" {
		t.Errorf("statuses = %s", got)
	}
}

// TestRunExitEndsShell: `exit N` ends the shared shell. The build fails with
// N, and later commands (post_build) run in a fresh shell without the old state.
func TestRunExitEndsShell(t *testing.T) {
	b := runSpec(t, `version: 0.2
phases:
  build:
    commands:
      - STATE=old; cd /
      - exit 3
    finally:
      - echo "finally state=${STATE:-none} pwd=$(pwd) succeeding=$CODEBUILD_BUILD_SUCCEEDING"
  post_build:
    commands:
      - echo post ran
`)
	var ce *CommandError
	if !errors.As(b.err, &ce) {
		t.Fatalf("error = %v", b.err)
	}
	if ce.Phase != PhaseBuild || ce.Command != "exit 3" || ce.ExitCode != 3 || !ce.ShellExited {
		t.Errorf("CommandError = %+v", ce)
	}
	wantContains(t, ce.Error(), `phase build: command "exit 3" ended the build shell with status 3`)
	log := b.log.String()
	wantContains(t, log, "finally state=none pwd="+b.dir+" succeeding=0\n")
	wantContains(t, log, "post ran\n")
}

func TestRunShellKilledBySignal(t *testing.T) {
	b := runSpec(t, "version: 0.2\nphases:\n  build:\n    commands: ['kill -9 $$']\n")
	var ce *CommandError
	if !errors.As(b.err, &ce) || ce.ExitCode != 137 || !ce.ShellExited {
		t.Fatalf("error = %#v", b.err)
	}
}

func TestRunSetEFailureIsReported(t *testing.T) {
	b := runSpec(t, "version: 0.2\nphases:\n  build:\n    commands: ['set -e', 'false', 'echo unreachable']\n")
	var ce *CommandError
	if !errors.As(b.err, &ce) || ce.Command != "false" || ce.ExitCode != 1 {
		t.Fatalf("error = %#v", b.err)
	}
	wantNotContains(t, b.log.String(), "unreachable\n")
}

// TestCommandErrorLogTail checks the tail ends with the failing command's own
// output, even a last line without a newline, and holds none of kiln's lines.
func TestCommandErrorLogTail(t *testing.T) {
	b := runSpec(t, `version: 0.2
phases:
  build:
    commands:
      - for i in $(seq 1 30); do echo "line $i"; done
      - echo "compiling"; printf 'error boom'; (exit 2)
`)
	var ce *CommandError
	if !errors.As(b.err, &ce) {
		t.Fatalf("error = %v", b.err)
	}
	if len(ce.LogTail) != DefaultTailLines {
		t.Fatalf("tail has %d lines: %q", len(ce.LogTail), ce.LogTail)
	}
	n := len(ce.LogTail)
	want := []string{"line 30", "compiling", "error boom"}
	if got := strings.Join(ce.LogTail[n-3:], "\n"); got != strings.Join(want, "\n") {
		t.Errorf("tail ends with\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
	if ce.LogTail[0] != "line 13" {
		t.Errorf("tail starts with %q", ce.LogTail[0])
	}
	wantContains(t, ce.Error(), "phase build: command \"echo \\\"compiling\\\"; printf 'error boom'; (exit 2)\" exited with status 2; last lines of log:\nline 13\n")
}

func TestCommandErrorFormat(t *testing.T) {
	e := &CommandError{Phase: "build", Command: "make test", ExitCode: 2, LogTail: []string{"a", "b"}}
	if got, want := e.Error(), "phase build: command \"make test\" exited with status 2; last lines of log:\na\nb"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	e.LogTail = nil
	if got, want := e.Error(), `phase build: command "make test" exited with status 2`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
