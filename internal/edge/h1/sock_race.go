//go:build race

package h1

import "syscall"

// Under the race detector the socket calls are syscall.Read and Write,
// which tell the detector what the socket orders (sock.go).

// rawRead reads once from a non-blocking socket, again when a signal
// interrupted it.
func rawRead(fd int, p []byte) (int, error) { return ignoringEINTR(syscall.Read, fd, p) }

// rawWrite writes once on a non-blocking socket, again when a signal
// interrupted it.
func rawWrite(fd int, p []byte) (int, error) { return ignoringEINTR(syscall.Write, fd, p) }

func ignoringEINTR(call func(int, []byte) (int, error), fd int, p []byte) (int, error) {
	for {
		n, err := call(fd, p)
		if err != syscall.EINTR {
			return max(n, 0), err
		}
	}
}
