//go:build !linux

package integration

import "os/exec"

// setDeathSignal is a no-op where Pdeathsig does not exist.
func setDeathSignal(*exec.Cmd) {}
