//go:build race

package h1

import "syscall"

// rawRead reads once from a non-blocking socket, again when a signal
// interrupted it. Under the race detector it is syscall.Read, which tells
// the detector what the socket orders (sock.go).
func rawRead(fd int, p []byte) (int, error) {
	for {
		n, err := syscall.Read(fd, p)
		if err == syscall.EINTR {
			continue
		}
		return max(n, 0), err
	}
}

// rawWrite writes once on a non-blocking socket, again when a signal
// interrupted it. Under the race detector it is syscall.Write (sock.go).
func rawWrite(fd int, p []byte) (int, error) {
	for {
		n, err := syscall.Write(fd, p)
		if err == syscall.EINTR {
			continue
		}
		return max(n, 0), err
	}
}
