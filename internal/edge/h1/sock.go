package h1

import (
	"io"
	"net"
	"os"
	"sync"
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
//
// RawConn runs a function for each read and write; a closure made per
// call would cost four allocations (itself and the variables it shares
// with its caller). So the functions are made once, as method values, and
// share the call's state through rd and wr, which rmu and wmu keep to one
// read and one write at a time, as the socket's own locks do.
type sockConn struct {
	*net.TCPConn
	rc syscall.RawConn

	rmu, wmu                    sync.Mutex
	rd, wr                      rawOp
	readFn, writeFn, thenReadFn func(uintptr) bool
}

// rawOp is the state of a read or write in progress.
type rawOp struct {
	p   []byte // what is left to write, or where to read
	n   int
	err error
	req []byte // writeThenRead's request, until written
}

// wrapSock returns c with raw reads and writes when it is a TCP
// connection, and c itself otherwise.
func wrapSock(c net.Conn) net.Conn {
	if s := sockOf(c); s != nil {
		return s
	}
	return c
}

// sockOf returns c as a sockConn (wrapping a TCPConn), or nil when c is
// not a TCP connection.
func sockOf(c net.Conn) *sockConn {
	switch c := c.(type) {
	case *sockConn:
		return c
	case *net.TCPConn:
		rc, err := c.SyscallConn()
		if err != nil {
			return nil
		}
		s := &sockConn{TCPConn: c, rc: rc}
		s.readFn, s.writeFn, s.thenReadFn = s.readStep, s.writeStep, s.writeThenReadStep
		return s
	}
	return nil
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
	r, rerr := s.run(false, rawOp{p: p}, s.readFn)
	return s.readResult(r.n, r.err, rerr, p)
}

// run runs fn in one RawConn read (or write) with op as its state, one
// read (or write) at a time, and returns the state fn left.
func (s *sockConn) run(write bool, op rawOp, fn func(uintptr) bool) (rawOp, error) {
	mu, st := &s.rmu, &s.rd
	if write {
		mu, st = &s.wmu, &s.wr
	}
	mu.Lock()
	defer mu.Unlock()
	*st = op
	var err error
	if write {
		err = s.rc.Write(fn)
	} else {
		err = s.rc.Read(fn)
	}
	op, *st = *st, rawOp{}
	return op, err
}

func (s *sockConn) readStep(fd uintptr) bool {
	s.rd.n, s.rd.err = rawRead(int(fd), s.rd.p)
	return s.rd.err != syscall.EAGAIN
}

// readResult words the end of a read of p as net.Conn's Read does: rerr
// is the poller's (a deadline, the connection closed), err the read's.
func (s *sockConn) readResult(n int, err, rerr error, p []byte) (int, error) {
	switch {
	case rerr != nil:
		return 0, s.opError("read", rerr)
	case err != nil:
		return 0, s.opError("read", err)
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of p, waiting for the poller whenever the socket's
// buffer is full, as net.Conn's Write does.
func (s *sockConn) Write(p []byte) (int, error) {
	w, werr := s.run(true, rawOp{p: p}, s.writeFn)
	if werr != nil {
		return w.n, s.opError("write", werr)
	}
	if w.err != nil {
		return w.n, s.opError("write", w.err)
	}
	return w.n, nil
}

func (s *sockConn) writeStep(fd uintptr) bool {
	w := &s.wr
	for len(w.p) > 0 {
		m, e := rawWrite(int(fd), w.p[:min(len(w.p), maxRawIO)])
		switch e {
		case nil:
			w.n += m
			w.p = w.p[m:]
		case syscall.EAGAIN:
			return false
		default:
			w.err = e
			return true
		}
	}
	return true
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
