package integration

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/starter/intake"
	"github.com/kiln-ci/kiln/test/testkit"
)

// runTimeout bounds a run of a quick pipeline. A build takes well under a
// second of work, but the run also waits for checkout, task dispatch and the
// shell's clean-up, and the machine may be busy.
const runTimeout = 60 * time.Second

// deliver POSTs a webhook signed with the repository secret, as GitHub sends
// it, and returns the status and the handler's JSON answer.
func deliver(t *testing.T, eventType, delivery string, payload any) (int, intake.Response) {
	t.Helper()
	body, err := json.Marshal(payload)
	require.NoError(t, err)
	req, err := testkit.GitHubDelivery(it.hookURL, webhookSecret, eventType, delivery, body)
	require.NoError(t, err)
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out intake.Response
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

// startedID delivers a webhook that must start exactly one run, and returns
// that run's workflow ID.
func startedID(t *testing.T, eventType, delivery string, payload any) string {
	t.Helper()
	status, resp := deliver(t, eventType, delivery, payload)
	require.Equal(t, http.StatusOK, status, "response: %+v", resp)
	require.Len(t, resp.Started, 1, "response: %+v", resp)
	require.False(t, resp.Started[0].Duplicate, "a first delivery is no duplicate")
	return resp.Started[0].WorkflowID
}

// repoJSON is the repository object every payload carries; the handler picks
// the secret by its full_name.
func repoJSON(name string) map[string]any {
	return map[string]any{
		"name": name, "full_name": "kiln-it/" + name, "clone_url": repoDir(name),
		"default_branch": "main", "owner": map[string]any{"login": "kiln-it"},
	}
}

// pushPayload is a GitHub push of branch from before to after.
func pushPayload(repo, branch, before, after string) map[string]any {
	return map[string]any{
		"ref": "refs/heads/" + branch, "before": before, "after": after,
		"created": false, "deleted": false, "forced": false,
		"repository":  repoJSON(repo),
		"sender":      map[string]any{"login": "dev1"},
		"pusher":      map[string]any{"name": "dev1"},
		"head_commit": map[string]any{"id": after, "message": "change " + after[:7]},
	}
}

// prPayload is a GitHub pull_request event for a pull request from head to base.
func prPayload(repo, action string, number int, title, head, headSHA, baseSHA string) map[string]any {
	r := repoJSON(repo)
	return map[string]any{
		"action": action, "number": number, "repository": r,
		"sender": map[string]any{"login": "dev1"},
		"pull_request": map[string]any{
			"number": number, "title": title, "state": "open",
			"head": map[string]any{"ref": head, "sha": headSHA, "repo": r},
			"base": map[string]any{"ref": "main", "sha": baseSHA, "repo": r},
		},
	}
}

// git runs git in dir as a developer would, and returns its trimmed output.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=dev1", "GIT_AUTHOR_EMAIL=dev1@example.com",
		"GIT_COMMITTER_NAME=dev1", "GIT_COMMITTER_EMAIL=dev1@example.com")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "git %s: %s", strings.Join(args, " "), out)
	return strings.TrimSpace(string(out))
}

// commitOn commits a file on branch (created from main if new) and returns the
// commit's SHA. It leaves the repository on main.
func commitOn(t *testing.T, dir, branch, file, content string) string {
	t.Helper()
	if exec.Command("git", "-C", dir, "rev-parse", "--verify", "--quiet", "refs/heads/"+branch).Run() == nil {
		git(t, dir, "checkout", "--quiet", branch)
	} else {
		git(t, dir, "checkout", "--quiet", "-b", branch, "main")
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644))
	git(t, dir, "add", "--all")
	// --allow-empty: a rerun (go test -count=2) commits the same content again.
	git(t, dir, "commit", "--quiet", "--allow-empty", "--no-gpg-sign", "-m", "change "+file)
	sha := git(t, dir, "rev-parse", "HEAD")
	git(t, dir, "checkout", "--quiet", "main")
	return sha
}

// logPath is where the worker writes a build attempt's log, by the layout
// activities.Paths documents: the workflow ID with "/" made "_".
func logPath(id string, attempt int) string {
	run := strings.NewReplacer("/", "_", "\\", "_", "..", "_").Replace(id)
	return filepath.Join(it.dataDir, "logs", run, "build-"+strconv.Itoa(attempt)+".log")
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "")
}

// waitFor polls cond until it holds, failing the test with what after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pidFile is where the review and cancel builds write the PID of their
// long-running child, named after the run so runs never share one.
func pidFile(id string) string {
	return filepath.Join(stateDir(), strings.ReplaceAll(id, "/", "_")+".pid")
}

// waitPID waits until a build has written its PID file, which also tells the
// test that the build is running its long command, and returns the PID.
func waitPID(t *testing.T, id string, timeout time.Duration) int {
	t.Helper()
	var pid int
	waitFor(t, timeout, "the build of "+id+" to write "+pidFile(id), func() bool {
		pid = testkit.ReadPID(pidFile(id))
		return pid > 0
	})
	return pid
}

// killOnCleanup makes sure a build process a failing test leaves behind does
// not outlive the test.
func killOnCleanup(t *testing.T, pid int) {
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil && testkit.ProcessAlive(pid) {
			_ = p.Kill()
		}
	})
}
