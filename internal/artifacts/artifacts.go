// Package artifacts keeps a build's artifacts where every worker can read
// them: a directory they all mount, or an S3 bucket.
//
// Each file is stored once, under its SHA-256 (a blob). A build's manifest,
// which lists its paths, modes and digests, is a blob too, and its digest is
// all a run's history records. So a retried upload writes the same keys with
// the same bytes, two builds of the same files share them, and a download
// checks every byte it writes against the manifest.
package artifacts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Store holds blobs by digest. Implementations must make Put atomic: a
// blob is either absent or whole.
type Store interface {
	// Has reports whether the blob is stored.
	Has(ctx context.Context, d Digest) (bool, error)
	// Put stores size bytes of body as the blob d. It may assume d is
	// body's digest, and must refuse to store bytes that are not.
	Put(ctx context.Context, d Digest, body io.ReadSeeker, size int64) error
	// Get opens the blob; a missing blob is an error wrapping ErrNotFound.
	Get(ctx context.Context, d Digest) (io.ReadCloser, error)
	// String says where the store is, for logs and errors.
	String() string
}

// ErrNotFound: the store has no blob of that digest.
var ErrNotFound = errors.New("artifact not in the store")

// Digest names a blob: "sha256:" and 64 hex digits.
type Digest string

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// Valid says whether d is a well-formed digest; a store builds keys and
// paths from it only when it is.
func (d Digest) Valid() error {
	if !digestRE.MatchString(string(d)) {
		return fmt.Errorf("%q is not an artifact digest (sha256:<64 hex digits>)", string(d))
	}
	return nil
}

// hex is the digest's hex part.
func (d Digest) hex() string { return strings.TrimPrefix(string(d), "sha256:") }

func digestOf(sum []byte) Digest { return Digest("sha256:" + hex.EncodeToString(sum)) }

// File is one artifact in a manifest.
type File struct {
	// Path is slash-separated and relative to the artifacts' root.
	Path   string      `json:"path"`
	Digest Digest      `json:"digest"`
	Size   int64       `json:"size"`
	Mode   fs.FileMode `json:"mode"` // permission bits only
}

// Manifest lists a build's artifacts, sorted by path.
type Manifest struct {
	Files []File `json:"files"`
}

