package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
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
            build: {commands: ["echo building $KILN_COMMIT | tee out.txt"]}
          artifacts: {files: [out.txt]}
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
	// It closes with what the run made and where to see it.
	head := gitOut(t, repo, "rev-parse", "HEAD")
	assert.Contains(t, stderr, "  commit     "+head+"\n")
	assert.Contains(t, stderr, fmt.Sprintf("  web UI     http://127.0.0.1:%d/namespaces/default/workflows/%s\n", ports.ui, url.PathEscape(id)))

	// --json gives scripts the same, on stdout.
	stdout, stderr, code = runKiln(t, 90*time.Second, cleanEnv(),
		"run", "--pipeline", "ok", "--ref", "main", "--wait", "--json", "--temporal-address", ports.address())
	require.Equal(t, 0, code, stderr)
	var outcome struct {
		WorkflowID string `json:"workflow_id"`
		Outcome    string `json:"outcome"`
		Commit     string `json:"commit"`
		UI         string `json:"ui"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &outcome), stdout)
	assert.Equal(t, "succeeded", outcome.Outcome)
	assert.Equal(t, head, outcome.Commit)
	assert.Regexp(t, `^ok/main/manual-`, outcome.WorkflowID)
	assert.Contains(t, outcome.UI, url.PathEscape(outcome.WorkflowID))

	stdout, stderr, code = runKiln(t, 90*time.Second, cleanEnv(),
		"run", "--pipeline", "broken", "--ref", "main", "--wait", "--temporal-address", ports.address())
	assert.Equal(t, 1, code, "a failed run fails the command; stdout: %s\nstderr: %s", stdout, stderr)
	id = strings.TrimSpace(stdout)
	assert.Regexp(t, `^broken/main/manual-`, id)
	assert.Regexp(t, regexp.MustCompile(`(?m)^build\s+failed .*exited with status 7`), stderr)
	assert.Contains(t, stderr, "kiln run: run "+id+" failed at build\n")
	// The cause once, in kiln's words, with the build's own last lines.
	assert.Equal(t, 1, strings.Count(stderr, "status 7"), stderr)
	assert.Contains(t, stderr, "last lines of log:\nabout to break\nlog: ")
	for _, wrapper := range []string{"workflow execution error", "activity error", "scheduledEventID", "retryable:", "[kiln]"} {
		assert.NotContains(t, stderr, wrapper)
	}

	// kiln watch follows a run by either of its IDs: an ended one at once,
	// with its outcome as the exit code.
	runs := listRuns(t, ports)
	failed := runs[id]
	failedRunID := failed.RunID
	require.NotEmpty(t, failedRunID)
	assert.Equal(t, "failed", failed.Status)
	assert.Equal(t, `phase build: command "sh -c 'exit 7'" exited with status 7`, failed.Reason)
	assert.False(t, failed.Ended.IsZero())
	_, stderr, code = runKiln(t, 30*time.Second, cleanEnv(), "watch", failedRunID, "--temporal-address", ports.address())
	assert.Equal(t, 1, code, stderr)
	assert.Contains(t, stderr, "kiln watch: run "+id+" failed at build\n")
	okID := ""
	for _, r := range runs {
		if r.Pipeline == "ok" {
			okID = r.WorkflowID
		}
	}
	_, stderr, code = runKiln(t, 30*time.Second, cleanEnv(), "watch", okID, "--temporal-address", ports.address())
	assert.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "run "+okID+" succeeded")
	_, stderr, code = runKiln(t, 30*time.Second, cleanEnv(), "watch", "nope/main/x", "--temporal-address", ports.address())
	assert.Equal(t, 1, code, stderr)
	assert.Contains(t, stderr, `kiln watch: no run "nope/main/x": name it by its workflow ID (kiln runs lists them) or the Run ID the Web UI shows`)

	// kiln retry refuses a run that is not waiting for one, saying why and
	// what to do instead.
	_, stderr, code = runKiln(t, 30*time.Second, cleanEnv(), "retry", id, "--temporal-address", ports.address())
	assert.Equal(t, 1, code, stderr)
	assert.Contains(t, stderr, "kiln retry: run "+id+" has ended (failed at build), and kiln retry only answers a run that waits for it; "+
		"start a new run with: kiln run --pipeline broken --ref main\n")
	_, stderr, code = runKiln(t, 30*time.Second, cleanEnv(), "retry")
	assert.Equal(t, 2, code, stderr)
	assert.Contains(t, stderr, "name exactly one run ID")

	// A typo starts nothing, names what exists, and fails the command.
	before := len(listRuns(t, ports))
	stdout, stderr, code = runKiln(t, 30*time.Second, cleanEnv(), "run", "--pipeline", "nope", "--ref", "main", "--temporal-address", ports.address())
	assert.Equal(t, 1, code, stderr)
	assert.Empty(t, stdout)
	assert.Equal(t, "kiln run: pipeline \"nope\" is not in "+cfg+" (pipelines: ok, broken); no run was started\n", stderr)
	_, stderr, code = runKiln(t, 30*time.Second, cleanEnv(), "run", "--pipeline", "ok", "--ref", "no-such-branch", "--temporal-address", ports.address())
	assert.Equal(t, 1, code, stderr)
	assert.Contains(t, stderr, `ref "refs/heads/no-such-branch"`)
	assert.Contains(t, stderr, "not found; no run was started")
	assert.Len(t, listRuns(t, ports), before, "a refused run was started")

	// GET /metrics answers Prometheus text: kiln's series and the SDK's.
	status, metrics := getText(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", ports.http))
	require.Equal(t, http.StatusOK, status)
	for _, want := range []string{
		`(?m)^kiln_runs_started_total\{[^}]*event="manual",[^}]*pipeline="ok"[^}]*\} 2$`,
		`(?m)^kiln_runs_started_total\{[^}]*event="manual",[^}]*pipeline="broken"[^}]*\} 1$`,
		`(?m)^kiln_runs_finished_total\{[^}]*outcome="failed",pipeline="broken"[^}]*\} 1$`,
		`(?m)^kiln_stage_duration_seconds_count\{[^}]*outcome="succeeded",pipeline="ok",stage="build"[^}]*\} 2$`,
		// Seconds, not the milliseconds OpenTelemetry's default buckets suit.
		`(?m)^kiln_stage_duration_seconds_bucket\{[^}]*le="0.1"\} `,
		// Both runs built the same bytes, which the artifact store keeps
		// once: "building <40 hex digits>\n" is 50 bytes.
		`(?m)^kiln_artifact_bytes_total\{[^}]*direction="upload"[^}]*\} 50$`,
		`(?m)^temporal_request_total\{`,
		`(?m)^temporal_activity_execution_latency_seconds_bucket\{`,
	} {
		assert.Regexp(t, want, metrics)
	}

	// A second kiln dev on the same data dir exits at once, naming the first.
	second := freeDevPorts(t)
	_, stderr, code = runKiln(t, 30*time.Second, cleanEnv(), append(second.devArgs(filepath.Join(dir, "data")), "--config", cfg)...)
	assert.Equal(t, 1, code, stderr)
	assert.Regexp(t, `kiln dev: data dir .*/data is in use by kiln \(pid \d+\): stop it, or give this one another --data-dir\n$`, stderr)
}

// getText GETs url and returns its status and body.
func getText(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}
