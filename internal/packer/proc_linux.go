package packer

import "syscall"

// sysProcAttr starts packer in its own process group, so a signal reaches
// packer and its plugin processes (packer ignores one sent to it alone), and
// kills it if kiln's thread dies, so a crashed worker leaves no build running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