// Bytes is the artifacts' total size.
func (m *Manifest) Bytes() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// check refuses a manifest that could write outside the download's root.
func (m *Manifest) check() error {
	seen := map[string]bool{}
	for _, f := range m.Files {
		if !filepath.IsLocal(filepath.FromSlash(f.Path)) || path.Clean(f.Path) != f.Path || strings.Contains(f.Path, `\`) {
			return fmt.Errorf("artifact path %q is not a clean relative path", f.Path)
		}
		if seen[f.Path] {
			return fmt.Errorf("artifact path %q is listed twice", f.Path)
		}
		seen[f.Path] = true
		if err := f.Digest.Valid(); err != nil {
			return fmt.Errorf("artifact %s: %w", f.Path, err)
		}
	}
	return nil
}

// Progress is told how many bytes have moved so far.
type Progress func(bytes int64)

// Stats says what an Upload or Download moved.
type Stats struct {
	// Files and Bytes are the artifacts'; Moved is what crossed to or from
	// the store (blobs the other side already had are not moved).
	Files int
	Bytes int64
	Moved int64
}

// Upload stores the files (paths relative to dir) and then their
// manifest, and returns the manifest's digest. Blobs the store has are not
// sent again, and the manifest goes last, so a manifest in the store means
// all its blobs are there.
func Upload(ctx context.Context, s Store, dir string, paths []string, progress Progress) (Digest, Stats, error) {
	var m Manifest
	var st Stats
	for _, p := range slices.Sorted(slices.Values(paths)) {
		f, moved, err := upload(ctx, s, dir, p)
		if err != nil {
			return "", st, err
		}
		m.Files = append(m.Files, f)
		st.Files, st.Bytes, st.Moved = st.Files+1, st.Bytes+f.Size, st.Moved+moved
		if progress != nil {
			progress(st.Moved)
		}
	}
	if err := m.check(); err != nil {
		return "", st, err
	}
	body, err := json.Marshal(m)
	if err != nil {
		return "", st, err
	}
	sum := sha256.Sum256(body)
	d := digestOf(sum[:])
	if err := putIfMissing(ctx, s, d, bytes.NewReader(body), int64(len(body))); err != nil {
		return "", st, fmt.Errorf("store the artifacts' manifest in %s: %w", s, err)
	}
	return d, st, nil
}

// upload stores one file and says how many bytes it sent.
func upload(ctx context.Context, s Store, dir, rel string) (File, int64, error) {
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return File{}, 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return File{}, 0, err
	}
	if !info.Mode().IsRegular() {
		return File{}, 0, fmt.Errorf("artifact %s is not a regular file", rel)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return File{}, 0, fmt.Errorf("read artifact %s: %w", rel, err)
	}
	file := File{Path: rel, Digest: digestOf(h.Sum(nil)), Size: info.Size(), Mode: info.Mode().Perm()}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return File{}, 0, err
	}
	has, err := s.Has(ctx, file.Digest)
	if err != nil || has {
		return file, 0, err
	}
	if err := s.Put(ctx, file.Digest, f, file.Size); err != nil {
		return File{}, 0, fmt.Errorf("store artifact %s in %s: %w", rel, s, err)
	}
	return file, file.Size, nil
}

func putIfMissing(ctx context.Context, s Store, d Digest, body io.ReadSeeker, size int64) error {
	has, err := s.Has(ctx, d)
	if err != nil || has {
		return err
	}
	return s.Put(ctx, d, body, size)
}

// ReadManifest fetches and checks the manifest d names.
func ReadManifest(ctx context.Context, s Store, d Digest) (*Manifest, error) {
	if err := d.Valid(); err != nil {
		return nil, err
	}
	r, err := s.Get(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("the artifacts' manifest %s in %s: %w", d, s, err)
	}
	defer r.Close()
	h := sha256.New()
	body, err := io.ReadAll(io.TeeReader(io.LimitReader(r, 64<<20), h))
	if err != nil {
		return nil, fmt.Errorf("read the artifacts' manifest %s: %w", d, err)
	}
	if got := digestOf(h.Sum(nil)); got != d {
		return nil, fmt.Errorf("the artifacts' manifest %s in %s holds bytes of %s", d, s, got)
	}
	var m Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("the artifacts' manifest %s: %w", d, err)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("the artifacts' manifest %s: %w", d, err)
	}
	return &m, nil
}

// Matches says whether dir holds exactly what m lists, byte for byte, so a
// worker that built the artifacts can use its own copy.
func Matches(dir string, m *Manifest) bool {
	for _, f := range m.Files {
		d, err := fileDigest(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil || d != f.Digest {
			return false
		}
	}
	return true
}

func fileDigest(name string) (Digest, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return digestOf(h.Sum(nil)), nil
}

// Download writes the artifacts m lists into dir, replacing whatever was
// there. It writes into a sibling directory first and renames it into
// place, so dir is never half written; every file is checked against its
// digest before it counts.
func Download(ctx context.Context, s Store, m *Manifest, dir string, progress Progress) (Stats, error) {
	if err := m.check(); err != nil {
		return Stats{}, err
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return Stats{}, err
	}
	tmp, err := os.MkdirTemp(parent, filepath.Base(dir)+".partial-")
	if err != nil {
		return Stats{}, err
	}
	defer os.RemoveAll(tmp)
	var st Stats
	for _, f := range m.Files {
		if err := fetch(ctx, s, f, filepath.Join(tmp, filepath.FromSlash(f.Path))); err != nil {
			return st, err
		}
		st.Files, st.Bytes, st.Moved = st.Files+1, st.Bytes+f.Size, st.Moved+f.Size
		if progress != nil {
			progress(st.Moved)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return st, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return st, err
	}
	return st, os.Rename(tmp, dir)
}

// fetch writes one blob to name, checking its size and digest.
func fetch(ctx context.Context, s Store, f File, name string) error {
	r, err := s.Get(ctx, f.Digest)
	if err != nil {
		return fmt.Errorf("artifact %s (%s) from %s: %w", f.Path, f.Digest, s, err)
	}
	defer r.Close()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.Mode.Perm())
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(r, f.Size+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("artifact %s from %s: %w", f.Path, s, err)
	}
	if got := digestOf(h.Sum(nil)); n != f.Size || got != f.Digest {
		return fmt.Errorf("artifact %s from %s: got %d bytes of %s, want %d bytes of %s", f.Path, s, n, got, f.Size, f.Digest)
	}
	return os.Chmod(name, f.Mode.Perm()) // the umask may have taken bits
}
