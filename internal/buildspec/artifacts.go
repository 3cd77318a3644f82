package buildspec

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"

	"github.com/bmatcuk/doublestar/v4"
)

// collect copies the artifact files into ArtifactsDir. It runs after the
// shell is gone, so it writes its log lines straight to Log.
func (r *runner) collect() error {
	a := r.spec.Artifacts
	if r.o.ArtifactsDir == "" || len(a.Files) == 0 {
		return nil
	}
	if a.BaseDirectory != "" && !filepath.IsLocal(filepath.FromSlash(a.BaseDirectory)) {
		return fmt.Errorf("buildspec: artifacts base-directory %q is outside the source directory", a.BaseDirectory)
	}
	// The sandbox's view refuses paths and symlinks leading out of the
	// source directory, so a repository cannot make kiln copy other files
	// from the worker.
	src, err := r.o.Sandbox.Source()
	if err != nil {
		return fmt.Errorf("buildspec: artifacts: %w", err)
	}
	root := src
	if base := path.Clean(a.BaseDirectory); a.BaseDirectory != "" && base != "." {
		if root, err = fs.Sub(src, base); err != nil {
			return fmt.Errorf("buildspec: artifacts base-directory: %w", err)
		}
	}
	files, err := matchArtifacts(root, a, r.logf)
	if err != nil {
		return err
	}
	copied, err := copyArtifacts(root, files, r.o.ArtifactsDir, a.DiscardPaths)
	if err != nil {
		return err
	}
	r.res.Artifacts = copied
	r.logf("artifacts: copied %d files to %s", len(copied), r.o.ArtifactsDir)
	return nil
}

// logf writes a kiln line straight to Log once the log pump is closed,
// scrubbed as the pump would: file names and report errors come from the
// build.
func (r *runner) logf(format string, args ...any) {
	_, _ = io.WriteString(r.o.Log, r.scrub.String(fmt.Sprintf(kilnLinePrefix+format+"\n", args...)))
}

// matchArtifacts returns the files matched by a.Files and not by
// a.ExcludePaths, once each and sorted. A pattern matching nothing is logged,
// not an error: CodeBuild behaves the same, and optional outputs are common.
func matchArtifacts(root fs.FS, a Artifacts, logf func(string, ...any)) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, pat := range a.Files {
		// NoFollow: a symlink loop must not make "**" walk forever.
		matches, err := doublestar.Glob(root, cleanPattern(pat), doublestar.WithFilesOnly(), doublestar.WithNoFollow())
		if err != nil {
			return nil, fmt.Errorf("buildspec: artifacts files %q: %w", pat, err)
		}
		n := 0
		for _, m := range matches {
			if excluded(m, a.ExcludePaths) {
				continue
			}
			// A symlink out of the tree (a virtualenv's bin/python) is skipped,
			// not copied and not fatal.
			if fi, err := fs.Stat(root, m); err != nil || !fi.Mode().IsRegular() {
				logf("artifacts: skipping %s: not a regular file inside the base directory", m)
				continue
			}
			n++
			if !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
		if n == 0 {
			logf("artifacts: pattern %q matched no files", pat)
		}
	}
	sort.Strings(out)
	return out, nil
}

// excluded reports whether an exclude pattern matches the file or one of its
// parent directories, so "exclude-paths: tmp" leaves out all of tmp/.
func excluded(file string, patterns []string) bool {
	for _, pat := range patterns {
		pat = cleanPattern(pat)
		for p := file; p != "." && p != "/"; p = path.Dir(p) {
			if ok, _ := doublestar.Match(pat, p); ok {
				return true
			}
		}
	}
	return false
}

// copyArtifacts copies files from root into dir, flattened if discard is set,
// and returns the destination paths relative to dir.
func copyArtifacts(root fs.FS, files []string, dir string, discard bool) ([]string, error) {
	from := map[string]string{}
	var out []string
	for _, f := range files {
		dst := f
		if discard {
			dst = path.Base(f)
		}
		if prev, dup := from[dst]; dup {
			return nil, fmt.Errorf("buildspec: artifacts: %s and %s both become %s with discard-paths", prev, f, dst)
		}
		from[dst] = f
		if err := copyFile(root, f, filepath.Join(dir, filepath.FromSlash(dst))); err != nil {
			return nil, fmt.Errorf("buildspec: artifacts: copy %s: %w", f, err)
		}
		out = append(out, dst)
	}
	sort.Strings(out)
	return out, nil
}

// copyFile copies one file, keeping its permission bits so executables stay executable.
func copyFile(root fs.FS, src, dst string) error {
	in, err := root.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
