package activities

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
)

// gitHubLimit answers comments as GitHub does: 422 for a body over 65,536
// characters. It keeps the bodies it accepted.
type gitHubLimit struct {
	mu       sync.Mutex
	comments []string
}

func (g *gitHubLimit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/repos/o/r/issues/7/comments":
		_, _ = io.WriteString(w, "[]")
	case r.Method == http.MethodPost && r.URL.Path == "/repos/o/r/issues/7/comments":
		var in struct{ Body string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		if utf8.RuneCountInString(in.Body) > 65536 {
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = io.WriteString(w, `{"message":"Validation Failed","errors":[{"field":"body","code":"custom","message":"body is too long (maximum is 65536 characters)"}]}`)
			return
		}
		g.comments = append(g.comments, in.Body)
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":1}`)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/repos/o/r/statuses/"):
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{}`)
	default:
		http.NotFound(w, r)
	}
}

// TestReportRunFailureWithAHugeError: a stage that failed with ~80 KB of
// output, once shown in full twice and refused with a 422 that left the PR
// saying "running", is reported, and its output cannot mention anyone.
func TestReportRunFailureWithAHugeError(t *testing.T) {
	gh := &gitHubLimit{}
	srv := httptest.NewServer(gh)
	t.Cleanup(srv.Close)
	t.Setenv("KILN_TEST_REPORT_TOKEN", "t0ken")

	var huge strings.Builder
	huge.WriteString("packer build: exit status 1, cc @org/team\n")
	for huge.Len() < 80<<10 {
		huge.WriteString("==> amazon-ebs: step output\n")
	}
	huge.WriteString("Build 'amazon-ebs' errored\n")

	a := &Activities{DataDir: t.TempDir(), Log: zerolog.Nop()}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	_, err := env.ExecuteActivity(a.ReportRun, ReportInput{
		RunID: "kiln/p/pr-7-1", Pipeline: "p", Repo: "o/r", Commit: "abc",
		Event:   event.Event{Kind: event.KindReview, PullRequest: &event.PullRequest{Number: 7}},
		Report:  &config.Report{APIURL: srv.URL + "/", Token: config.SecretRef{Env: "KILN_TEST_REPORT_TOKEN"}},
		Stages:  []ReportStage{{Name: "bake", State: "failed", Error: huge.String()}},
		Changed: []string{"bake"},
		Outcome: "failed",
	})
	require.NoError(t, err)
	require.Len(t, gh.comments, 1)
	body := gh.comments[0]
	assert.Contains(t, body, "\n**bake failed:** ` packer build: exit status 1, cc @org/team … `\n",
		"the first line only, in a code span, where a mention does nothing")
	assert.Contains(t, body, "\nBuild 'amazon-ebs' errored\n```", "the end of the output is kept")
}

// TestReportRunToGitLabAndBitbucket: a run of a GitLab or Bitbucket
// event reports to that host's API, with its authentication: a status for
// the changed stage and the review's comment (a GitLab note).
func TestReportRunToGitLabAndBitbucket(t *testing.T) {
	for _, tc := range []struct {
		host, api, repo string
		want            []string
	}{
		{event.HostGitLab, "/api/v4/", "group/proj", []string{
			"POST /api/v4/projects/group%2Fproj/statuses/0123456789abcdef0123456789abcdef01234567 PRIVATE-TOKEN=tok-1",
			"GET /api/v4/projects/group%2Fproj/merge_requests/4/notes PRIVATE-TOKEN=tok-1",
			"POST /api/v4/projects/group%2Fproj/merge_requests/4/notes PRIVATE-TOKEN=tok-1",
		}},
		{event.HostBitbucket, "/2.0/", "team/repo", []string{
			"POST /2.0/repositories/team/repo/commit/0123456789abcdef0123456789abcdef01234567/statuses/build Authorization=Bearer tok-1",
			"GET /2.0/repositories/team/repo/pullrequests/4/comments Authorization=Bearer tok-1",
			"POST /2.0/repositories/team/repo/pullrequests/4/comments Authorization=Bearer tok-1",
		}},
	} {
		t.Run(tc.host, func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				auth := "PRIVATE-TOKEN=" + r.Header.Get("PRIVATE-TOKEN")
				if tc.host == event.HostBitbucket {
					auth = "Authorization=" + r.Header.Get("Authorization")
				}
				got = append(got, r.Method+" "+r.URL.EscapedPath()+" "+auth)
				if r.Method == http.MethodGet {
					_, _ = io.WriteString(w, map[bool]string{true: "[]", false: `{"values":[]}`}[tc.host == event.HostGitLab])
					return
				}
				_, _ = io.WriteString(w, `{"id":9}`)
			}))
			t.Cleanup(srv.Close)
			t.Setenv("KILN_TEST_HOST_TOKEN", "tok-1")
			a := &Activities{DataDir: t.TempDir(), Log: zerolog.Nop(), UIURL: "http://ui"}
			var s testsuite.WorkflowTestSuite
			env := s.NewTestActivityEnvironment()
			env.RegisterActivity(a)
			_, err := env.ExecuteActivity(a.ReportRun, ReportInput{
				RunID: "p/pr-4/d", Pipeline: "p", Repo: tc.repo, Commit: "0123456789abcdef0123456789abcdef01234567",
				Event:   event.Event{Kind: event.KindReview, Host: tc.host, PullRequest: &event.PullRequest{Number: 4}},
				Report:  &config.Report{APIURL: srv.URL + tc.api, Token: config.SecretRef{Env: "KILN_TEST_HOST_TOKEN"}},
				Stages:  []ReportStage{{Name: "build", State: "running"}},
				Changed: []string{"build"},
			})
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
