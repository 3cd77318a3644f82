// Package gitx checks out commits and resolves refs with the git command line.
// Arguments are passed to git as argv, never through a shell, and ref names are
// separated from options with "--" where git allows it, so a branch called
// "--upload-pack=touch pwned" is a name and nothing else.
package gitx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ErrNotFound marks a ref or commit the remote does not have. It is permanent:
// retrying does not make a deleted branch come back.
var ErrNotFound = errors.New("not found")

var shaPattern = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// IsSHA reports whether s is a full hex object name (SHA-1 or SHA-256).
func IsSHA(s string) bool { return shaPattern.MatchString(s) }

// shortSHAPattern matches an abbreviated commit SHA, as Bitbucket sends.
var shortSHAPattern = regexp.MustCompile(`^[0-9a-fA-F]{7,39}$`)

// IsShortSHA reports whether s is an abbreviated commit SHA (7 to 39 hex
// digits).
func IsShortSHA(s string) bool { return shortSHAPattern.MatchString(s) }

// Checkout makes dir a clone of r at exactly commit, with the working tree
// checked out and detached. It fetches only that commit when the remote allows
// it, and falls back to fetching all branches, tags and pull refs. Neither its
// error nor what it writes to log holds r's password, and the checkout's
// .git/config names the URL without credentials.
func Checkout(ctx context.Context, r Remote, commit, dir string, log io.Writer) error {
	url := r.URL
	if !IsSHA(commit) {
		return fmt.Errorf("checkout %q: %w: not a full commit SHA", commit, ErrNotFound)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	g := r.gitFor(dir, log)
	steps := [][]string{
		{"init", "--quiet"},
		{"remote", "add", "origin", url},
	}
	for _, args := range steps {
		if _, err := g.run(ctx, args...); err != nil {
			return err
		}
	}
	if _, err := g.run(ctx, "fetch", "--quiet", "--no-tags", "--depth=1", "origin", commit); err != nil {
		// Servers that refuse unadvertised wants get the full refs instead.
		_, err2 := g.run(ctx, "fetch", "--quiet", "--no-tags", "origin",
			"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*", "+refs/pull/*:refs/remotes/pull/*")
		if err2 != nil {
			return fmt.Errorf("fetch %s from %s: %w", commit, Redact(url), err)
		}
	}
	if _, err := g.run(ctx, "checkout", "--quiet", "--detach", commit); err != nil {
		return fmt.Errorf("commit %s in %s: %w (%v)", commit, Redact(url), ErrNotFound, err)
	}
	// The build's commands can read .git/config: the clone URL's
	// credentials do not stay in it.
	if bare := StripCredentials(url); bare != url {
		if _, err := g.run(ctx, "remote", "set-url", "origin", bare); err != nil {
			return err
		}
	}
	return nil
}

// ResolveRef returns the commit a ref points at on the remote. ref may be a
// full ref ("refs/heads/main") or a short branch or tag name.
func ResolveRef(ctx context.Context, r Remote, ref string) (string, error) {
	url := r.URL
	if IsSHA(ref) {
		return ref, nil
	}
	// A tag's peeled line (ref^{}) matches only a pattern that names it.
	out, err := r.gitFor("", nil).run(ctx, "ls-remote", "--", url, ref, ref+"^{}")
	if err != nil {
		return "", fmt.Errorf("resolve %s in %s: %w", ref, Redact(url), err)
	}
	// ls-remote matches by suffix; prefer an exact match, then heads, then
	// tags, and of a tag the commit it points at (^{}), not the tag object.
	want := []string{ref + "^{}", ref, "refs/heads/" + ref, "refs/tags/" + ref + "^{}", "refs/tags/" + ref}
	found := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if sha, name, ok := strings.Cut(line, "\t"); ok {
			found[name] = sha
		}
	}
	for _, w := range want {
		if sha, ok := found[w]; ok {
			return sha, nil
		}
	}
	return "", fmt.Errorf("ref %q in %s: %w", ref, Redact(url), ErrNotFound)
}

// PeelTag returns the commit that tag points at when the remote's tag is the
// object sha: a host's push of an annotated tag names the tag object, and
// the run must build, report on and tag the commit. A lightweight tag, or a
// tag the remote has since moved or deleted, gives back sha.
func PeelTag(ctx context.Context, r Remote, tag, sha string) (string, error) {
	ref := "refs/tags/" + tag
	out, err := r.gitFor("", nil).run(ctx, "ls-remote", "--tags", "--", r.URL, ref, ref+"^{}")
	if err != nil {
		return "", fmt.Errorf("peel tag %s in %s: %w", tag, Redact(r.URL), err)
	}
	found := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if got, name, ok := strings.Cut(line, "\t"); ok {
			found[name] = got
		}
	}
	if found[ref] == sha && IsSHA(found[ref+"^{}"]) {
		return found[ref+"^{}"], nil
	}
	return sha, nil
}

// git is how to run git: in dir, with env added to the environment, its
// output copied to log, and secrets scrubbed from both its error and log.
type git struct {
	dir     string
	env     []string
	log     io.Writer
	secrets []string
}

// run executes git with args in dir. Output goes to log (when given) and is
// returned; the error carries git's stderr so people can act on it.
func run(ctx context.Context, dir string, log io.Writer, args ...string) (string, error) {
	return git{dir: dir, log: log}.run(ctx, args...)
}

func runEnv(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	return git{dir: dir, env: env}.run(ctx, args...)
}

// run executes git with args. With secrets, its output reaches log only
// once git exits, scrubbed: a secret split across two writes would
// otherwise slip through.
func (g git) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = g.dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=/bin/false", "LC_ALL=C")
	cmd.Env = append(cmd.Env, g.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if g.log != nil && len(g.secrets) == 0 {
		cmd.Stdout, cmd.Stderr = io.MultiWriter(&stdout, g.log), io.MultiWriter(&stderr, g.log)
	}
	err := cmd.Run()
	if g.log != nil && len(g.secrets) > 0 {
		_, _ = io.WriteString(g.log, scrub(stdout.String()+stderr.String(), g.secrets))
	}
	if err != nil {
		return "", fmt.Errorf("git %s: %v: %s", args[0], err, scrub(strings.TrimSpace(stderr.String()), g.secrets))
	}
	return stdout.String(), nil
}

// DefaultBranch returns the name of the branch the remote's HEAD points at,
// e.g. "main".
func DefaultBranch(ctx context.Context, r Remote) (string, error) {
	url := r.URL
	out, err := r.gitFor("", nil).run(ctx, "ls-remote", "--symref", "--", url, "HEAD")
	if err != nil {
		return "", fmt.Errorf("default branch of %s: %w", Redact(url), err)
	}
	for _, line := range strings.Split(out, "\n") {
		if target, ok := strings.CutPrefix(line, "ref: "); ok {
			if ref, _, ok := strings.Cut(target, "\tHEAD"); ok {
				return strings.TrimPrefix(ref, "refs/heads/"), nil
			}
		}
	}
	return "", fmt.Errorf("default branch of %s: %w", Redact(url), ErrNotFound)
}

// CommitTime is when HEAD of the checkout in dir was committed: a date
// that means something for what was built from it, and that every rebuild
// of the commit shares (SOURCE_DATE_EPOCH).
func CommitTime(ctx context.Context, dir string) (time.Time, error) {
	out, err := run(ctx, dir, nil, "log", "-1", "--format=%ct", "HEAD")
	if err != nil {
		return time.Time{}, err
	}
	secs, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("git log: commit time %q: %w", out, err)
	}
	return time.Unix(secs, 0).UTC(), nil
}
