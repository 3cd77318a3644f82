package hostuser

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testBase is far from DefaultBase, so these tests never kill a real
// build's processes.
const testBase = 1_900_000_000

func TestPoolsShareUsersThroughLocks(t *testing.T) {
	dir := t.TempDir()
	a, err := NewPool(dir, testBase, 2)
	require.NoError(t, err)
	b, err := NewPool(dir, testBase, 2) // another kiln on the machine
	require.NoError(t, err)

	u1, err := a.Acquire()
	require.NoError(t, err)
	u2, err := b.Acquire()
	require.NoError(t, err)
	assert.NotEqual(t, u1.UID, u2.UID, "two kilns handed out one user")
	_, err = a.Acquire()
	assert.ErrorIs(t, err, ErrAllBusy)

	u2.Release()
	u3, err := a.Acquire()
	require.NoError(t, err)
	assert.Equal(t, u2.UID, u3.UID, "a released user is free again")
	u1.Release()
	u3.Release()
}

func TestAcquireKillsLeftovers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	p, err := NewPool(t.TempDir(), testBase+100, 1)
	require.NoError(t, err)
	u, err := p.Acquire()
	require.NoError(t, err)
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.Credential()}
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// A kiln dying mid-build lets its lock go and leaves the process.
	u.lock.Close()
	p.held = map[uint32]bool{}

	again, err := p.Acquire()
	require.NoError(t, err)
	assert.Equal(t, u.UID, again.UID)
	select {
	case err := <-exited:
		assert.Error(t, err, "killed")
	case <-time.After(5 * time.Second):
		t.Fatal("the leftover process of the user still runs")
	}
	again.Release()
}

func TestOwnDoesNotFollowSymlinks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	outside := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(outside, []byte("x"), 0o600))
	work := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(work, "f"), []byte("x"), 0o600))
	require.NoError(t, os.Symlink(outside, filepath.Join(work, "link")))
	u := &User{UID: testBase + 200}
	require.NoError(t, u.Own(work))
	for _, p := range []string{work, filepath.Join(work, "f"), filepath.Join(work, "link")} {
		var st syscall.Stat_t
		require.NoError(t, syscall.Lstat(p, &st))
		assert.Equal(t, u.UID, st.Uid, p)
	}
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(outside, &st))
	assert.Equal(t, uint32(0), st.Uid, "the link's target changed owner")
}

func TestReachable(t *testing.T) {
	open := filepath.Join(t.TempDir(), "a", "b")
	require.NoError(t, os.MkdirAll(open, 0o711))
	closed := filepath.Dir(open)
	require.NoError(t, os.Chmod(filepath.Dir(closed), 0o711))
	require.NoError(t, os.Chmod(filepath.Dir(filepath.Dir(closed)), 0o711))
	require.NoError(t, os.Chmod(closed, 0o700))
	err := Reachable(open)
	require.Error(t, err)
	assert.Contains(t, err.Error(), closed+" is not searchable by others (mode 0700)")
	require.NoError(t, os.Chmod(closed, 0o711))
	if err := Reachable(open); err != nil {
		// Above the test's temp dir, the machine's own dirs decide.
		assert.NotContains(t, err.Error(), closed)
	}
}

func TestStatusUID(t *testing.T) {
	uid, ok := statusUID([]byte("Name:\tsleep\nUmask:\t0022\nUid:\t2000000001\t2000000001\t2000000001\t2000000001\nGid:\t0\n"))
	assert.True(t, ok)
	assert.Equal(t, uint32(2000000001), uid)
	_, ok = statusUID([]byte("Name:\tsleep\n"))
	assert.False(t, ok)
}
