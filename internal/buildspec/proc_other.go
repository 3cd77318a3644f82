//go:build unix && !linux

package buildspec

import "syscall"

// sysProcAttr puts the shell in its own process group, so cancelling reaches
// every process a build started. Only Linux can also tie the shell's life to
// kiln's (Pdeathsig).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// groupAlive reports whether group pgid still exists. Without /proc the
// unreaped shell counts too, so stopping always waits out the grace period.
func groupAlive(pgid int) bool {
	return syscall.Kill(-pgid, 0) == nil
}
