//go:build linux

package gateway

import "syscall"

// setParentDeathSignal has the kernel kill the stdio server if the gateway
// dies without stopping it.
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
