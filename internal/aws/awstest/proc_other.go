//go:build !linux

package awstest

import "os/exec"

// dieWithParent does nothing where the kernel cannot kill a child with its
// parent: call Stop from TestMain.
func dieWithParent(*exec.Cmd) {}
