package gitlab

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/starter/intake"
	"github.com/kiln-ci/kiln/starter/intake/intaketest"
)

const token = "gl-test-token"

// handler serves the GitLab intake for the corpus's projects, each with
// pipelines on every branch, tag and merge request.
func handler(t *testing.T) (*intake.Handler, *intaketest.FakeStarter) {
	t.Helper()
	cfg := &config.Config{}
	secrets := map[string][]byte{}
	for _, name := range []string{"mike/diaspora", "jsmith/example", "gitlabhq/gitlab-test", "gitlab-org/gitlab-test"} {
		cfg.Repos = append(cfg.Repos, config.Repo{Name: name, CloneURL: "/srv/" + name})
		secrets[name] = []byte(token)
		cfg.Pipelines = append(cfg.Pipelines, config.Pipeline{Name: name + "/all", Repo: name,
			Triggers: config.Triggers{Branch: []string{"**"}, Tag: []string{"**"}, Review: &config.ReviewTrigger{}}})
	}
	starter := &intaketest.FakeStarter{}
	return intake.NewHandler(Host{}, cfg, secrets, starter, zerolog.Nop()), starter
}

func deliver(t *testing.T, h http.Handler, eventType, tok string, body []byte) (int, intake.Response) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/hooks/gitlab", bytes.NewReader(body))
	r.Header.Set("X-Gitlab-Event", eventType)
	r.Header.Set("X-Gitlab-Token", tok)
	r.Header.Set("Idempotency-Key", "9a3b1c2d-0000-4000-8000-00000000000a")
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

