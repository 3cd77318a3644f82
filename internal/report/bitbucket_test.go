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

// fakeBitbucket answers build statuses and pull-request comments as
// Bitbucket Cloud does, paging comments one per page through "next".
type fakeBitbucket struct {
	mu       sync.Mutex
	url      string
	requests []string
	statuses map[string]map[string]string
	comments []map[string]any
}

func (f *fakeBitbucket) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.EscapedPath())
	if r.Header.Get("Authorization") != "Bearer bb-token" {
		http.Error(w, `{"type":"error"}`, http.StatusUnauthorized)
		return
	}
	var in map[string]any
	if b, _ := io.ReadAll(r.Body); len(b) > 0 {
		_ = json.Unmarshal(b, &in)
	}
	path := r.URL.EscapedPath()
	switch {
	case r.Method == http.MethodPost && strings.HasSuffix(path, "/statuses/build"):
		st := map[string]string{}
		for k, v := range in {
			st[k] = fmt.Sprint(v)
		}
		f.statuses[st["key"]] = st
		_, _ = w.Write([]byte(`{}`))
	case r.Method == http.MethodGet && strings.HasSuffix(path, "/comments"):
		i := 0
		fmt.Sscan(r.URL.Query().Get("page"), &i)
		page := map[string]any{"values": []any{}}
		if i < len(f.comments) {
			page["values"] = []any{f.comments[i]}
		}
		if i+1 < len(f.comments) {
			page["next"] = fmt.Sprintf("%s%s?page=%d", f.url, path, i+1)
		}
		_ = json.NewEncoder(w).Encode(page)
	case r.Method == http.MethodPost && strings.HasSuffix(path, "/comments"):
		c := map[string]any{"id": float64(500 + len(f.comments)), "content": in["content"]}
		f.comments = append(f.comments, c)
		_ = json.NewEncoder(w).Encode(c)
	case r.Method == http.MethodPut:
		for _, c := range f.comments {
			if strings.HasSuffix(path, fmt.Sprint(int64(c["id"].(float64)))) {
				c["content"] = in["content"]
			}
		}
		_, _ = w.Write([]byte(`{}`))
	default:
		http.NotFound(w, r)
	}
}

func newFakeBitbucket(t *testing.T) (*fakeBitbucket, *Bitbucket) {
	f := &fakeBitbucket{statuses: map[string]map[string]string{},
		comments: []map[string]any{{"id": float64(1), "content": map[string]any{"raw": "nice"}}}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	b, err := NewBitbucket(srv.URL+"/2.0/", "bb-token", nil)
	require.NoError(t, err)
	return f, b
}

// TestBitbucketReports: a build status per stage, keyed by its context,
// with Bitbucket's states and the run's link; one comment per run, created
// then edited in place across pages.
func TestBitbucketReports(t *testing.T) {
	f, b := newFakeBitbucket(t)
	run := Run{Repo: "team/repo", Commit: "0123456789abcdef0123456789abcdef01234567", Pipeline: "ci", RunID: "ci/refs/d",
		PR: 3, URL: "http://ui/run"}
	require.NoError(t, b.SetStatus(context.Background(), run, Stage{Name: "build", State: "waiting"}))
	require.NoError(t, b.SetStatus(context.Background(), run, Stage{Name: "test", State: "cancelled"}))
	assert.Equal(t, "INPROGRESS", f.statuses["kiln/ci/build"]["state"])
	assert.Equal(t, "STOPPED", f.statuses["kiln/ci/test"]["state"])
	assert.Equal(t, "http://ui/run", f.statuses["kiln/ci/build"]["url"])
	assert.Equal(t, "POST /2.0/repositories/team/repo/commit/0123456789abcdef0123456789abcdef01234567/statuses/build", f.requests[0])

	id, err := b.UpsertComment(context.Background(), run)
	require.NoError(t, err)
	run.Outcome = "failed"
	again, err := b.UpsertComment(context.Background(), run)
	require.NoError(t, err)
	assert.Equal(t, id, again)
	require.Len(t, f.comments, 2)
	raw := f.comments[1]["content"].(map[string]any)["raw"].(string)
	assert.True(t, strings.HasPrefix(raw, Marker(run.RunID)))
	assert.Contains(t, raw, "failed")

	run.URL = ""
	err = b.SetStatus(context.Background(), run, Stage{Name: "build", State: "running"})
	assert.True(t, errors.Is(err, ErrInvalid), "Bitbucket needs a link: %v", err)
}

// TestBitbucketBadToken is ErrUnauthorized, without the token.
func TestBitbucketBadToken(t *testing.T) {
	f, _ := newFakeBitbucket(t)
	b, err := NewBitbucket(f.url+"/2.0/", "bb-wrong-secret", nil)
	require.NoError(t, err)
	err = b.SetStatus(context.Background(), Run{Repo: "team/repo", Commit: "abc", Pipeline: "p", URL: "u"}, Stage{Name: "build", State: "running"})
	assert.True(t, errors.Is(err, ErrUnauthorized), "%v", err)
	assert.NotContains(t, err.Error(), "bb-wrong-secret")
}
