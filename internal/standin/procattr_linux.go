package standin

import (
	"os/exec"
	"runtime"
	"syscall"
)

// StartTied starts cmd in a process group of its own (a ^C to the caller's
// group is the caller's to handle) and, with tied, has the kernel kill it
// when this process ends, however it ends: for children of tests, which
// have no place to stop them. Pdeathsig fires when the OS thread that
// forked the child exits, not the process, so the fork happens on a thread
// locked for good by a goroutine that never returns.
func StartTied(cmd *exec.Cmd, tied bool) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if !tied {
		return cmd.Start()
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	started := make(chan error)
	go func() {
		runtime.LockOSThread()
		started <- cmd.Start()
		select {} // keep the thread
	}()
	return <-started
}
