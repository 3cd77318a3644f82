//go:build unix && !linux

package packer

import "syscall"

// sysProcAttr starts packer in its own process group, so a signal reaches
// packer and its plugin processes. Only Linux can also tie packer's life to
// kiln's (Pdeathsig).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
