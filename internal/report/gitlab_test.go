package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeGitLab answers the two APIs kiln reports through, as GitLab does:
// commit statuses refuse a transition to the state they have, and notes
// page through X-Next-Page.
type fakeGitLab struct {
	mu       sync.Mutex
	requests []string // "METHOD path" with the raw, escaped path
	statuses map[string]string
	notes    []map[string]any
	token    string
}

func (f *fakeGitLab) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.EscapedPath())
	if r.Header.Get("PRIVATE-TOKEN") != f.token {
		http.Error(w, `{"message":"401 Unauthorized"}`, http.StatusUnauthorized)
		return
	}
	var in map[string]any
	if b, _ := io.ReadAll(r.Body); len(b) > 0 {
		_ = json.Unmarshal(b, &in)
	}
	path := r.URL.EscapedPath()
	switch {
	case r.Method == http.MethodPost && strings.Contains(path, "/statuses/"):
		key := path + " " + in["name"].(string)
		if f.statuses[key] == in["state"] {
			http.Error(w, fmt.Sprintf(`{"message":"Cannot transition status via :%s from :%s"}`, in["state"], in["state"]), http.StatusBadRequest)
			return
		}
		f.statuses[key] = in["state"].(string)
		_, _ = w.Write([]byte(`{"id":1}`))
	case r.Method == http.MethodGet && strings.HasSuffix(path, "/notes"):
		page := r.URL.Query().Get("page")
		// One note per page, to make kiln follow X-Next-Page.
		i := 0
		fmt.Sscan(page, &i)
		i--
		if i+1 < len(f.notes) {
			w.Header().Set("X-Next-Page", fmt.Sprint(i+2))
		}
		if i >= 0 && i < len(f.notes) {
			_ = json.NewEncoder(w).Encode([]map[string]any{f.notes[i]})
			return
		}
		_, _ = w.Write([]byte(`[]`))
	case r.Method == http.MethodPost && strings.HasSuffix(path, "/notes"):
		n := map[string]any{"id": float64(100 + len(f.notes)), "body": in["body"]}
		f.notes = append(f.notes, n)
		_ = json.NewEncoder(w).Encode(n)
	case r.Method == http.MethodPut && strings.Contains(path, "/notes/"):
		for _, n := range f.notes {
			if strings.HasSuffix(path, fmt.Sprint(int64(n["id"].(float64)))) {
				n["body"] = in["body"]
			}
		}
		_, _ = w.Write([]byte(`{}`))
	default:
		http.NotFound(w, r)
	}
}

func gitlabRun() Run {
	return Run{Repo: "group/sub/proj", Commit: "0123456789abcdef0123456789abcdef01234567", Pipeline: "ci",
		RunID: "ci/pr-7/d1", PR: 7, URL: "http://ui/run", Stages: []Stage{{Name: "build", State: "running"}}}
}

// TestGitLabStatuses: each state maps to GitLab's, the project is named by
// its URL-encoded full path, and a retried status (GitLab refuses the
// transition to the state it has) is no error.
func TestGitLabStatuses(t *testing.T) {
	f := &fakeGitLab{statuses: map[string]string{}, token: "glpat-secret"}
	srv := httptest.NewServer(f)
	defer srv.Close()
	g, err := NewGitLab(srv.URL+"/api/v4", "glpat-secret", nil)
	require.NoError(t, err)
	run := gitlabRun()
	for _, st := range []string{"waiting", "running", "running", "succeeded"} {
		require.NoError(t, g.SetStatus(context.Background(), run, Stage{Name: "build", State: st}), st)
	}
	assert.Equal(t, "POST /api/v4/projects/group%2Fsub%2Fproj/statuses/0123456789abcdef0123456789abcdef01234567", f.requests[0])
	assert.Equal(t, map[string]string{
		"/api/v4/projects/group%2Fsub%2Fproj/statuses/0123456789abcdef0123456789abcdef01234567 kiln/ci/build": "success",
	}, f.statuses)
	err = g.SetStatus(context.Background(), run, Stage{Name: "build", State: "exploded"})
	assert.True(t, errors.Is(err, ErrInvalid), "%v", err)
}

// TestGitLabNoteUpsert: the first report creates the run's note, later
// ones edit it in place, found through the pages of notes.
func TestGitLabNoteUpsert(t *testing.T) {
	f := &fakeGitLab{statuses: map[string]string{}, token: "glpat-secret",
		notes: []map[string]any{{"id": float64(1), "body": "LGTM"}, {"id": float64(2), "body": "another bot"}}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	g, err := NewGitLab(srv.URL+"/api/v4/", "glpat-secret", nil)
	require.NoError(t, err)
	run := gitlabRun()
	id, err := g.UpsertComment(context.Background(), run)
	require.NoError(t, err)
	run.Outcome = "succeeded"
	again, err := g.UpsertComment(context.Background(), run)
	require.NoError(t, err)
	assert.Equal(t, id, again, "the same note, edited")
	require.Len(t, f.notes, 3)
	assert.True(t, strings.HasPrefix(f.notes[2]["body"].(string), Marker(run.RunID)))
	assert.Contains(t, f.notes[2]["body"], "succeeded")
	assert.Contains(t, f.requests, "GET /api/v4/projects/group%2Fsub%2Fproj/merge_requests/7/notes")
}

// TestGitLabRefusalsAreClassified: a bad token is ErrUnauthorized and the
// error does not carry it.
func TestGitLabRefusalsAreClassified(t *testing.T) {
	f := &fakeGitLab{statuses: map[string]string{}, token: "right"}
	srv := httptest.NewServer(f)
	defer srv.Close()
	g, err := NewGitLab(srv.URL+"/api/v4/", "glpat-wrong-token", nil)
	require.NoError(t, err)
	err = g.SetStatus(context.Background(), gitlabRun(), Stage{Name: "build", State: "running"})
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrUnauthorized), "%v", err)
	assert.NotContains(t, err.Error(), "glpat-wrong-token")
}
