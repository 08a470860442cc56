//go:build unix && !linux

package gateway

import "syscall"

func setParentDeathSignal(*syscall.SysProcAttr) {}
