package artifacts

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Dir stores blobs as files under Root/sha256/, for a single machine
// (kiln dev) or a volume every worker mounts.
type Dir struct{ Root string }

func (d Dir) String() string { return d.Root }

func (d Dir) blob(dg Digest) (string, error) {
	if err := dg.Valid(); err != nil {
		return "", err
	}
	return filepath.Join(d.Root, "sha256", dg.hex()), nil
}

// Has reports whether the blob's file exists.
func (d Dir) Has(_ context.Context, dg Digest) (bool, error) {
	name, err := d.blob(dg)
	if err != nil {
		return false, err
	}
	_, err = os.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Put writes the blob to a temporary file, checks its digest, and renames
// it into place: readers never see part of a blob.
func (d Dir) Put(_ context.Context, dg Digest, body io.ReadSeeker, size int64) error {
	name, err := d.blob(dg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), ".put-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if got := digestOf(h.Sum(nil)); n != size || got != dg {
		return fmt.Errorf("blob %s: was given %d bytes of %s", dg, n, got)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

// Get opens the blob's file.
func (d Dir) Get(_ context.Context, dg Digest) (io.ReadCloser, error) {
	name, err := d.blob(dg)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", dg, ErrNotFound)
	}
	return f, err
}
