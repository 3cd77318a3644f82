package activities

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// reapEarlierAttempts clears what earlier attempts of a run left behind when
// their worker died without cleaning up: the build shell dies with the worker
// (Pdeathsig), but the processes it started are orphaned and would keep
// running next to the retry, and the workspace stays on disk. Processes are
// recognised by KILN_RUN_ID in their environment, which every build process
// inherits and no other process has. It returns how many it killed.
func (a *Activities) reapEarlierAttempts(runID, runDir string, attempt int32) int {
	killed := killRunProcesses(runID)
	entries, _ := os.ReadDir(filepath.Join(a.workDir(), runDir))
	for _, e := range entries {
		if e.Name() != strconv.Itoa(int(attempt)) {
			_ = os.RemoveAll(filepath.Join(a.workDir(), runDir, e.Name()))
		}
	}
	return killed
}

// killRunProcesses SIGKILLs every process whose environment holds exactly
// KILN_RUN_ID=runID. Where /proc is missing it finds nothing.
func killRunProcesses(runID string) int {
	want := []byte("KILN_RUN_ID=" + runID)
	procs, _ := os.ReadDir("/proc")
	self := os.Getpid()
	n := 0
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", p.Name(), "environ"))
		if err != nil || !hasEntry(env, want) {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

// hasEntry reports whether the NUL-separated environment block holds entry.
func hasEntry(env, entry []byte) bool {
	for _, e := range bytes.Split(env, []byte{0}) {
		if bytes.Equal(e, entry) {
			return true
		}
	}
	return false
}
