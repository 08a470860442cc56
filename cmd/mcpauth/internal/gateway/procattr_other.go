//go:build !unix

package gateway

import (
	"os/exec"
	"syscall"
)

func procAttr() *syscall.SysProcAttr { return nil }
func termGroup(c *exec.Cmd)          { _ = c.Process.Kill() }
func killGroup(c *exec.Cmd)          { _ = c.Process.Kill() }
