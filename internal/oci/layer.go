package oci

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// File is one file to copy into the image.
type File struct {
	// Source is the file's path on disk; it must be a regular file
	// (symbolic links are followed).
	Source string
	// Target is the file's absolute path in the image. Missing parent
	// directories are created with mode 0755.
	Target string
	// Mode is the file's mode in the image; 0 keeps its permission bits
	// on disk.
	Mode os.FileMode
}

// entry is one file of a layer, checked and ready to write.
type entry struct {
	src  string
	name string // target without the leading "/", as in docker's tars
	mode os.FileMode
	size int64
}

// planLayer checks files and orders them by target, so the tar is the same
// whatever order the caller listed them in.
func planLayer(files []File) ([]entry, error) {
	entries := make([]entry, 0, len(files))
	seen := map[string]string{}
	for _, f := range files {
		if !path.IsAbs(f.Target) || path.Clean(f.Target) == "/" {
			return nil, fmt.Errorf("file %s: %w: target %q must be an absolute file path in the image", f.Source, ErrInvalid, f.Target)
		}
		name := strings.TrimPrefix(path.Clean(f.Target), "/")
		if prev, dup := seen[name]; dup {
			return nil, fmt.Errorf("%w: files %s and %s both go to /%s", ErrInvalid, prev, f.Source, name)
		}
		seen[name] = f.Source
		fi, err := os.Stat(f.Source)
		if err != nil {
			return nil, fmt.Errorf("file for /%s: %w", name, err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%w: file %s for /%s is not a regular file", ErrInvalid, f.Source, name)
		}
		mode := f.Mode.Perm()
		if f.Mode == 0 {
			mode = fi.Mode().Perm()
		}
		entries = append(entries, entry{src: f.Source, name: name, mode: mode, size: fi.Size()})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	for _, e := range entries {
		for dir := path.Dir(e.name); dir != "."; dir = path.Dir(dir) {
			if src, clash := seen[dir]; clash {
				return nil, fmt.Errorf("%w: file %s goes to /%s, which %s needs as a directory", ErrInvalid, src, dir, e.src)
			}
		}
	}
	return entries, nil
}

// writeLayer writes entries as an uncompressed tar, each parent directory
// before what it holds, every header owned by root and dated mtime.
func writeLayer(w io.Writer, entries []entry, mtime time.Time) error {
	tw := tar.NewWriter(w)
	made := map[string]bool{}
	for _, e := range entries {
		if err := writeDirs(tw, path.Dir(e.name), made, mtime); err != nil {
			return err
		}
		if err := writeFile(tw, e, mtime); err != nil {
			return err
		}
	}
	return tw.Close()
}

func writeDirs(tw *tar.Writer, dir string, made map[string]bool, mtime time.Time) error {
	if dir == "." || made[dir] {
		return nil
	}
	if err := writeDirs(tw, path.Dir(dir), made, mtime); err != nil {
		return err
	}
	made[dir] = true
	return tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755,
		ModTime: mtime,
	})
}

func writeFile(tw *tar.Writer, e entry, mtime time.Time) error {
	f, err := os.Open(e.src)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg, Name: e.name, Mode: int64(e.mode), Size: e.size,
		ModTime: mtime,
	}); err != nil {
		return err
	}
	// A file that changed size since planLayer fails here rather than
	// making a layer whose digest no longer matches its content.
	if n, err := io.Copy(tw, io.LimitReader(f, e.size+1)); err != nil {
		return fmt.Errorf("copy %s: %w", e.src, err)
	} else if n != e.size {
		return fmt.Errorf("copy %s: file changed size while building the layer", e.src)
	}
	return nil
}
