package e2e

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRunWait starts on-demand runs with `kiln run --wait` against a running
// `kiln dev`, as a developer or a release script would: the command prints the
// workflow ID, follows the stages, and its exit code is the run's outcome.
func TestRunWait(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	makeRepo(t, repo, map[string]string{"README.md": "# app\n"})
	secret := writeFile(t, dir, "secret", "e2e-run-secret\n")
	cfg := writeFile(t, dir, "kiln.yaml", `repos:
  - name: e2e/app
    clone_url: `+strconv.Quote(repo)+`
    webhook_secret: {file: `+strconv.Quote(secret)+`}
pipelines:
  - name: ok
    repo: e2e/app
    triggers: {manual: true}
    stages:
      build:
        buildspec:
          version: 0.2
          phases:
            build: {commands: ["echo building $KILN_COMMIT"]}
  - name: broken
    repo: e2e/app
    triggers: {manual: true}
    stages:
      build:
        buildspec:
          version: 0.2
          phases:
            build: {commands: ["echo about to break", "sh -c 'exit 7'"]}
`)
	ports := freeDevPorts(t)
	dev := startKiln(t, cleanEnv(), append(ports.devArgs(filepath.Join(dir, "data")), "--config", cfg)...)
	waitHealthy(t, dev, ports, 60*time.Second)

	stdout, stderr, code := runKiln(t, 90*time.Second, cleanEnv(),
		"run", "--pipeline", "ok", "--ref", "main", "--wait", "--temporal-address", ports.address())
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
	id := strings.TrimSpace(stdout)
	assert.Regexp(t, `^ok/main/manual-\d{8}T\d{6}\.\d{3}Z$`, id, "stdout is the workflow ID alone, for scripts")
	assert.Regexp(t, regexp.MustCompile(`(?m)^build\s+succeeded \(`), stderr, "a stage line with its duration")
	assert.Contains(t, stderr, "run "+id+" succeeded")

	stdout, stderr, code = runKiln(t, 90*time.Second, cleanEnv(),
		"run", "--pipeline", "broken", "--ref", "main", "--wait", "--temporal-address", ports.address())
	assert.Equal(t, 1, code, "a failed run fails the command; stdout: %s\nstderr: %s", stdout, stderr)
	id = strings.TrimSpace(stdout)
	assert.Regexp(t, `^broken/main/manual-`, id)
	assert.Regexp(t, regexp.MustCompile(`(?m)^build\s+failed .*exited with status 7`), stderr)
	assert.Contains(t, stderr, "run "+id+" failed")

	// kiln retry refuses a run that is not waiting for one, saying why.
	_, stderr, code = runKiln(t, 30*time.Second, cleanEnv(), "retry", id, "--temporal-address", ports.address())
	assert.Equal(t, 1, code, stderr)
	assert.Contains(t, stderr, "kiln retry: retry "+id+": workflow execution already completed")
	_, stderr, code = runKiln(t, 30*time.Second, cleanEnv(), "retry")
	assert.Equal(t, 2, code, stderr)
	assert.Contains(t, stderr, "name exactly one run ID")
}
