package activities

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestReapEarlierAttempts shows that a retry kills the processes of an earlier
// attempt (found by KILN_RUN_ID) and removes its workspace, and leaves other
// runs' processes and its own workspace alone.
func TestReapEarlierAttempts(t *testing.T) {
	a := &Activities{DataDir: t.TempDir()}
	orphan := startSleeper(t, "KILN_RUN_ID=pipe/main/d1")
	other := startSleeper(t, "KILN_RUN_ID=pipe/main/d10")
	for _, n := range []string{"1", "2"} {
		if err := os.MkdirAll(filepath.Join(a.DataDir, "work", "run", n, "src"), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	if n := a.reapEarlierAttempts("pipe/main/d1", "run", 2); n != 1 {
		t.Errorf("killed %d processes, want 1", n)
	}
	if !exited(orphan) {
		t.Error("the earlier attempt's process still runs")
	}
	if exited(other) {
		t.Error("another run's process was killed")
	}
	if _, err := os.Stat(filepath.Join(a.DataDir, "work", "run", "1")); !os.IsNotExist(err) {
		t.Errorf("attempt 1's workspace is still there (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(a.DataDir, "work", "run", "2", "src")); err != nil {
		t.Errorf("the current attempt's workspace was removed: %v", err)
	}
}

// startSleeper starts a long sleep with env added; the channel closes when it exits.
func startSleeper(t *testing.T, env string) <-chan struct{} {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	cmd.Env = append(os.Environ(), env)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	return done
}

// exited waits briefly for the process to end.
func exited(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	case <-time.After(2 * time.Second):
		return false
	}
}
