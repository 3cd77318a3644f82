package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// approveYAML builds reviews; the build leaves a marker, so the test sees
// whether the change ran.
const approveYAML = `repos:
  - name: e2e/gate
    clone_url: {{REPO}}
    webhook_secret: {file: {{SECRET}}}
pipelines:
  - name: gate
    repo: e2e/gate
    triggers: {review: {}}
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
                - echo "$KILN_COMMIT" >> "$STATE/built"
`

const approveSecret = "e2e-approve-secret"

// TestForkPullRequestWaitsForApproval sends a pull request from a fork to
// kiln dev. Its run builds nothing and says it waits for approval; a
// rejection by someone the CLI names is refused for a missing reason, and
// `kiln approve` lets it build. A second fork PR is rejected and ends as
// not approved.
func TestForkPullRequestWaitsForApproval(t *testing.T) {
	t.Parallel()
	f := newDevFixture(t, approveYAML, approveSecret, map[string]string{"README.md": "# gate\n"})
	state, repo := f.state, f.repo
	ports := freeDevPorts(t)
	dev := startKiln(t, cleanEnv(), append(ports.devArgs(f.data), "--config", f.config)...)
	waitHealthy(t, dev, ports, 60*time.Second)
	hook := fmt.Sprintf("http://127.0.0.1:%d/hooks/github", ports.http)
	base := gitOut(t, repo, "rev-parse", "HEAD")
	gitOut(t, repo, "-c", "user.name=fork", "-c", "user.email=f@example.com", "commit", "-q", "--allow-empty", "-m", "fork change")
	head := gitOut(t, repo, "rev-parse", "HEAD")
	gitOut(t, repo, "update-ref", "refs/pull/7/head", head)
	gitOut(t, repo, "reset", "-q", "--hard", base)
	temporal := []string{"--temporal-address", ports.address()}

	id := forkPR(t, hook, 7, head, base)
	waiting := waitStage(t, ports, id, "build: awaiting approval")
	assert.Equal(t, "running", waiting.Status)
	time.Sleep(time.Second) // were it to build, it would by now
	_, err := os.Stat(filepath.Join(state, "built"))
	assert.True(t, os.IsNotExist(err), "the fork's change ran before approval")

	_, stderr, code := runKiln(t, 20*time.Second, cleanEnv(), append([]string{"reject", id, "--by", "ada"}, temporal...)...)
	assert.Equal(t, 2, code, "a rejection without --reason is a usage error: %s", stderr)
	_, stderr, code = runKiln(t, 20*time.Second, cleanEnv(), append([]string{"approve", "gate/pr-7/nope"}, temporal...)...)
	assert.NotEqual(t, 0, code, "approving a run that does not exist fails")
	stdout, stderr, code := runKiln(t, 20*time.Second, cleanEnv(), append([]string{"approve", id, "--by", "ada"}, temporal...)...)
	require.Equal(t, 0, code, "kiln approve: %s", stderr)
	assert.Equal(t, "approved the build stage of "+id+"\n", stdout)
	run := waitRun(t, ports, 60*time.Second, func(r runSummary) bool { return r.WorkflowID == id })
	assert.Equal(t, "completed", run.Status)
	assert.Equal(t, "done", run.Stage)
	built, err := os.ReadFile(filepath.Join(state, "built"))
	require.NoError(t, err)
	assert.Equal(t, head+"\n", string(built))
	_, stderr, code = runKiln(t, 20*time.Second, cleanEnv(), append([]string{"approve", id}, temporal...)...)
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "has ended (completed at done), and kiln approve only answers a run that waits for it",
		"an ended run takes no approval, and the message says why")

	byComment := forkPR(t, hook, 9, head, base)
	waitStage(t, ports, byComment, "build: awaiting approval")
	status, answer := comment(t, hook, 9, "outsider", "CONTRIBUTOR", "/kiln approve "+head[:12])
	assert.Equal(t, http.StatusAccepted, status)
	assert.Contains(t, answer, "outsider may not approve")
	status, answer = comment(t, hook, 9, "maintainer", "MEMBER", "LGTM")
	assert.Equal(t, http.StatusAccepted, status, answer)
	status, answer = comment(t, hook, 9, "maintainer", "MEMBER", "/kiln approve "+strings.Repeat("0", 12)+"\nanother commit")
	assert.Equal(t, http.StatusAccepted, status, "a comment approves only the commit it names: %s", answer)
	status, answer = comment(t, hook, 9, "maintainer", "MEMBER", "/kiln approve "+head[:12]+"\nread it, fine")
	require.Equal(t, http.StatusOK, status, answer)
	assert.Contains(t, answer, byComment)
	run = waitRun(t, ports, 60*time.Second, func(r runSummary) bool { return r.WorkflowID == byComment })
	assert.Equal(t, "done", run.Stage)

	other := forkPR(t, hook, 8, head, base)
	waitStage(t, ports, other, "build: awaiting approval")
	_, stderr, code = runKiln(t, 20*time.Second, cleanEnv(), append([]string{"reject", other, "--by", "ada", "--reason", "mines coins"}, temporal...)...)
	require.Equal(t, 0, code, "kiln reject: %s", stderr)
	run = waitRun(t, ports, 60*time.Second, func(r runSummary) bool { return r.WorkflowID == other })
	assert.Equal(t, "completed", run.Status)
	assert.Equal(t, "not approved", run.Stage)
}

