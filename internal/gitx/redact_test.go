package gitx

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// token is what a clone URL may carry; no error or log may show it.
const token = "ghs_SECRETt0ken"

func TestStripCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"https://x-access-token:" + token + "@github.com/o/r.git": "https://github.com/o/r.git",
		"https://" + token + "@github.com/o/r.git":                "https://github.com/o/r.git",
		"https://github.com/o/r.git":                              "https://github.com/o/r.git",
		"ssh://git@github.com/o/r.git":                            "ssh://git@github.com/o/r.git",
		"/srv/repos/widget":                                       "/srv/repos/widget",
	} {
		if got := StripCredentials(in); got != want {
			t.Errorf("StripCredentials(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://x-access-token:" + token + "@github.com/o/r.git": "https://x-access-token:xxxxx@github.com/o/r.git",
		"https://oauth2:a%2Fb%40c@gitlab.example.com/o/r.git":     "https://oauth2:xxxxx@gitlab.example.com/o/r.git",
		"https://u:p%zz@host/o/r.git":                             "https://u:xxxxx@host/o/r.git", // unparsable
		"https://github.com/o/r.git":                              "https://github.com/o/r.git",
		"ssh://git@github.com/o/r.git":                            "ssh://git@github.com/o/r.git",
		"git@github.com:o/r.git":                                  "git@github.com:o/r.git",
		"/srv/repos/widget":                                       "/srv/repos/widget",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestErrorsHoldNoPassword: every function that takes a URL keeps the
// password out of its error and log, also the wrapping around git's own
// message, against a remote that cannot be reached.
func TestErrorsHoldNoPassword(t *testing.T) {
	ctx := context.Background()
	url := "https://x-access-token:" + token + "@127.0.0.1:1/o/r.git"
	var log bytes.Buffer
	errs := map[string]error{
		"Checkout": Checkout(ctx, url, strings.Repeat("a", 40), t.TempDir(), &log),
	}
	_, errs["ResolveRef"] = ResolveRef(ctx, url, "main")
	_, errs["DefaultBranch"] = DefaultBranch(ctx, url)
	for name, err := range errs {
		if err == nil {
			t.Fatalf("%s: no error from an unreachable remote", name)
		}
		if strings.Contains(err.Error(), token) {
			t.Errorf("%s: error shows the token: %v", name, err)
		}
		if !strings.Contains(err.Error(), "x-access-token:xxxxx@127.0.0.1:1/o/r.git") {
			t.Errorf("%s: error does not name the redacted URL: %v", name, err)
		}
	}
	if strings.Contains(log.String(), token) {
		t.Errorf("log shows the token:\n%s", log.String())
	}
}

// fakeGit puts a git first on PATH that, like some versions of git, prints
// the remote's URL as given, password and all, and fails; init and remote
// succeed, so Checkout gets as far as fetching.
func fakeGit(t *testing.T) {
	bin := t.TempDir()
	script := `#!/bin/sh
case "$1" in
init) exit 0 ;;
remote) echo "$4" > .remote-url; exit 0 ;;
fetch) echo "fatal: unable to access '$(cat .remote-url)': The requested URL returned error: 403" >&2
	echo "remote: token $FAKE_DECODED is expired" >&2; exit 128 ;;
*) echo "fatal: repository '$*' not found ($FAKE_DECODED)" >&2; exit 128 ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "git"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// TestGitStderrIsScrubbed: when git itself prints the password, as written
// in the URL or percent-decoded, it is scrubbed from the error and the log.
func TestGitStderrIsScrubbed(t *testing.T) {
	fakeGit(t)
	const raw, decoded = "tok%2Fen-" + token, "tok/en-" + token
	t.Setenv("FAKE_DECODED", decoded)
	ctx := context.Background()
	url := "https://x-access-token:" + raw + "@git.example.com/o/r.git"
	var log bytes.Buffer
	errs := map[string]error{
		"Checkout": Checkout(ctx, url, strings.Repeat("a", 40), t.TempDir(), &log),
	}
	_, errs["ResolveRef"] = ResolveRef(ctx, url, "main")
	_, errs["DefaultBranch"] = DefaultBranch(ctx, url)
	for name, err := range errs {
		if err == nil || errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: want git's failure, got %v", name, err)
		}
		msg := err.Error()
		if strings.Contains(msg, token) {
			t.Errorf("%s: error shows the token: %v", name, err)
		}
		decodedScrubbed := "(xxxxx)" // the fake's ls-remote message
		if name == "Checkout" {
			decodedScrubbed = "token xxxxx is expired"
		}
		if !strings.Contains(msg, "x-access-token:xxxxx@git.example.com/o/r.git") || !strings.Contains(msg, decodedScrubbed) {
			t.Errorf("%s: git's message is not kept, scrubbed: %v", name, err)
		}
	}
	if got := log.String(); strings.Contains(got, token) || !strings.Contains(got, "token xxxxx is expired") {
		t.Errorf("log not scrubbed, or lost git's message:\n%s", got)
	}
}

// TestCheckoutLeavesNoCredentials: a checkout over HTTP with a token in the
// clone URL (served by git http-backend behind basic auth) works, and the
// token is not left in .git/config for the build's commands to read.
func TestCheckoutLeavesNoCredentials(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	head, err := InitRepo(ctx, filepath.Join(root, "r.git"), fstest.MapFS{"README": {Data: []byte("hi\n")}}, "initial")
	if err != nil {
		t.Fatal(err)
	}
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed")
	}
	backend := &cgi.Handler{Path: gitPath, Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "x-access-token" || p != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	defer srv.Close()
	withToken := strings.Replace(srv.URL, "http://", "http://x-access-token:"+token+"@", 1) + "/r.git"

	dir := t.TempDir()
	var log bytes.Buffer
	if err := Checkout(ctx, withToken, head, dir, &log); err != nil {
		t.Fatalf("Checkout: %v\n%s", err, log.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "README")); err != nil {
		t.Fatalf("the commit was not checked out: %v", err)
	}
	config, err := os.ReadFile(filepath.Join(dir, ".git", "config"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(config), token) {
		t.Errorf(".git/config holds the token:\n%s", config)
	}
	if !strings.Contains(string(config), srv.URL+"/r.git") {
		t.Errorf(".git/config lost the remote:\n%s", config)
	}
	if strings.Contains(log.String(), token) {
		t.Errorf("log holds the token:\n%s", log.String())
	}
}
