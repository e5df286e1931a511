package awstest

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill cmd when the test process ends, so a
// test binary that exits without calling Stop (a panic, a timeout, no
// TestMain) leaves no server behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
