package buildspec

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// artifactBuild runs a build that creates a small tree, then collects it
// with the given artifacts section.
func artifactBuild(t *testing.T, artifacts string) (*build, string) {
	t.Helper()
	out := t.TempDir()
	b := runSpec(t, `version: 0.2
phases:
  build:
    commands:
      - mkdir -p dist/bin dist/lib/deep docs tmp
      - echo app > dist/bin/app && chmod 755 dist/bin/app
      - echo lib > dist/lib/deep/lib.so
      - echo junk > dist/lib/deep/x.tmp
      - echo readme > README.md
      - echo doc > docs/README.md
      - echo scratch > tmp/scratch.txt
`+artifacts, func(o *RunOptions) { o.ArtifactsDir = out })
	if b.err != nil {
		t.Fatalf("Run: %v\n%s", b.err, b.log.String())
	}
	return b, out
}

// tree lists the files under dir, slash-separated and sorted.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

func TestArtifacts(t *testing.T) {
	cases := []struct {
		name, section string
		want          []string
	}{
		{"doublestar", "artifacts:\n  files: ['**/*']\n  exclude-paths: [tmp]\n",
			[]string{"README.md", "dist/bin/app", "dist/lib/deep/lib.so", "dist/lib/deep/x.tmp", "docs/README.md"}},
		{"base-directory", "artifacts:\n  base-directory: dist\n  files: ['**/*']\n",
			[]string{"bin/app", "lib/deep/lib.so", "lib/deep/x.tmp"}},
		{"discard-paths", "artifacts:\n  base-directory: dist\n  discard-paths: yes\n  files: ['**/*']\n  exclude-paths: ['**/*.tmp']\n",
			[]string{"app", "lib.so"}},
		{"several patterns, leading ./ and overlaps", "artifacts:\n  files: ['./dist/bin/*', 'dist/**/app', '*.md']\n",
			[]string{"README.md", "dist/bin/app"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, out := artifactBuild(t, c.section)
			if !reflect.DeepEqual(b.res.Artifacts, c.want) {
				t.Errorf("Result.Artifacts = %q, want %q", b.res.Artifacts, c.want)
			}
			if got := tree(t, out); !reflect.DeepEqual(got, c.want) {
				t.Errorf("copied %q, want %q", got, c.want)
			}
		})
	}
}

func TestArtifactsContentAndMode(t *testing.T) {
	_, out := artifactBuild(t, "artifacts:\n  files: [dist/bin/app]\n")
	data, err := os.ReadFile(filepath.Join(out, "dist/bin/app"))
	if err != nil || string(data) != "app\n" {
		t.Fatalf("content %q, %v", data, err)
	}
	if fi, _ := os.Stat(filepath.Join(out, "dist/bin/app")); fi.Mode().Perm() != 0o755 {
		t.Errorf("mode %v, want 0755", fi.Mode().Perm())
	}
}

func TestArtifactsUnmatchedPatternIsLogged(t *testing.T) {
	b, out := artifactBuild(t, "artifacts:\n  files: ['*.md', 'missing/**/*']\n")
	wantContains(t, b.log.String(), `[kiln] artifacts: pattern "missing/**/*" matched no files`)
	wantContains(t, b.log.String(), "[kiln] artifacts: copied 1 files to "+out)
	if !b.res.Succeeded {
		t.Error("an unmatched pattern failed the build")
	}
}

func TestArtifactsNotCollectedOnFailure(t *testing.T) {
	out := t.TempDir()
	b := runSpec(t, "version: 0.2\nphases:\n  build:\n    commands: ['echo x > a.txt', 'false']\nartifacts:\n  files: ['*.txt']\n",
		func(o *RunOptions) { o.ArtifactsDir = out })
	if b.err == nil || len(b.res.Artifacts) != 0 || len(tree(t, out)) != 0 {
		t.Errorf("artifacts collected from a failed build: %v %v", b.res.Artifacts, tree(t, out))
	}
}

// TestArtifactsStayInsideBaseDirectory: a symlink in the repository must not
// make kiln copy files from elsewhere on the worker.
func TestArtifactsStayInsideBaseDirectory(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	writeFile(t, secret, "do not copy")
	out := t.TempDir()
	b := runSpec(t, "version: 0.2\nphases:\n  build:\n    commands: ['ln -s "+secret+" leak', 'echo ok > ok.txt']\nartifacts:\n  files: ['*']\n",
		func(o *RunOptions) { o.ArtifactsDir = out })
	if b.err != nil {
		t.Fatalf("Run: %v", b.err)
	}
	wantContains(t, b.log.String(), "[kiln] artifacts: skipping leak: not a regular file inside the base directory")
	if got := tree(t, out); !reflect.DeepEqual(got, []string{"ok.txt"}) {
		t.Errorf("copied %q", got)
	}
}

func TestArtifactsDiscardPathsCollision(t *testing.T) {
	out := t.TempDir()
	b := runSpec(t, "version: 0.2\nphases:\n  build:\n    commands: ['mkdir a b && touch a/x b/x']\nartifacts:\n  discard-paths: yes\n  files: ['**/x']\n",
		func(o *RunOptions) { o.ArtifactsDir = out })
	if b.err == nil || !strings.Contains(b.err.Error(), "a/x and b/x both become x") || b.res.Succeeded {
		t.Errorf("collision: err=%v succeeded=%v", b.err, b.res.Succeeded)
	}
}

func TestArtifactsSkippedWithoutDir(t *testing.T) {
	b := runSpec(t, "version: 0.2\nphases:\n  build:\n    commands: ['touch a']\nartifacts:\n  files: ['*']\n")
	if b.err != nil || len(b.res.Artifacts) != 0 {
		t.Errorf("err=%v artifacts=%v", b.err, b.res.Artifacts)
	}
	wantNotContains(t, b.log.String(), "artifacts:")
}
