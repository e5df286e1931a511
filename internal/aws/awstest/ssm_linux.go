package awstest

import (
	"os/exec"
	"syscall"
)

// ownGroup runs cmd in a process group of its own, which killGroup ends
// whole: the exec wrapper's sh and the command under it.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
