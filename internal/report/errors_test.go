package report

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gh "github.com/google/go-github/v60/github"
	"github.com/stretchr/testify/require"
)

func TestErrorsAreClassified(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		body    map[string]any
		headers []string
		want    error // nil: retryable, none of the sentinels
	}{
		// The host echoes the token back: the error must still not show it.
		{"401", 401, map[string]any{"message": "Bad credentials: " + testToken}, nil, ErrUnauthorized},
		{"403", 403, map[string]any{"message": "Resource not accessible by integration"}, nil, ErrUnauthorized},
		{"404", 404, map[string]any{"message": "Not Found"}, nil, ErrNotFound},
		{"422", 422, map[string]any{"message": "No commit found for SHA"}, nil, ErrInvalid},
		{"500", 500, map[string]any{"message": "boom"}, nil, nil},
		{"rate limit", 403, map[string]any{"message": "API rate limit exceeded"},
			[]string{"X-RateLimit-Remaining", "0", "X-RateLimit-Limit", "5000", "X-RateLimit-Reset", "4102444800"}, nil},
		{"secondary rate limit", 403, map[string]any{"message": "slow down",
			"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, reg := newTestReporter(t, "")
			reg.register(c.name, rest("POST", "/repos/o/r/statuses/"+sha, nil), jsonResponse(c.status, c.body, c.headers...))
			err := r.SetStatus(context.Background(), testRun(), Stage{Name: "build", State: "running"})
			require.Error(t, err)
			require.NotContains(t, err.Error(), testToken)
			require.NotContains(t, fmt.Sprintf("%+v", err), testToken)
			require.Contains(t, err.Error(), "set status kiln/p/build on o/r@"+sha)
			for _, sentinel := range []error{ErrUnauthorized, ErrNotFound, ErrInvalid} {
				require.Equal(t, sentinel == c.want, errors.Is(err, sentinel), "%v", err)
			}
			// go-github's typed error stays reachable for the caller.
			var resp *gh.ErrorResponse
			var rl *gh.RateLimitError
			var abuse *gh.AbuseRateLimitError
			require.True(t, errors.As(err, &resp) || errors.As(err, &rl) || errors.As(err, &abuse), "%T", err)
		})
	}
}

func TestUnauthorizedErrorRedactsToken(t *testing.T) {
	r, reg := newTestReporter(t, "")
	reg.register("401", rest("GET", commentsPath, nil),
		jsonResponse(http.StatusUnauthorized, map[string]any{"message": "token " + testToken + " is expired"}))
	_, err := r.UpsertComment(context.Background(), runningRun())
	require.ErrorIs(t, err, ErrUnauthorized)
	require.NotContains(t, err.Error(), testToken)
	require.Contains(t, err.Error(), "[REDACTED]")
	require.Contains(t, err.Error(), "list comments on o/r#7")
}

func TestNotFoundWhenPullRequestUnknown(t *testing.T) {
	r, reg := newTestReporter(t, "")
	reg.register("404", rest("GET", commentsPath, nil), jsonResponse(http.StatusNotFound, map[string]any{"message": "Not Found"}))
	_, err := r.UpsertComment(context.Background(), runningRun())
	require.ErrorIs(t, err, ErrNotFound)
}

func TestLoadToken(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(file, []byte("  from-file\n"), 0o600))
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte(" \n"), 0o600))

	t.Setenv("KILN_TEST_TOKEN", " from-env\n")
	t.Setenv("KILN_TEST_EMPTY", "")

	got, err := LoadToken("KILN_TEST_TOKEN", file)
	require.NoError(t, err)
	require.Equal(t, "from-env", got, "the environment wins over the file")

	got, err = LoadToken("KILN_TEST_EMPTY", file)
	require.NoError(t, err)
	require.Equal(t, "from-file", got)

	_, err = LoadToken("KILN_TEST_EMPTY", "")
	require.ErrorContains(t, err, "token environment variable KILN_TEST_EMPTY is unset or empty and no token file is configured")

	_, err = LoadToken("KILN_TEST_EMPTY", filepath.Join(dir, "missing"))
	require.ErrorContains(t, err, "KILN_TEST_EMPTY is unset or empty")
	require.ErrorContains(t, err, filepath.Join(dir, "missing"))
	require.ErrorIs(t, err, os.ErrNotExist)

	_, err = LoadToken("", empty)
	require.ErrorContains(t, err, "token file "+empty+" is empty")

	_, err = LoadToken("", "")
	require.ErrorContains(t, err, "no token source")
}

// fakeT records what the registry reports instead of failing this test.
type fakeT struct {
	errors   []string
	cleanups []func()
}

func (f *fakeT) Errorf(format string, args ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}
func (f *fakeT) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

func TestRegistryFailsOnUnmatchedRequestAndUnusedStub(t *testing.T) {
	ft := &fakeT{}
	reg := newRegistry(ft)
	reg.register("never called", rest("GET", "/unused", nil), jsonResponse(http.StatusOK, map[string]any{}))
	r, err := NewGitHub(GitHubOptions{Token: testToken, HTTPClient: reg.client()})
	require.NoError(t, err)

	require.Error(t, r.SetStatus(context.Background(), testRun(), Stage{Name: "build", State: "running"}))
	for _, fn := range ft.cleanups {
		fn()
	}
	require.Len(t, ft.errors, 2, strings.Join(ft.errors, "\n"))
	require.Contains(t, ft.errors[0], "no stub for POST https://api.github.com/repos/o/r/statuses/"+sha)
	require.Contains(t, ft.errors[1], "stub never used: never called")
}
