package h1

import (
	"errors"
	"io"
	"syscall"
	"time"
)

// One wait per request on a plain connection.
//
// A read on a net.Conn first tries the read, and waits for the poller only
// when that found nothing. On a keep-alive connection it almost always
// finds nothing: the client sends its next request only after it has the
// answer, which the edge has just written. So each request cost a read
// that returned EAGAIN, besides the one that read it; and a wait cannot be
// made first on a net.Conn, because each read begins by forgetting the
// readiness the poller saw before it (ready.go).
//
// serveSock serves a plain TCP connection from inside one
// syscall.RawConn.Read of its socket, which keeps the poller's readiness
// from its first call to its last. Its reads are made by nbReader, which
// never waits; when a read finds the socket empty, or the last one left it
// empty (it got less than it asked for) and an answer has gone out since,
// the function returns false and the RawConn waits for the socket to be
// readable before it calls it again. What arrived in between is not missed:
// its readiness is kept. The client watch reads a duplicate of the socket
// (watch.go), since this loop holds the socket's read lock; a request
// handed to net/http is handed over once the loop has let go of it.

// errWouldBlock is nbReader's EAGAIN: nothing to read yet.
var errWouldBlock = errors.New("h1: socket has nothing to read yet")

// nbReader reads a non-blocking socket without ever waiting.
type nbReader struct {
	fd int
	s  *sockConn
	// drained: the last read found the socket empty, or emptied it.
	drained bool
}

func (r *nbReader) Read(p []byte) (int, error) {
	if len(p) > maxRawIO {
		p = p[:maxRawIO]
	}
	n, err := rawRead(r.fd, p)
	switch {
	case err == syscall.EAGAIN:
		r.drained = true
		return 0, errWouldBlock
	case err != nil:
		return 0, r.s.opError("read", err)
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	r.drained = n < len(p)
	return n, nil
}

// serveSock is serve's loop for a plain TCP connection (see above). It
// keeps serve's rules: the header timeout from a request's first byte (from
// the accept for the first request), the idle timeout between requests,
// Shutdown's states, and a hand-over of what the fast path does not take.
func (fc *fastConn) serveSock(sc *sockConn) connNext {
	fc.sock = sc
	fc.nb = nbReader{s: sc}
	fc.br.Reset(&fc.nb)
	fc.setWaitDeadline(true)
	next := closeConn
	var (
		inHead, headDeadline, waitFirst bool
		start                           time.Time
	)
	_ = sc.rc.Read(func(fd uintptr) bool {
		fc.nb.fd = int(fd)
		for {
			if !inHead {
				if waitFirst {
					// The socket was empty after the last read and the
					// answer went out since: the next request cannot be
					// there before the poller says so.
					waitFirst = false
					return false
				}
				if fc.br.Buffered() == 0 {
					if _, err := fc.br.Peek(1); err == errWouldBlock {
						return false
					} else if err != nil {
						return true
					}
				}
				if !fc.state.CompareAndSwap(connIdle, connActive) && !fc.state.CompareAndSwap(connNew, connActive) {
					return true // Shutdown closed it
				}
				inHead, headDeadline, start = true, false, time.Now()
			}
			n, ok, more := fc.headIn(&fc.req.h)
			if more {
				if !headDeadline {
					fc.setHeadDeadline(start)
					headDeadline = true
				}
				if _, err := fc.br.Peek(fc.br.Buffered() + 1); err == errWouldBlock {
					return false
				} else if err != nil {
					return true
				}
				continue
			}
			inHead = false
			if next = fc.serveHead(n, ok, start); next != nextRequest {
				return true
			}
			fc.state.Store(connIdle)
			if fc.s.closing.Load() && fc.state.CompareAndSwap(connIdle, connClosed) {
				next = closeConn
				return true
			}
			fc.setWaitDeadline(false)
			waitFirst = fc.br.Buffered() == 0 && fc.nb.drained
		}
	})
	return next
}
