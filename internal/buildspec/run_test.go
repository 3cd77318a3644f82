package buildspec

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestRunSharesOneShell checks CodeBuild 0.2's central promise: variables,
// functions and the working directory carry over between commands and phases.
func TestRunSharesOneShell(t *testing.T) {
	for _, shell := range []string{"bash", "/bin/sh"} {
		t.Run(shell, func(t *testing.T) {
			b := runSpec(t, `version: 0.2
env:
  shell: `+shell+`
phases:
  install:
    commands:
      - mkdir sub && cd sub
      - PLAIN=kept
      - greet() { echo "hello $1"; }
  build:
    commands:
      - echo "plain=$PLAIN"
      - greet world
      - echo "cwd=$(pwd)"
  post_build:
    commands:
      - export LATE=1
      - sh -c 'echo "child sees LATE=$LATE"'
`)
			if b.err != nil {
				t.Fatalf("Run: %v\n%s", b.err, b.log.String())
			}
			log := b.log.String()
			wantContains(t, log, "plain=kept\n")
			wantContains(t, log, "hello world\n")
			wantContains(t, log, "cwd="+b.dir+"/sub\n")
			wantContains(t, log, "child sees LATE=1\n")
			if !b.res.Succeeded || b.statuses() != "install=SUCCEEDED build=SUCCEEDED post_build=SUCCEEDED" {
				t.Errorf("result: %s succeeded=%v", b.statuses(), b.res.Succeeded)
			}
		})
	}
}

func TestRunShellChoice(t *testing.T) {
	src := "version: 0.2\nenv:\n  shell: SHELL\nphases:\n  build:\n    commands:\n      - 'if [ -n \"$BASH_VERSION\" ]; then echo in-bash; else echo in-sh; fi'\n"
	for shell, want := range map[string]string{"bash": "in-bash", "/bin/sh": "in-sh"} {
		b := runSpec(t, strings.Replace(src, "SHELL", shell, 1))
		wantContains(t, b.log.String(), want+"\n")
	}
}

// TestRunLogOrder checks banners and command output interleave in the order
// they happened, and that phase ends carry status and duration.
func TestRunLogOrder(t *testing.T) {
	b := runSpec(t, `version: 0.2
phases:
  build:
    commands:
      - echo one
      - printf no-newline
      - echo two >&2
      - |
        echo multi
        echo line
`)
	if b.err != nil {
		t.Fatal(b.err)
	}
	log := b.log.String()
	wantInOrder(t, log,
		"[kiln] phase build: running command 1: echo one\n", "one\n",
		"[kiln] phase build: running command 2: printf no-newline\n", "no-newline\n",
		"[kiln] phase build: running command 3: echo two >&2\n", "two\n",
		"[kiln] phase build: running command 4: echo multi ...\n", "multi\nline\n",
	)
	if !regexp.MustCompile(`\[kiln\] phase build: SUCCEEDED \(\d+\.\ds\)\n$`).MatchString(log) {
		t.Errorf("no phase end line at the end of:\n%s", log)
	}
}

