//go:build unix

package gateway

import (
	"os/exec"
	"syscall"
)

// procAttr puts the stdio server in a process group of its own, so that
// stopping it stops what it started (npx starts node, for example).
func procAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(a)
	return a
}

func termGroup(c *exec.Cmd) { _ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM) }
func killGroup(c *exec.Cmd) { _ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
