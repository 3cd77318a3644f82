package report

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// testToken authenticates every test request; errors must never show it.
const testToken = "ghp_kilnTestToken0123456789"

const sha = "0123456789abcdef0123456789abcdef01234567"

// newTestReporter returns a Reporter whose requests go to a fresh registry.
func newTestReporter(t *testing.T, apiURL string) (*Reporter, *registry) {
	t.Helper()
	reg := newRegistry(t)
	r, err := NewGitHub(GitHubOptions{APIURL: apiURL, Token: testToken, HTTPClient: reg.client()})
	require.NoError(t, err)
	return r, reg
}

func testRun() Run {
	return Run{
		Repo: "o/r", Commit: sha, Pipeline: "p", RunID: "kiln/p/d-1",
		URL: "http://temporal.local/namespaces/default/workflows/kiln%2Fp%2Fd-1", PR: 7,
	}
}

func statusJSON(state, desc string) map[string]any {
	return map[string]any{
		"state": state, "context": "kiln/p/build", "description": desc,
		"target_url": "http://temporal.local/namespaces/default/workflows/kiln%2Fp%2Fd-1",
	}
}

func TestSetStatusRunningThenSucceeded(t *testing.T) {
	r, reg := newTestReporter(t, "")
	path := "/repos/o/r/statuses/" + sha
	reg.register("running", withJSON(rest("POST", path, q("")), statusJSON("pending", "Running")),
		jsonResponse(http.StatusCreated, map[string]any{"id": 1}))
	reg.register("succeeded", withJSON(rest("POST", path, q("")), statusJSON("success", "Succeeded in 1m2s")),
		jsonResponse(http.StatusCreated, map[string]any{"id": 2}))

	ctx := context.Background()
	require.NoError(t, r.SetStatus(ctx, testRun(), Stage{Name: "build", State: "running"}))
	require.NoError(t, r.SetStatus(ctx, testRun(), Stage{Name: "build", State: "succeeded", Duration: 62400 * time.Millisecond}))

	require.Equal(t, []string{"POST " + path, "POST " + path}, reg.calls())
	for _, req := range reg.all() {
		require.Equal(t, "api.github.com", req.Host)
		// go-github v60's WithAuthToken sends a Bearer token.
		require.Equal(t, "Bearer "+testToken, req.Header.Get("Authorization"))
		require.Equal(t, "application/json", req.Header.Get("Content-Type"))
	}
	require.Equal(t, statusJSON("pending", "Running"), decode(t, reg.all()[0].Body))
}

func TestSetStatusMapsEveryState(t *testing.T) {
	cases := []struct{ state, want, desc string }{
		{"pending", "pending", "Waiting to start"},
		{"running", "pending", "Running"},
		{"succeeded", "success", "Succeeded"},
		{"failed", "failure", "exit status 2"},
		{"cancelled", "error", "Cancelled"},
	}
	for _, c := range cases {
		t.Run(c.state, func(t *testing.T) {
			r, reg := newTestReporter(t, "")
			reg.register(c.state, withJSON(rest("POST", "/repos/o/r/statuses/"+sha, nil), statusJSON(c.want, c.desc)),
				jsonResponse(http.StatusCreated, map[string]any{"id": 1}))
			stage := Stage{Name: "build", State: c.state}
			if c.state == "failed" {
				stage.Error = "exit status 2"
			}
			require.NoError(t, r.SetStatus(context.Background(), testRun(), stage))
		})
	}
}

func TestSetStatusFailureDescriptionIsOneShortLine(t *testing.T) {
	r, reg := newTestReporter(t, "")
	reg.register("failed", rest("POST", "/repos/o/r/statuses/"+sha, nil),
		jsonResponse(http.StatusCreated, map[string]any{"id": 1}))
	long := "step make test failed:\n\t" + strings.Repeat("assertion failed ", 20)
	require.NoError(t, r.SetStatus(context.Background(), testRun(), Stage{Name: "build", State: "failed", Error: long}))

	got := decode(t, reg.all()[0].Body)
	require.Equal(t, "failure", got["state"])
	desc := got["description"].(string)
	require.Equal(t, maxDescription, utf8.RuneCountInString(desc))
	require.True(t, strings.HasPrefix(desc, "step make test failed: assertion failed assertion"), desc)
	require.True(t, strings.HasSuffix(desc, "…"), desc)
	require.NotContains(t, desc, "\n")
}

func TestSetStatusGiteaBaseURL(t *testing.T) {
	r, reg := newTestReporter(t, "http://gitea.local/api/v1/")
	reg.register("gitea status", withJSON(rest("POST", "/api/v1/repos/o/r/statuses/"+sha, q("")), statusJSON("pending", "Running")),
		jsonResponse(http.StatusCreated, map[string]any{"id": 1}))
	require.NoError(t, r.SetStatus(context.Background(), testRun(), Stage{Name: "build", State: "running"}))
	require.Equal(t, "gitea.local", reg.all()[0].Host)
	require.Equal(t, "Bearer "+testToken, reg.all()[0].Header.Get("Authorization"))
}

func TestSetStatusRejectsMalformedRunWithoutRequest(t *testing.T) {
	r, reg := newTestReporter(t, "")
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"unknown state": func() error { return r.SetStatus(ctx, testRun(), Stage{Name: "build", State: "done"}) },
		"bad repo": func() error {
			run := testRun()
			run.Repo = "o"
			return r.SetStatus(ctx, run, Stage{Name: "build", State: "running"})
		},
		"no commit": func() error {
			run := testRun()
			run.Commit = ""
			return r.SetStatus(ctx, run, Stage{Name: "build", State: "running"})
		},
	} {
		err := call()
		require.Error(t, err, name)
		require.True(t, errors.Is(err, ErrInvalid), "%s: %v", name, err)
	}
	require.Empty(t, reg.calls())
}

func TestNewGitHubValidatesOptions(t *testing.T) {
	_, err := NewGitHub(GitHubOptions{})
	require.ErrorContains(t, err, "Token is empty")
	_, err = NewGitHub(GitHubOptions{Token: testToken, APIURL: "gitea.local/api/v1"})
	require.ErrorContains(t, err, "not an http(s) URL")

	// A missing trailing slash is added rather than left for go-github to reject.
	r, reg := newTestReporter(t, "https://ghe.example.com/api/v3")
	reg.register("ghe", rest("POST", "/api/v3/repos/o/r/statuses/"+sha, nil),
		jsonResponse(http.StatusCreated, map[string]any{"id": 1}))
	require.NoError(t, r.SetStatus(context.Background(), testRun(), Stage{Name: "build", State: "running"}))
}
