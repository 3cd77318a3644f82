// Package githttp serves git repositories over smart HTTP for tests: the
// real git http-backend, behind HTTP basic auth, the way a private
// repository on a git host is fetched.
package githttp

import (
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os/exec"
	"testing"
)

// Serve serves the repositories under root (root/<name>.git, bare or not)
// until the test ends, to requests logging in as user with password, and
// returns the base URL: a repository's URL is base + "/<name>.git".
func Serve(t testing.TB, root, user, password string) string {
	t.Helper()
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Fatal("githttp: git is not installed: ", err)
	}
	backend := &cgi.Handler{Path: gitPath, Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
