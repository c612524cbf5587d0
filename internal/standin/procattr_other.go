//go:build !linux

package standin

import (
	"os/exec"
	"syscall"
)

// StartTied starts cmd in a process group of its own; tied has no effect
// here (no Pdeathsig): a child outlives a killed parent.
func StartTied(cmd *exec.Cmd, tied bool) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	return cmd.Start()
}
