package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slotsYAML builds main and cancels the build a newer push supersedes. A
// commit with the file "slow" builds until it is cancelled.
const slotsYAML = `repos:
  - name: e2e/slots
    clone_url: {{REPO}}
    webhook_secret: {file: {{SECRET}}}
pipelines:
  - name: slots
    repo: e2e/slots
    triggers: {branch: [main]}
    cancel_superseded: true
    stages:
      build:
        env: {STATE: {{STATE}}}
        buildspec:
          version: 0.2
          phases:
            build:
              commands:
                # Each attempt and run may be another build user: let them all write here.
                - umask 0
                - echo "$KILN_COMMIT" >> "$STATE/builds"
                - if [ -e slow ]; then sleep 600 & echo $! > "$STATE/sleep.pid"; wait $!; fi
`

const slotsSecret = "e2e-slots-secret"

// TestPushPlannedWhileEveryBuildSlotIsBusy runs kiln dev with one build
// slot, fills it with a build that never ends, and pushes a newer commit to
// the same branch. The newer run must be planned while the slot is still
// taken (plans have slots of their own), cancel the stale build, and then
// build in the slot that frees.
func TestPushPlannedWhileEveryBuildSlotIsBusy(t *testing.T) {
	t.Parallel()
	f := newDevFixture(t, slotsYAML, slotsSecret, map[string]string{"README.md": "# slots\n", "slow": "until cancelled\n"})
	state, repo := f.state, f.repo
	killPID(t, filepath.Join(state, "sleep.pid"))
	ports := freeDevPorts(t)
	dev := startKiln(t, cleanEnv(), append(ports.devArgs(f.data), "--config", f.config, "--max-builds", "1")...)
	waitHealthy(t, dev, ports, 60*time.Second)
	hook := fmt.Sprintf("http://127.0.0.1:%d/hooks/github", ports.http)

	first := gitOut(t, repo, "rev-parse", "HEAD")
	stale := pushMain(t, hook, strings.Repeat("0", 40), first)
	waitFile(t, dev, filepath.Join(state, "sleep.pid"), 60*time.Second)

	gitOut(t, repo, "rm", "-q", "slow")
	gitOut(t, repo, "-c", "user.name=e2e", "-c", "user.email=e2e@example.com", "commit", "-q", "-m", "fast")
	second := gitOut(t, repo, "rev-parse", "HEAD")
	pushed := time.Now()
	newer := pushMain(t, hook, first, second)

	var planned, cancelled time.Duration
	deadline := time.Now().Add(60 * time.Second)
	for (planned == 0 || cancelled == 0) && time.Now().Before(deadline) {
		runs := listRuns(t, ports)
		if r := runs[newer]; planned == 0 && r.Stage != "" && r.Stage != "queued" {
			planned = time.Since(pushed)
			// Planned while the stale build still holds the only slot, or
			// the plan could have waited for the slot to free.
			assert.Equal(t, "running", runs[stale].Status, "the stale build was still running when the newer run was planned")
		}
		if r := runs[stale]; cancelled == 0 && r.Status == "canceled" {
			cancelled = time.Since(pushed)
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.NotZero(t, planned, "the newer run was not planned within 60 s while the build slot was busy")
	require.NotZero(t, cancelled, "the stale run was not cancelled within 60 s")
	t.Logf("after the newer push: planned in %s, the stale build cancelled in %s",
		planned.Round(10*time.Millisecond), cancelled.Round(10*time.Millisecond))

	run := waitRun(t, ports, 60*time.Second, func(r runSummary) bool { return r.WorkflowID == newer })
	assert.Equal(t, "completed", run.Status)
	builds, err := os.ReadFile(filepath.Join(state, "builds"))
	require.NoError(t, err)
	assert.Equal(t, first+"\n"+second+"\n", string(builds), "the stale build, then the newer one in the freed slot")
}

// pushMain delivers a signed push of main from before to after and returns
// the workflow ID of the run it started.
func pushMain(t *testing.T, hook, before, after string) string {
	t.Helper()
	return startedRun(t, hook, slotsSecret, "push", map[string]any{
		"ref": "refs/heads/main", "before": before, "after": after,
		"head_commit": map[string]any{"id": after, "message": "m"},
		"repository":  map[string]any{"full_name": "e2e/slots", "default_branch": "main"},
		"pusher":      map[string]any{"name": "p"}, "sender": map[string]any{"login": "p"},
	})
}

// listRuns returns `kiln runs --json` by workflow ID.
func listRuns(t *testing.T, ports devPorts) map[string]runSummary {
	t.Helper()
	out, errOut, code := runKiln(t, 20*time.Second, cleanEnv(), "runs", "--json", "--temporal-address", ports.address())
	require.Equal(t, 0, code, "kiln runs: %s", errOut)
	var runs []runSummary
	require.NoError(t, json.Unmarshal([]byte(out), &runs))
	byID := map[string]runSummary{}
	for _, r := range runs {
		byID[r.WorkflowID] = r
	}
	return byID
}

// gitOut runs git in dir and returns its trimmed output.
func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	require.NoError(t, err, "git %s: %s", strings.Join(args, " "), out)
	return strings.TrimSpace(string(out))
}
