package bitbucket

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/starter/intake"
	"github.com/kiln-ci/kiln/starter/intake/intaketest"
)

const (
	secret   = "bb-test-secret"
	delivery = "4c1e9a70-7b1d-4f6e-9a53-2d8f0e6c1b2a"
)

// handler serves the Bitbucket intake for the corpus's repository, with a
// pipeline on every branch, tag and pull request.
func handler(t *testing.T) (*intake.Handler, *intaketest.FakeStarter) {
	t.Helper()
	cfg := &config.Config{
		Repos: []config.Repo{{Name: "team_name/repo_name", CloneURL: "/srv/repo"}},
		Pipelines: []config.Pipeline{{Name: "all", Repo: "team_name/repo_name",
			Triggers: config.Triggers{Branch: []string{"**"}, Tag: []string{"**"}, Review: &config.ReviewTrigger{}}}},
	}
	starter := &intaketest.FakeStarter{}
	return intake.NewHandler(Host{}, cfg, map[string][]byte{"team_name/repo_name": []byte(secret)}, starter, zerolog.Nop()), starter
}

func sign(body []byte, key string) string {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func deliver(t *testing.T, h http.Handler, eventKey, signature string, body []byte) (int, intake.Response) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/hooks/bitbucket", bytes.NewReader(body))
	r.Header.Set("X-Event-Key", eventKey)
	r.Header.Set("X-Request-UUID", delivery)
	r.Header.Set("X-Hub-Signature", signature)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	var resp intake.Response
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &resp), rec.Body.String())
	return rec.Code, resp
}

func corpus(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

// TestCorpus sends Bitbucket's own payloads: a push, pull requests created
// and updated, and events that start nothing.
func TestCorpus(t *testing.T) {
	review := func() *event.Event {
		return &event.Event{Kind: event.KindReview, Host: event.HostBitbucket, Repo: "team_name/repo_name",
			Ref: "refs/heads/branch2", Branch: "branch2", Commit: "d3022fc0ca3d", Sender: "emmap1",
			Message: "Title of pull request", DeliveryID: "commit-d3022fc0ca3d",
			PullRequest: &event.PullRequest{Number: 1, Title: "Title of pull request", SourceBranch: "branch2",
				TargetBranch: "master", SourceCommit: "d3022fc0ca3d", TargetCommit: "ce5965ddd289"}}
	}
	tests := []struct {
		file, key string
		want      *event.Event
	}{
		{"repo-push.json", "repo:push", &event.Event{Kind: event.KindBranch, Host: event.HostBitbucket, Repo: "team_name/repo_name",
			Ref: "refs/heads/name-of-branch", Branch: "name-of-branch", Commit: "709d658dc5b6d6afcd46049c2f332ee3f515a67d",
			Before: "1e65c05c1d5171631d92438a13901ca7dae9618c", Sender: "emmap1", Message: "new commit message\n", DeliveryID: delivery}},
		{"pull-request-created.json", "pullrequest:created", review()},
		{"pull-request-updated.json", "pullrequest:updated", review()},
		{"pull-request-merged.json", "pullrequest:fulfilled", nil},
		{"issue-created.json", "issue:created", nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			h, starter := handler(t)
			body := corpus(t, tt.file)
			status, resp := deliver(t, h, tt.key, sign(body, secret), body)
			if tt.want == nil {
				assert.Equal(t, http.StatusAccepted, status, "%+v", resp)
				assert.Equal(t, `event "`+tt.key+`" starts nothing`, resp.Ignored)
				assert.Empty(t, starter.Calls())
				return
			}
			require.Equal(t, http.StatusOK, status, "%+v", resp)
			calls := starter.Calls()
			require.Len(t, calls, 1)
			assert.Equal(t, *tt.want, calls[0].Event)
		})
	}
}

// TestPushWithSeveralChanges: one push moves two branches, pushes a tag and
// deletes a branch. Each change that moves a ref is a run with its own
// delivery ID, so a redelivery maps to the same runs.
func TestPushWithSeveralChanges(t *testing.T) {
	h, starter := handler(t)
	change := func(typ, name, hash string) map[string]any {
		return map[string]any{"new": map[string]any{"type": typ, "name": name, "target": map[string]any{"hash": hash}}}
	}
	body, err := json.Marshal(map[string]any{
		"repository": map[string]any{"full_name": "team_name/repo_name"}, "actor": map[string]any{"nickname": "dev"},
		"push": map[string]any{"changes": []any{
			change("branch", "main", "709d658dc5b6d6afcd46049c2f332ee3f515a67d"),
			map[string]any{"new": nil, "old": map[string]any{"type": "branch", "name": "gone"}},
			change("tag", "v1.2", "1e65c05c1d5171631d92438a13901ca7dae9618c"),
			change("branch", "release/1.x", "d3022fc0ca3d0000000000000000000000000000"),
		}}})
	require.NoError(t, err)
	status, resp := deliver(t, h, "repo:push", sign(body, secret), body)
	require.Equal(t, http.StatusOK, status, "%+v", resp)
	require.Len(t, resp.Started, 3)
	var got []string
	for _, c := range starter.Calls() {
		got = append(got, c.Event.DeliveryID+" "+c.Event.Ref)
	}
	assert.ElementsMatch(t, []string{delivery + "-0 refs/heads/main", delivery + "-2 refs/tags/v1.2",
		delivery + "-3 refs/heads/release/1.x"}, got)
}