// forkPR delivers a pull request opened from a fork by a first-time
// contributor, and returns its run's ID.
func forkPR(t *testing.T, hook string, number int, head, base string) string {
	t.Helper()
	return startedRun(t, hook, approveSecret, "pull_request", map[string]any{"action": "opened", "number": number,
		"pull_request": map[string]any{"number": number, "title": "from a fork", "author_association": "FIRST_TIME_CONTRIBUTOR",
			"user": map[string]any{"login": "outsider"},
			"head": map[string]any{"ref": "feature", "sha": head, "repo": map[string]any{"full_name": "outsider/gate"}},
			"base": map[string]any{"ref": "main", "sha": base, "repo": map[string]any{"full_name": "e2e/gate"}}},
		"repository": map[string]any{"full_name": "e2e/gate", "default_branch": "main"},
		"sender":     map[string]any{"login": "outsider"}})
}

// comment delivers an issue_comment on pull request number by login, and
// returns kiln's answer.
func comment(t *testing.T, hook string, number int, login, association, body string) (int, string) {
	t.Helper()
	status, answer := deliverHook(t, hook, approveSecret, "issue_comment", map[string]any{"action": "created",
		"issue":      map[string]any{"number": number, "pull_request": map[string]any{"url": "https://example.invalid"}},
		"comment":    map[string]any{"body": body, "user": map[string]any{"login": login}, "author_association": association},
		"repository": map[string]any{"full_name": "e2e/gate"}, "sender": map[string]any{"login": login}})
	return status, string(answer)
}

// waitStage waits until `kiln runs` shows run id at stage.
func waitStage(t *testing.T, ports devPorts, id, stage string) runSummary {
	t.Helper()
	return waitStageFor(t, ports, id, stage, 30*time.Second)
}

// TestApprovalWaitSurvivesRestart: a run waiting for approval is a durable
// wait. kill -9 kiln dev while it waits, start it again on the same data
// dir, and `kiln approve` lets the run go on to success.
func TestApprovalWaitSurvivesRestart(t *testing.T) {
	t.Parallel()
	f := newDevFixture(t, approveYAML, approveSecret, map[string]string{"README.md": "# gate\n"})
	ports := freeDevPorts(t)
	args := append(ports.devArgs(f.data), "--config", f.config)
	first := startKiln(t, cleanEnv(), args...)
	waitHealthy(t, first, ports, 60*time.Second)
	hook := fmt.Sprintf("http://127.0.0.1:%d/hooks/github", ports.http)
	head := gitOut(t, f.repo, "rev-parse", "HEAD")
	gitOut(t, f.repo, "update-ref", "refs/pull/5/head", head)

	id := forkPR(t, hook, 5, head, head)
	waitStage(t, ports, id, "build: awaiting approval")
	require.NoError(t, first.cmd.Process.Signal(syscall.SIGKILL))
	first.waitExit(t, 10*time.Second)

	second := startKiln(t, cleanEnv(), args...)
	waitHealthy(t, second, ports, 60*time.Second)
	assert.Equal(t, "build: awaiting approval", listRuns(t, ports)[id].Stage, "still waiting after the restart")
	_, stderr, code := runKiln(t, 20*time.Second, cleanEnv(), "approve", id, "--by", "ada", "--temporal-address", ports.address())
	require.Equal(t, 0, code, "kiln approve: %s", stderr)
	run := waitRun(t, ports, 60*time.Second, func(r runSummary) bool { return r.WorkflowID == id })
	assert.Equal(t, "completed", run.Status)
	assert.Equal(t, "done", run.Stage)
	built, err := os.ReadFile(filepath.Join(f.state, "built"))
	require.NoError(t, err)
	assert.Equal(t, head+"\n", string(built))
}
