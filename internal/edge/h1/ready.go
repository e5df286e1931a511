package h1

import (
	"io"
	"net"
	"os"
	"syscall"
)

// Reads that wait before they read.
//
// A read on a Go socket first tries the read and waits only when it found
// nothing. Where the edge knows nothing can have come yet, that first try is
// a system call spent on EAGAIN: after a request goes upstream, the answer
// cannot be there before the request is. Over loopback that was one read in
// four of the fast path's.
//
// Waiting first is only safe inside one syscall.RawConn.Read: each read on a
// net.Conn starts by forgetting the readiness the poller saw before, so a
// wait begun outside would miss what came in between. Inside RawConn.Read
// the readiness is kept from the first call of its function to the last.

// rawConnOf returns the socket under c for reads that wait first, or nil
// when c is not a TCP connection.
func rawConnOf(c net.Conn) syscall.RawConn {
	if s, ok := wrapSock(c).(*sockConn); ok {
		return s.rc
	}
	return nil
}

// writeThenRead writes b on c and reads into p what c sends back, waiting
// for it before the first read: b is a request, so nothing can be there
// before it is written. c's deadlines hold for both.
func writeThenRead(c net.Conn, rc syscall.RawConn, b, p []byte) (int, error) {
	var n int
	var err error
	werr := rc.Read(func(fd uintptr) bool {
		if b != nil {
			_, err = c.Write(b)
			b = nil
			return err != nil
		}
		n, err = rawRead(int(fd), p)
		return err != syscall.EAGAIN
	})
	switch {
	case werr != nil:
		return 0, werr // a deadline, or the connection closed
	case err != nil:
		if _, ok := err.(syscall.Errno); ok {
			err = &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", err)}
		}
		return n, err
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}
