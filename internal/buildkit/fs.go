package buildkit

import (
	"context"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	gateway "github.com/moby/buildkit/frontend/gateway/client"
	fstypes "github.com/tonistiigi/fsutil/types"
)

// readChunk is how much of a file one ReadFile call asks for; the gateway
// caps a message at 16 MiB.
const readChunk = 4 << 20

// containerFS is a read-only fs.FS over a directory of a container (base),
// read through BuildKit's gateway from the mounts that make it up: the
// source mount, and cache mounts inside it. The daemon opens paths inside
// a mount's root, so a symlink cannot lead a read out of it.
type containerFS struct {
	ctr    gateway.Container
	base   string
	mounts []fsMount
}

// fsMount is a mount of the container: where it is, and its index.
type fsMount struct {
	dest  string
	index int
}

// abs returns the mount that holds name and name's path within it.
func (f *containerFS) abs(name string, op string) (int, string, error) {
	if !fs.ValidPath(name) {
		return 0, "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	full := path.Join(f.base, name)
	best := fsMount{index: -1}
	for _, m := range f.mounts {
		within := full == m.dest || m.dest == "/" || strings.HasPrefix(full, m.dest+"/")
		if within && len(m.dest) >= len(best.dest) {
			best = m
		}
	}
	if best.index < 0 {
		return 0, "", &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return best.index, "/" + strings.TrimPrefix(strings.TrimPrefix(full, best.dest), "/"), nil
}

// Open returns a file or a directory.
func (f *containerFS) Open(name string) (fs.File, error) {
	st, err := f.stat(name)
	if err != nil {
		return nil, err
	}
	return &containerFile{fsys: f, name: name, st: st}, nil
}

// Stat implements fs.StatFS, one round trip instead of Open's.
func (f *containerFS) Stat(name string) (fs.FileInfo, error) {
	st, err := f.stat(name)
	if err != nil {
		return nil, err
	}
	return st, nil
}

func (f *containerFS) stat(name string) (*statInfo, error) {
	mount, p, err := f.abs(name, "stat")
	if err != nil {
		return nil, err
	}
	st, err := f.ctr.StatFile(context.Background(), gateway.StatContainerRequest{StatRequest: gateway.StatRequest{Path: p}, MountIndex: mount})
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: notExist(err)}
	}
	return &statInfo{st: st, name: path.Base(name)}, nil
}

// ReadDir implements fs.ReadDirFS, which doublestar's globbing uses.
func (f *containerFS) ReadDir(name string) ([]fs.DirEntry, error) {
	mount, p, err := f.abs(name, "readdir")
	if err != nil {
		return nil, err
	}
	sts, err := f.ctr.ReadDir(context.Background(), gateway.ReadDirContainerRequest{ReadDirRequest: gateway.ReadDirRequest{Path: p}, MountIndex: mount})
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: notExist(err)}
	}
	out := make([]fs.DirEntry, len(sts))
	for i, st := range sts {
		out[i] = fs.FileInfoToDirEntry(&statInfo{st: st, name: path.Base(st.Path)})
	}
	return out, nil
}

// notExist maps the gateway's "no such file" text to fs.ErrNotExist, which
// globbing treats as "no match".
func notExist(err error) error {
	if err != nil && (containsAny(err.Error(), "no such file or directory", "not exist")) {
		return fs.ErrNotExist
	}
	return err
}

// containerFile reads a file in chunks as it is read, so a large artifact
// never sits whole in memory.
type containerFile struct {
	fsys *containerFS
	name string
	st   *statInfo
	off  int64
}

func (cf *containerFile) Stat() (fs.FileInfo, error) { return cf.st, nil }
func (cf *containerFile) Close() error               { return nil }

func (cf *containerFile) Read(b []byte) (int, error) {
	if cf.st.IsDir() {
		return 0, &fs.PathError{Op: "read", Path: cf.name, Err: fs.ErrInvalid}
	}
	if cf.off >= cf.st.Size() {
		return 0, io.EOF
	}
	want := min(len(b), readChunk)
	mount, p, err := cf.fsys.abs(cf.name, "read")
	if err != nil {
		return 0, err
	}
	data, err := cf.fsys.ctr.ReadFile(context.Background(), gateway.ReadContainerRequest{
		ReadRequest: gateway.ReadRequest{Filename: p, Range: &gateway.FileRange{Offset: int(cf.off), Length: want}},
		MountIndex:  mount,
	})
	if err != nil {
		return 0, &fs.PathError{Op: "read", Path: cf.name, Err: err}
	}
	if len(data) == 0 {
		return 0, io.EOF
	}
	n := copy(b, data)
	cf.off += int64(n)
	return n, nil
}

// statInfo is an fs.FileInfo over the gateway's stat.
type statInfo struct {
	st   *fstypes.Stat
	name string
}

func (s *statInfo) Name() string       { return s.name }
func (s *statInfo) Size() int64        { return s.st.Size }
func (s *statInfo) Mode() fs.FileMode  { return fs.FileMode(s.st.Mode) }
func (s *statInfo) ModTime() time.Time { return time.Unix(0, s.st.ModTime) }
func (s *statInfo) IsDir() bool        { return s.Mode().IsDir() }
func (s *statInfo) Sys() any           { return s.st }