// TestRunEnvironment checks precedence (base < env.variables < event env <
// CODEBUILD_*) and that the build starts in the source directory.
func TestRunEnvironment(t *testing.T) {
	b := runSpec(t, `version: 0.2
env:
  variables:
    FROM_SPEC: spec
    OVERRIDDEN: spec
    LITERAL: $HOME
phases:
  build:
    commands:
      - echo "base=$FROM_BASE spec=$FROM_SPEC over=$OVERRIDDEN event=$KILN_REF"
      - printenv LITERAL
      - echo "src=$CODEBUILD_SRC_DIR ok=$CODEBUILD_BUILD_SUCCEEDING pwd=$(pwd)"
      - echo "path=$PATH"
`, func(o *RunOptions) {
		o.BaseEnv = []string{"PATH=/usr/bin:/bin", "FROM_BASE=base", "OVERRIDDEN=base", "HOME=/home/kiln"}
		o.Env = []string{"OVERRIDDEN=event", "KILN_REF=refs/heads/main", "CODEBUILD_SRC_DIR=/elsewhere"}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	log := b.log.String()
	wantContains(t, log, "base=base spec=spec over=event event=refs/heads/main\n")
	wantContains(t, log, "\n$HOME\n")
	wantContains(t, log, "src="+b.dir+" ok=1 pwd="+b.dir+"\n")
	wantContains(t, log, "path=/usr/bin:/bin\n")
}

// TestRunCommandsCannotReachControlPipes checks a command reading stdin gets
// EOF rather than kiln's instructions, and that neither pipe leaks to commands.
func TestRunCommandsCannotReachControlPipes(t *testing.T) {
	b := runSpec(t, `version: 0.2
phases:
  build:
    commands:
      - cat; echo "cat done"
      - read line || echo "read got EOF"
      - for fd in 3 4; do if [ -e /proc/self/fd/$fd ]; then echo "shell fd $fd open"; fi; done
      - bash -c 'for fd in 3 4; do if [ -e /proc/self/fd/$fd ]; then echo "child fd $fd open"; fi; done'
      - echo still running
`)
	if b.err != nil {
		t.Fatal(b.err)
	}
	log := b.log.String()
	wantContains(t, log, "cat done\n")
	wantContains(t, log, "read got EOF\n")
	wantContains(t, log, "still running\n")
	wantNotContains(t, log, "fd 3 open")
	wantNotContains(t, log, "fd 4 open")
}

func TestRunExportedVariables(t *testing.T) {
	b := runSpec(t, `version: 0.2
env:
  variables:
    FROM_SPEC: initial
  exported-variables: [IMAGE_TAG, FROM_SPEC, MULTI, NEVER_SET, EMPTY]
phases:
  build:
    commands:
      - IMAGE_TAG=v1.2.3
      - FROM_SPEC=changed
      - MULTI="$(printf 'a\nb ')"
      - EMPTY=
`)
	if b.err != nil {
		t.Fatal(b.err)
	}
	want := map[string]string{"IMAGE_TAG": "v1.2.3", "FROM_SPEC": "changed", "MULTI": "a\nb ", "EMPTY": ""}
	if !reflect.DeepEqual(b.res.Exported, want) {
		t.Errorf("Exported = %q, want %q", b.res.Exported, want)
	}
}

func TestRunProgress(t *testing.T) {
	var p progressLog
	b := runSpec(t, `version: 0.2
phases:
  pre_build:
    commands: ["true"]
  build:
    commands: ["true", "false"]
    finally: ["true"]
`, func(o *RunOptions) { o.Progress = p.add })
	var ce *CommandError
	if !errors.As(b.err, &ce) {
		t.Fatalf("want CommandError, got %v", b.err)
	}
	want := []Progress{
		{Phase: "pre_build"},
		{Phase: "pre_build", Command: 1, CommandText: "true"},
		{Phase: "pre_build", Command: 1, CommandText: "true", Done: true},
		{Phase: "pre_build", Done: true},
		{Phase: "build"},
		{Phase: "build", Command: 1, CommandText: "true"},
		{Phase: "build", Command: 1, CommandText: "true", Done: true},
		{Phase: "build", Command: 2, CommandText: "false"},
		{Phase: "build", Command: 2, CommandText: "false", Done: true},
		{Phase: "build", Command: 3, CommandText: "true"},
		{Phase: "build", Command: 3, CommandText: "true", Done: true},
		{Phase: "build", Done: true},
	}
	if !reflect.DeepEqual(p.events, want) {
		t.Errorf("progress:\n%+v\nwant\n%+v", p.events, want)
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	s := mustParse(t, "version: 0.2\nphases:\n  build:\n    commands: [\"true\"]\n")
	if _, err := s.Run(context.Background(), RunOptions{Dir: t.TempDir() + "/missing"}); err == nil {
		t.Error("missing source directory accepted")
	}
	s.Env.ExportedVariables = []string{"X; touch injected"} // built by hand, not by Parse
	dir := t.TempDir()
	if _, err := s.Run(context.Background(), RunOptions{Dir: dir}); err == nil || !strings.Contains(err.Error(), "not a valid name") {
		t.Errorf("invalid exported name: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "injected")); err == nil {
		t.Error("exported variable name was run as code")
	}
}
