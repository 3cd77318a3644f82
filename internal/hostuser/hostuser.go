// Package hostuser gives each build that runs on the worker (no build
// image) a user of its own.
//
// A clean environment keeps the worker's variables out of a build, but a
// process of the worker's own user can still read them from
// /proc/<worker>/environ, and read the worker's credential files by
// absolute path. A build running as another, unprivileged user can do
// neither: the kernel lets only the same user (or root) read a process's
// environ, and the worker's HOME and data dir are closed to others. Each
// concurrent build gets a different user, so one build cannot read
// another's declared secrets either.
//
// Switching users needs root, so a Pool is only made for a worker running
// as root; elsewhere builds run as the worker's user and kiln says so.
package hostuser

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

// DefaultBase and DefaultSize are the uids builds run as: far above any
// login's, system's or rootless container's range, and named by no
// account, so a build user owns nothing outside its own workspace.
// DefaultLockDir is where every kiln on the machine takes them.
const (
	DefaultBase    = 2_000_000_000
	DefaultSize    = 256
	DefaultLockDir = "/var/lib/kiln/users"
)

// ErrAllBusy means every user of the pool runs a build: more builds run at
// once on this machine than the pool has users.
var ErrAllBusy = errors.New("hostuser: every build user is busy")

// Pool hands out the uids [base, base+size), one build at a time across
// every kiln process on the machine: a user is taken by an flock on
// <dir>/<uid>.lock, which the kernel lets go when its holder dies. The gid
// of each user equals its uid, and it has no supplementary groups.
type Pool struct {
	dir  string
	base uint32
	size int
	mu   sync.Mutex
	held map[uint32]bool
}

// NewPool returns a pool of size users starting at uid base, locked in
// dir, which it makes (0700) if need be.
func NewPool(dir string, base uint32, size int) (*Pool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("hostuser: %w", err)
	}
	return &Pool{dir: dir, base: base, size: size, held: map[uint32]bool{}}, nil
}

// User is one build's user, until Release.
type User struct {
	UID  uint32
	pool *Pool
	lock *os.File
}

// Acquire takes a user no build on the machine has. Before handing it out
// it kills any process still running as that uid, which only a kiln that
// died mid-build can leave behind, so a build never shares its user with
// another's leftovers.
func (p *Pool) Acquire() (*User, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.size {
		uid := p.base + uint32(i)
		if p.held[uid] {
			continue
		}
		f, err := os.OpenFile(filepath.Join(p.dir, strconv.FormatUint(uint64(uid), 10)+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, fmt.Errorf("hostuser: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				continue // another kiln's build has it
			}
			return nil, fmt.Errorf("hostuser: lock uid %d: %w", uid, err)
		}
		p.held[uid] = true
		KillAll(uid)
		return &User{UID: uid, pool: p, lock: f}, nil
	}
	return nil, ErrAllBusy
}

// Release kills what the build left running as its user and gives the
// user back.
func (u *User) Release() {
	KillAll(u.UID)
	u.pool.mu.Lock()
	delete(u.pool.held, u.UID)
	u.pool.mu.Unlock()
	u.lock.Close() // closing the last descriptor lets the flock go
}

// Credential is what a child process runs as: the user, its own group, no
// supplementary groups (the worker's, such as docker or disk, would be a
// way out).
func (u *User) Credential() *syscall.Credential {
	return &syscall.Credential{Uid: u.UID, Gid: u.UID, Groups: []uint32{}}
}

// Own gives the user the tree at dir. Symlinks are changed themselves,
// never followed, so a link in a checkout cannot hand the user a file
// outside it.
func (u *User) Own(dir string) error {
	return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, int(u.UID), int(u.UID))
	})
}

// Reachable checks that a user other than the worker's can reach dir: a
// build's workspace, HOME and TMPDIR are absolute paths, and each
// directory above them must let others pass (the x bit for others).
func Reachable(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for d := abs; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("build users cannot reach %s: %s is not searchable by others (mode %04o)", abs, d, fi.Mode().Perm())
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// KillAll SIGKILLs every process running as uid and returns how many it
// signalled. Where /proc is missing it finds none.
func KillAll(uid uint32) int {
	procs, _ := os.ReadDir("/proc")
	n := 0
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", p.Name(), "status"))
		if err != nil {
			continue // exited while we looked
		}
		if real, ok := statusUID(status); ok && real == uid && syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

// statusUID reads the real uid from /proc/PID/status's "Uid:" line.
func statusUID(status []byte) (uint32, bool) {
	for line := range bytes.SplitSeq(status, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("Uid:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			return 0, false
		}
		v, err := strconv.ParseUint(string(f[0]), 10, 32)
		return uint32(v), err == nil
	}
	return 0, false
}
