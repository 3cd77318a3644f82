package buildkit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requireDaemonHost skips where StartDaemon cannot run at all (not root);
// as root, test/run has installed runc and buildkitd, so a missing one
// fails.
func requireDaemonHost(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Geteuid() != 0 {
			t.Skip(err)
		}
		t.Fatal(err)
	}
}

// TestDaemonWaitsForTheRootsLock: a daemon that a killed worker left
// shutting down still holds the root's lock; the next worker's start waits
// for it rather than failing, as a restarted worker must.
func TestDaemonWaitsForTheRootsLock(t *testing.T) {
	requireDaemonHost(t)
	root := t.TempDir()
	first, err := StartDaemon(context.Background(), DaemonOptions{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(1500 * time.Millisecond); first.Stop() }()
	started := time.Now()
	second, err := StartDaemon(context.Background(), DaemonOptions{Root: root, StartTimeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("second daemon: %v", err)
	}
	defer second.Stop()
	if took := time.Since(started); took < time.Second {
		t.Errorf("the second daemon answered after %s, while the first still held the root", took)
	}
	if err := Ping(context.Background(), second.Address); err != nil {
		t.Error(err)
	}
	if fi, err := os.Stat(root); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("root %s: %v %v, want 0700", root, fi.Mode(), err)
	}
}

// TestSocketPathPrivate: a root too deep for a unix socket path gets its
// socket in a directory of the temp dir that only root may enter, since
// buildkitd makes the socket itself writable by all.
func TestSocketPathPrivate(t *testing.T) {
	short := filepath.Join(t.TempDir(), "bk")
	if p, err := socketPath(short); err != nil || p != filepath.Join(short, "buildkitd.sock") {
		t.Errorf("socketPath(%s) = %s, %v", short, p, err)
	}
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 120))
	p, err := socketPath(long)
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(filepath.Dir(p))
	if len(p) >= 108 || !strings.HasPrefix(p, os.TempDir()) {
		t.Errorf("socket %s", p)
	}
	if fi, err := os.Stat(filepath.Dir(p)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("socket dir %v %v, want 0700", fi.Mode(), err)
	}
	if again, _ := socketPath(long); again != p {
		t.Errorf("the same root got %s, then %s", p, again)
	}
	if other, _ := socketPath(long + "x"); other == p {
		t.Error("two roots share a socket")
	}
}
