package gitx

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Author is who commits in repositories kiln makes itself (the example
// repository, test repositories).
var authorEnv = []string{
	"GIT_AUTHOR_NAME=kiln", "GIT_AUTHOR_EMAIL=kiln@localhost",
	"GIT_COMMITTER_NAME=kiln", "GIT_COMMITTER_EMAIL=kiln@localhost",
}

// InitRepo makes dir a new git repository on branch main holding the files of
// files, committed once, and returns the commit's SHA.
func InitRepo(ctx context.Context, dir string, files fs.FS, message string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if _, err := run(ctx, dir, nil, "init", "--quiet", "--initial-branch=main"); err != nil {
		return "", err
	}
	err := fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(files, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(path, ".sh") {
			mode = 0o755
		}
		return os.WriteFile(dst, data, mode)
	})
	if err != nil {
		return "", fmt.Errorf("write repository files: %w", err)
	}
	return Commit(ctx, dir, message)
}

// Commit stages everything in the work tree of dir and commits it, returning
// the new commit's SHA.
func Commit(ctx context.Context, dir, message string) (string, error) {
	if _, err := run(ctx, dir, nil, "add", "--all"); err != nil {
		return "", err
	}
	if _, err := runEnv(ctx, dir, authorEnv, "commit", "--quiet", "--allow-empty", "--no-gpg-sign", "-m", message); err != nil {
		return "", err
	}
	out, err := run(ctx, dir, nil, "rev-parse", "HEAD")
	return strings.TrimSpace(out), err
}
