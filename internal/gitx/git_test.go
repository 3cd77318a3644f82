package gitx

import (
	"context"
	"testing"
	"testing/fstest"
)

// TestDefaultBranchAndHEAD: a repository's default branch is read from its
// HEAD, and HEAD resolves to that branch's commit.
func TestDefaultBranchAndHEAD(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	head, err := InitRepo(ctx, dir, fstest.MapFS{"a": {Data: []byte("a\n")}}, "first")
	if err != nil {
		t.Fatal(err)
	}
	branch, err := DefaultBranch(ctx, Remote{URL: dir})
	if err != nil || branch != "main" {
		t.Fatalf("DefaultBranch = %q, %v; want main", branch, err)
	}
	sha, err := ResolveRef(ctx, Remote{URL: dir}, "HEAD")
	if err != nil || sha != head {
		t.Fatalf("ResolveRef(HEAD) = %q, %v; want %s", sha, err, head)
	}
	if _, err := DefaultBranch(ctx, Remote{URL: t.TempDir()}); err == nil {
		t.Fatalf("a directory that is no repository has no default branch, got %v", err)
	}
}
