package h1

import (
	"io"
	"net"
	"os"
	"syscall"
)

// Socket reads and writes the scheduler does not wait on.
//
// A read or write on a Go socket tells the scheduler it enters a system
// call. sysmon, the runtime's watchdog, takes the P away from a call that is
// still running at its next tick and hands it to another thread; while it
// keeps finding such calls it wakes every 20 µs. Over loopback a write
// delivers the segment to its reader inside the call, which takes about
// that long, so under load sysmon never backed off: 6.7% of the edge's CPU
// was sysmon's own, more went to the hand-offs and futex wake-ups, and
// `perf` showed it.
//
// The edge's sockets are non-blocking: a read or write returns at once,
// with EAGAIN when it would wait, and the wait itself is the poller's, as
// before (syscall.RawConn). So the calls are made raw, without the
// scheduler's bookkeeping. What that costs: until the call returns, its
// goroutine cannot be preempted, so a stop for the garbage collector waits
// for it. Each call moves at most maxRawIO bytes, which bounds that wait to
// the time of one copy of that size.
//
// Built with the race detector, the calls are syscall.Read and Write
// (sock_race.go): those tell the detector that what one goroutine wrote to
// a socket happens before what another reads from it, and tests count on
// that as programs do on the kernel.

// maxRawIO bounds the bytes one raw read or write moves.
const maxRawIO = 64 << 10

// sockConn is a TCP connection whose Read and Write are raw system calls
// on its non-blocking socket; everything else is the TCPConn's.
type sockConn struct {
	*net.TCPConn
	rc syscall.RawConn
}

// wrapSock returns c with raw reads and writes when it is a TCP
// connection, and c itself otherwise.
func wrapSock(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &sockConn{TCPConn: tc, rc: rc}
}

// Read reads as net.Conn's Read does: what is there, or, when nothing is,
// after the poller says something came; io.EOF at the end of the stream.
func (s *sockConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(p) > maxRawIO {
		p = p[:maxRawIO]
	}
	var n int
	var err error
	if rerr := s.rc.Read(func(fd uintptr) bool {
		n, err = rawRead(int(fd), p)
		return err != syscall.EAGAIN
	}); rerr != nil {
		return 0, s.opError("read", rerr)
	}
	if err != nil {
		return 0, s.opError("read", err)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of p, waiting for the poller whenever the socket's
// buffer is full, as net.Conn's Write does.
func (s *sockConn) Write(p []byte) (int, error) {
	var n int
	var err error
	if werr := s.rc.Write(func(fd uintptr) bool {
		for len(p) > 0 {
			m, e := rawWrite(int(fd), p[:min(len(p), maxRawIO)])
			switch e {
			case nil:
				n += m
				p = p[m:]
			case syscall.EAGAIN:
				return false
			default:
				err = e
				return true
			}
		}
		return true
	}); werr != nil {
		return n, s.opError("write", werr)
	}
	if err != nil {
		return n, s.opError("write", err)
	}
	return n, nil
}

// opError words err as the TCPConn's own Read or Write would: an errno as
// a *net.OpError around an *os.SyscallError, and the poller's errors
// (deadline, closed) with op and the local address, which RawConn's
// leave out.
func (s *sockConn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		oe.Op, oe.Source = op, s.LocalAddr()
		return oe
	}
	if errno, ok := err.(syscall.Errno); ok {
		err = os.NewSyscallError(op, errno)
	}
	return &net.OpError{Op: op, Net: "tcp", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: err}
}
