package gitx

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/kiln-ci/kiln/test/githttp"
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
		"https://" + token + "@github.com/o/r.git":                "https://xxxxx@github.com/o/r.git",
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
	for url, shown := range map[string]string{
		"https://x-access-token:" + token + "@127.0.0.1:1/o/r.git": "x-access-token:xxxxx@127.0.0.1:1/o/r.git",
		"https://" + token + "@127.0.0.1:1/o/r.git":                "https://xxxxx@127.0.0.1:1/o/r.git",
	} {
		ctx := context.Background()
		var log bytes.Buffer
		errs := map[string]error{
			"Checkout": Checkout(ctx, Remote{URL: url}, strings.Repeat("a", 40), t.TempDir(), &log),
		}
		_, errs["ResolveRef"] = ResolveRef(ctx, Remote{URL: url}, "main")
		_, errs["DefaultBranch"] = DefaultBranch(ctx, Remote{URL: url})
		for name, err := range errs {
			if err == nil {
				t.Fatalf("%s: no error from an unreachable remote", name)
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("%s: error shows the token: %v", name, err)
			}
			if !strings.Contains(err.Error(), shown) {
				t.Errorf("%s: error does not name the redacted URL %s: %v", name, shown, err)
			}
		}
		if strings.Contains(log.String(), token) {
			t.Errorf("log shows the token:\n%s", log.String())
		}
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
		"Checkout": Checkout(ctx, Remote{URL: url}, strings.Repeat("a", 40), t.TempDir(), &log),
	}
	_, errs["ResolveRef"] = ResolveRef(ctx, Remote{URL: url}, "main")
	_, errs["DefaultBranch"] = DefaultBranch(ctx, Remote{URL: url})
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

// authServer serves a one-commit repository r.git behind basic auth
// (x-access-token and token), and returns its base URL and the commit.
func authServer(t *testing.T) (string, string) {
	t.Helper()
	root := t.TempDir()
	head, err := InitRepo(context.Background(), filepath.Join(root, "r.git"), fstest.MapFS{"README": {Data: []byte("hi\n")}}, "initial")
	if err != nil {
		t.Fatal(err)
	}
	return githttp.Serve(t, root, "x-access-token", token), head
}

// TestCheckoutLeavesNoCredentials: a checkout over HTTP with a token in the
// clone URL works, and the token is not left in .git/config for the build's
// commands to read.
func TestCheckoutLeavesNoCredentials(t *testing.T) {
	ctx := context.Background()
	base, head := authServer(t)
	withToken := strings.Replace(base, "http://", "http://x-access-token:"+token+"@", 1) + "/r.git"

	dir := t.TempDir()
	var log bytes.Buffer
	if err := Checkout(ctx, Remote{URL: withToken}, head, dir, &log); err != nil {
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
	if !strings.Contains(string(config), base+"/r.git") {
		t.Errorf(".git/config lost the remote:\n%s", config)
	}
	if strings.Contains(log.String(), token) {
		t.Errorf("log holds the token:\n%s", log.String())
	}
}

// TestRemoteAuth: a Remote's user and token log in to a private repository
// for all three operations, while git's argv, the checkout's config and
// every error stay free of the token (and its base64 form); without the
// token, or with a wrong one, the remote refuses.
func TestRemoteAuth(t *testing.T) {
	ctx := context.Background()
	base, head := authServer(t)
	r := Remote{URL: base + "/r.git", Username: "x-access-token", Password: token}

	dir := t.TempDir()
	var log bytes.Buffer
	if err := Checkout(ctx, r, head, dir, &log); err != nil {
		t.Fatalf("Checkout: %v\n%s", err, log.String())
	}
	config, _ := os.ReadFile(filepath.Join(dir, ".git", "config"))
	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + token))
	for _, secret := range []string{token, basic} {
		if strings.Contains(string(config), secret) || strings.Contains(log.String(), secret) {
			t.Errorf("config or log holds %q:\n%s\n%s", secret, config, log.String())
		}
	}
	if got, err := ResolveRef(ctx, r, "main"); err != nil || got != head {
		t.Errorf("ResolveRef = %q, %v; want %s", got, err, head)
	}
	if got, err := DefaultBranch(ctx, r); err != nil || got != "main" {
		t.Errorf("DefaultBranch = %q, %v", got, err)
	}
	if got := fmt.Sprintf("%v %+v %s", r, r, r); strings.Contains(got, token) {
		t.Errorf("a printed Remote shows the token: %s", got)
	}

	for name, bad := range map[string]Remote{
		"no token":    {URL: r.URL},
		"wrong token": {URL: r.URL, Username: "x-access-token", Password: "wrong-" + token},
	} {
		_, err := ResolveRef(ctx, bad, "main")
		if err == nil {
			t.Errorf("%s: the private repository answered", name)
			continue
		}
		if strings.Contains(err.Error(), token) {
			t.Errorf("%s: error holds the token: %v", name, err)
		}
	}
}

// TestRemoteAuthKeepsWorkerGitConfig: a worker's own GIT_CONFIG_* entries
// (a proxy or CA set that way) still apply next to the auth header.
func TestRemoteAuthKeepsWorkerGitConfig(t *testing.T) {
	t.Setenv("GIT_CONFIG_COUNT", "1")
	t.Setenv("GIT_CONFIG_KEY_0", "kiln.test")
	t.Setenv("GIT_CONFIG_VALUE_0", "kept")
	r := Remote{URL: "https://git.example.com/o/r.git", Username: "x-access-token", Password: token}
	out, err := r.gitFor("", nil).run(context.Background(), "config", "--list")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "kiln.test=kept") {
		t.Errorf("the worker's entry is gone:\n%s", out)
	}
	if !strings.Contains(out, "http.https://git.example.com/.extraheader=Authorization: Basic ") {
		t.Errorf("the auth header is missing:\n%s", out)
	}
}