// TestRefusals: a bad or missing signature is 401, GitHub's SHA-1 form is
// no signature, an unknown repository 403 and missing headers 400.
func TestRefusals(t *testing.T) {
	h, starter := handler(t)
	body := corpus(t, "repo-push.json")
	for _, tt := range []struct {
		name, key, signature string
		body                 []byte
		status               int
		says                 string
	}{
		{"wrong secret", "repo:push", sign(body, "wrong"), body, 401, "signature does not match"},
		{"no signature", "repo:push", "", body, 401, "missing X-Hub-Signature header"},
		{"sha1", "repo:push", "sha1=" + hex.EncodeToString(make([]byte, 20)), body, 401, "X-Hub-Signature is not sha256=<hex>"},
		{"not hex", "repo:push", "sha256=zz", body, 401, "X-Hub-Signature is not sha256=<hex>"},
		{"unknown repo", "repo:push", sign(body, secret), bytes.ReplaceAll(body, []byte("team_name/repo_name"), []byte("evil/repo")), 403, `unknown repo "evil/repo"`},
		{"no event key", "", sign(body, secret), body, 400, "missing X-Event-Key header"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, resp := deliver(t, h, tt.key, tt.signature, tt.body)
			assert.Equal(t, tt.status, status)
			assert.Contains(t, resp.Error, tt.says)
		})
	}
	assert.Empty(t, starter.Calls())
}

// TestForkPullRequest: a fork's pull request starts a run that names the
// fork, whose commits the plan fetches from it, and which waits for
// approval as a fork's change; a deleted fork's is answered 202 with why.
func TestForkPullRequest(t *testing.T) {
	h, starter := handler(t)
	body := bytes.Replace(corpus(t, "pull-request-created.json"), []byte(`"full_name":"team_name/repo_name"`), []byte(`"full_name":"outsider/repo_name"`), 1)
	status, resp := deliver(t, h, "pullrequest:created", sign(body, secret), body)
	require.Equal(t, http.StatusOK, status, "%+v", resp)
	require.Len(t, starter.Calls(), 1)
	pr := starter.Calls()[0].Event.PullRequest
	assert.True(t, pr.Fork)
	assert.Equal(t, "outsider/repo_name", pr.SourceRepo)

	h, starter = handler(t)
	body = bytes.Replace(corpus(t, "pull-request-created.json"), []byte(`"full_name":"team_name/repo_name"`), []byte(`"full_name":""`), 1)
	status, resp = deliver(t, h, "pullrequest:created", sign(body, secret), body)
	assert.Equal(t, http.StatusAccepted, status, "%+v", resp)
	assert.Equal(t, "pull request #1 comes from a fork that was deleted: there is nothing to build", resp.Ignored)
	assert.Empty(t, starter.Calls())

	// A fork's name that is no plain owner/name is refused.
	h, starter = handler(t)
	body = bytes.Replace(corpus(t, "pull-request-created.json"), []byte(`"full_name":"team_name/repo_name"`), []byte(`"full_name":"../../etc"`), 1)
	status, _ = deliver(t, h, "pullrequest:created", sign(body, secret), body)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Empty(t, starter.Calls())
}

// TestPullRequestEditIsNoNewRun: Bitbucket sends pullrequest:updated for a
// new title too, with a new request ID; the run is keyed by the commit, so
// the edit finds it started.
func TestPullRequestEditIsNoNewRun(t *testing.T) {
	h, starter := handler(t)
	body := corpus(t, "pull-request-updated.json")
	for range 2 {
		status, resp := deliver(t, h, "pullrequest:updated", sign(body, secret), body)
		require.Equal(t, http.StatusOK, status, "%+v", resp)
	}
	calls := starter.Calls()
	require.Len(t, calls, 2)
	assert.Equal(t, calls[0].Event.DeliveryID, calls[1].Event.DeliveryID)
}

// TestApproveByComment: "/kiln approve <commit>" in a pull request comment
// by an account the repository trusts approves; the account is named by
// its account_id, since nicknames are not unique.
func TestApproveByComment(t *testing.T) {
	body := bytes.Replace(corpus(t, "pull-request-comment-created.json"), []byte(`"raw":"Comment text"`), []byte(`"raw":"/kiln approve d3022fc0ca3d"`), 1)
	require.Contains(t, string(body), "/kiln approve d3022fc0ca3d", "the corpus comment was rewritten")
	for _, tc := range []struct {
		name   string
		logins []string
		status int
	}{
		{"a trusted account", []string{"udfy9suggmzpswxc7n200y3c"}, http.StatusOK},
		{"the nickname is not enough", []string{"emmap1"}, http.StatusAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &config.Config{Repos: []config.Repo{{Name: "team_name/repo_name", CloneURL: "/srv/repo",
				Trust: &config.Trust{Logins: tc.logins}}}}
			a := &intaketest.FakeStarter{}
			h := intake.NewHandler(Host{}, cfg, map[string][]byte{"team_name/repo_name": []byte(secret)}, a, zerolog.Nop())
			status, resp := deliver(t, h, "pullrequest:comment_created", sign(body, secret), body)
			assert.Equal(t, tc.status, status, "%+v", resp)
			if tc.status == http.StatusOK {
				assert.Equal(t, []string{"team_name/repo_name#1@d3022fc0ca3d by udfy9suggmzpswxc7n200y3c"}, a.Approvals())
				assert.Equal(t, []string{"kiln/pr-1/d3022fc0ca3d"}, resp.Approved)
			} else {
				assert.Empty(t, a.Approvals())
			}
		})
	}
}
