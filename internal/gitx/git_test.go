package gitx

import (
	"context"
	"strings"
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

// TestAnnotatedTagsPeelToTheirCommit: a host's push of an annotated tag
// names the tag object; the run's commit is the commit it points at, by
// PeelTag for a push and by ResolveRef for a full ref. A lightweight tag
// and a tag moved since keep the SHA they came with.
func TestAnnotatedTagsPeelToTheirCommit(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	head, err := InitRepo(ctx, dir, fstest.MapFS{"a": {Data: []byte("a\n")}}, "first")
	if err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) string {
		out, err := run(ctx, dir, nil, append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	git("tag", "-a", "v1.0", "-m", "annotated")
	git("tag", "light")
	object := git("rev-parse", "v1.0")
	if object == head {
		t.Fatal("an annotated tag has an object of its own")
	}
	r := Remote{URL: dir}
	for _, c := range []struct{ tag, sha, want string }{
		{"v1.0", object, head},
		{"light", head, head},
		{"v1.0", strings.Repeat("a", 40), strings.Repeat("a", 40)}, // moved since the push
	} {
		got, err := PeelTag(ctx, r, c.tag, c.sha)
		if err != nil || got != c.want {
			t.Errorf("PeelTag(%s, %s) = %s, %v; want %s", c.tag, c.sha, got, err, c.want)
		}
	}
	for _, ref := range []string{"refs/tags/v1.0", "v1.0"} {
		if got, err := ResolveRef(ctx, r, ref); err != nil || got != head {
			t.Errorf("ResolveRef(%s) = %s, %v; want the commit %s", ref, got, err, head)
		}
	}
}
