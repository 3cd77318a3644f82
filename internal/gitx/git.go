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
	"strings"
)

// ErrNotFound marks a ref or commit the remote does not have. It is permanent:
// retrying does not make a deleted branch come back.
var ErrNotFound = errors.New("not found")

var shaPattern = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// IsSHA reports whether s is a full hex object name (SHA-1 or SHA-256).
func IsSHA(s string) bool { return shaPattern.MatchString(s) }

// Checkout makes dir a clone of url at exactly commit, with the working tree
// checked out and detached. It fetches only that commit when the remote allows
// it, and falls back to fetching all branches, tags and pull refs.
func Checkout(ctx context.Context, url, commit, dir string, log io.Writer) error {
	if !IsSHA(commit) {
		return fmt.Errorf("checkout %q: %w: not a full commit SHA", commit, ErrNotFound)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	steps := [][]string{
		{"init", "--quiet"},
		{"remote", "add", "origin", url},
	}
	for _, args := range steps {
		if _, err := run(ctx, dir, log, args...); err != nil {
			return err
		}
	}
	if _, err := run(ctx, dir, log, "fetch", "--quiet", "--no-tags", "--depth=1", "origin", commit); err != nil {
		// Servers that refuse unadvertised wants get the full refs instead.
		_, err2 := run(ctx, dir, log, "fetch", "--quiet", "--no-tags", "origin",
			"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*", "+refs/pull/*:refs/remotes/pull/*")
		if err2 != nil {
			return fmt.Errorf("fetch %s from %s: %w", commit, url, err)
		}
	}
	if _, err := run(ctx, dir, log, "checkout", "--quiet", "--detach", commit); err != nil {
		return fmt.Errorf("commit %s in %s: %w (%v)", commit, url, ErrNotFound, err)
	}
	return nil
}

// ResolveRef returns the commit a ref points at on the remote. ref may be a
// full ref ("refs/heads/main") or a short branch or tag name.
func ResolveRef(ctx context.Context, url, ref string) (string, error) {
	if IsSHA(ref) {
		return ref, nil
	}
	out, err := run(ctx, "", nil, "ls-remote", "--", url, ref)
	if err != nil {
		return "", fmt.Errorf("resolve %s in %s: %w", ref, url, err)
	}
	// ls-remote matches by suffix; prefer an exact match, then heads, then tags.
	want := []string{ref, "refs/heads/" + ref, "refs/tags/" + ref + "^{}", "refs/tags/" + ref}
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
	return "", fmt.Errorf("ref %q in %s: %w", ref, url, ErrNotFound)
}

// run executes git with args in dir. Output goes to log (when given) and is
// returned; the error carries git's stderr so people can act on it.
func run(ctx context.Context, dir string, log io.Writer, args ...string) (string, error) {
	return runIO(ctx, dir, nil, log, args...)
}

func runEnv(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	return runIO(ctx, dir, env, nil, args...)
}

func runIO(ctx context.Context, dir string, env []string, log io.Writer, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=/bin/false", "LC_ALL=C")
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if log != nil {
		cmd.Stdout, cmd.Stderr = io.MultiWriter(&stdout, log), io.MultiWriter(&stderr, log)
	}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %v: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// DefaultBranch returns the name of the branch the remote's HEAD points at,
// e.g. "main".
func DefaultBranch(ctx context.Context, url string) (string, error) {
	out, err := run(ctx, "", nil, "ls-remote", "--symref", "--", url, "HEAD")
	if err != nil {
		return "", fmt.Errorf("default branch of %s: %w", url, err)
	}
	for _, line := range strings.Split(out, "\n") {
		if target, ok := strings.CutPrefix(line, "ref: "); ok {
			if ref, _, ok := strings.Cut(target, "\tHEAD"); ok {
				return strings.TrimPrefix(ref, "refs/heads/"), nil
			}
		}
	}
	return "", fmt.Errorf("default branch of %s: %w", url, ErrNotFound)
}