// TestCorpus sends GitLab's own payloads: a push, an annotated-tag push, a
// merge request opened, and a comment, which starts nothing.
func TestCorpus(t *testing.T) {
	tests := []struct {
		file, eventType string
		want            *event.Event
		ignored         string
	}{
		{"push.json", "Push Hook", &event.Event{Kind: event.KindBranch, Host: event.HostGitLab, Repo: "mike/diaspora",
			Ref: "refs/heads/master", Branch: "master", Commit: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
			Before: "95790bf891e76fee5e1747ab589903a6a1f80f22", Sender: "jsmith", Email: "john@example.com",
			Message: "fixed readme\n", DeliveryID: "9a3b1c2d-0000-4000-8000-00000000000a"}, ""},
		{"tag_push.json", "Tag Push Hook", &event.Event{Kind: event.KindTag, Host: event.HostGitLab, Repo: "jsmith/example",
			Ref: "refs/tags/v1.0.0", Tag: "v1.0.0", Commit: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7", Sender: "jsmith",
			Message:    "Merge branch 'some-feature' into 'master'\n\nRelease v1.0.0\n\nSee merge request jsmith/example!1",
			DeliveryID: "9a3b1c2d-0000-4000-8000-00000000000a"}, ""},
		{"merge_request.json", "Merge Request Hook", &event.Event{Kind: event.KindReview, Host: event.HostGitLab,
			Repo: "gitlabhq/gitlab-test", Ref: "refs/merge-requests/1/head", Branch: "ms-viewport",
			Commit: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", Sender: "user1", Message: "MS-Viewport",
			DeliveryID: "9a3b1c2d-0000-4000-8000-00000000000a",
			PullRequest: &event.PullRequest{Number: 1, Title: "MS-Viewport", SourceBranch: "ms-viewport", TargetBranch: "master",
				SourceCommit:   "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
				SourceCloneURL: "http://example.com/awesome_space/awesome_project.git"}}, ""},
		{"note_merge_request.json", "Note Hook", nil, "the comment is no kiln command"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			h, starter := handler(t)
			status, resp := deliver(t, h, tt.eventType, token, corpus(t, tt.file))
			if tt.want == nil {
				assert.Equal(t, http.StatusAccepted, status)
				assert.Equal(t, tt.ignored, resp.Ignored)
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

// TestRefusals: a wrong or missing token is 401, an unknown project 403,
// missing headers 400, and other methods 405, as on /hooks/github.
func TestRefusals(t *testing.T) {
	h, starter := handler(t)
	body := corpus(t, "push.json")
	status, resp := deliver(t, h, "Push Hook", "wrong", body)
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Equal(t, "X-Gitlab-Token does not match the repository's webhook_secret", resp.Error)
	status, _ = deliver(t, h, "Push Hook", "", body)
	assert.Equal(t, http.StatusUnauthorized, status)
	status, resp = deliver(t, h, "Push Hook", token, bytes.Replace(body, []byte(`"mike/diaspora"`), []byte(`"evil/repo"`), 1))
	assert.Equal(t, http.StatusForbidden, status)
	assert.Contains(t, resp.Error, `unknown repo "evil/repo"`)
	status, resp = deliver(t, h, "", token, body)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "missing X-Gitlab-Event header", resp.Error)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/hooks/gitlab", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	assert.Empty(t, starter.Calls())
}

// TestMergeRequestActions: opened and reopened merge requests and updates
// with new commits start a review; updates without commits and other
// actions do not; one from another project is a fork, and untrusted.
func TestMergeRequestActions(t *testing.T) {
	mr := func(action, oldrev string, source int) []byte {
		return []byte(`{"object_kind":"merge_request","user":{"username":"dev"},"project":{"path_with_namespace":"mike/diaspora"},` +
			`"object_attributes":{"iid":4,"action":"` + action + `","oldrev":"` + oldrev + `","title":"t","source_branch":"f","target_branch":"main",` +
			`"source_project_id":` + strconv.Itoa(source) + `,"target_project_id":1,"last_commit":{"id":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7"}}}`)
	}
	for _, tt := range []struct {
		name   string
		body   []byte
		starts bool
		fork   bool
	}{
		{"open", mr("open", "", 1), true, false},
		{"reopen", mr("reopen", "", 1), true, false},
		{"update with commits", mr("update", "95790bf891e76fee5e1747ab589903a6a1f80f22", 1), true, false},
		{"update without commits", mr("update", "", 1), false, false},
		{"merge", mr("merge", "", 1), false, false},
		{"from a fork", mr("open", "", 2), true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, starter := handler(t)
			status, resp := deliver(t, h, "Merge Request Hook", token, tt.body)
			if !tt.starts {
				assert.Equal(t, http.StatusAccepted, status, "%+v", resp)
				assert.Empty(t, starter.Calls())
				return
			}
			require.Equal(t, http.StatusOK, status, "%+v", resp)
			ev := starter.Calls()[0].Event
			assert.Equal(t, tt.fork, ev.PullRequest.Fork)
			assert.Equal(t, "refs/merge-requests/4/head", ev.Ref)
			r := config.Repo{Name: "mike/diaspora"}
			assert.Equal(t, tt.fork, r.Untrusted(ev) != "", "a fork's merge request waits for approval")
		})
	}
}

// TestApproveByNote: a "/kiln approve <commit>" note on a merge request by
// a login the repository trusts approves it; GitLab sends no association,
// so anyone else's is ignored.
func TestApproveByNote(t *testing.T) {
	note := bytes.Replace(corpus(t, "note_merge_request.json"), []byte(`"note": "This MR needs work."`), []byte(`"note": "/kiln approve 562e173be03b"`), 1)
	require.Contains(t, string(note), "/kiln approve 562e173be03b", "the corpus note was rewritten")
	for _, tc := range []struct {
		name   string
		logins []string
		status int
	}{
		{"a trusted login", []string{"root"}, http.StatusOK},
		{"nobody listed", nil, http.StatusAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &config.Config{Repos: []config.Repo{{Name: "gitlab-org/gitlab-test", CloneURL: "/srv/x",
				Trust: &config.Trust{Logins: tc.logins}}}}
			a := &intaketest.FakeStarter{}
			h := intake.NewHandler(Host{}, cfg, map[string][]byte{"gitlab-org/gitlab-test": []byte(token)}, a, zerolog.Nop())
			status, resp := deliver(t, h, "Note Hook", token, note)
			assert.Equal(t, tc.status, status, "%+v", resp)
			if tc.status == http.StatusOK {
				assert.Equal(t, []string{"gitlab-org/gitlab-test#1@562e173be03b by root"}, a.Approvals())
				assert.Equal(t, []string{"kiln/pr-1/562e173be03b"}, resp.Approved)
			} else {
				assert.Empty(t, a.Approvals())
			}
		})
	}
}
