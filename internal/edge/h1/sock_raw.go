//go:build !race

package h1

import (
	"syscall"
	"unsafe"
)

// rawRead reads once from a non-blocking socket, again when a signal
// interrupted it, without telling the scheduler (sock.go).
func rawRead(fd int, p []byte) (int, error) {
	return rawCall(syscall.SYS_READ, fd, p)
}

// rawWrite writes once on a non-blocking socket, again when a signal
// interrupted it, without telling the scheduler (sock.go).
func rawWrite(fd int, p []byte) (int, error) {
	return rawCall(syscall.SYS_WRITE, fd, p)
}

func rawCall(trap uintptr, fd int, p []byte) (int, error) {
	for {
		r, _, e := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		switch e {
		case 0:
			return int(r), nil
		case syscall.EINTR:
			continue
		default:
			return 0, e
		}
	}
}
