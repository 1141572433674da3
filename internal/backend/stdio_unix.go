//go:build unix

package backend

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the child in its own process group, so that signals
// reach the servers it spawns too (npx, uvx and shells are common).
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// signalChild signals the child's process group, falling back to the child.
func signalChild(cmd *exec.Cmd, sig syscall.Signal) {
	if err := syscall.Kill(-cmd.Process.Pid, sig); err != nil {
		_ = cmd.Process.Signal(sig)
	}
}
