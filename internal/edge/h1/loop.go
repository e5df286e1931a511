package h1

import (
	"net"
	"syscall"
	"time"
)

// One wait per request on a client connection.
//
// A read on a net.Conn first tries the read, and waits for the poller only
// when that found nothing. On a keep-alive connection it almost always
// finds nothing: the client sends its next request only after it has the
// answer, which the edge has just written. So each request cost a read
// that returned EAGAIN, besides the one that read it; and a wait cannot be
// made first on a net.Conn, because each read begins by forgetting the
// readiness the poller saw before it (ready.go).
//
// serveLoop serves a client connection, plain or HTTPS, from inside one
// syscall.RawConn.Read of its socket, which keeps the poller's readiness
// from its first call of the function to its last. There the socket is
// read by loopConn, which never waits and skips the read altogether when
// an earlier one since the last wait found the socket empty or emptied it:
// what came after that read made the socket readable, and the poller has
// kept that. Instead it returns errWouldBlock, and the function returns
// false, so the RawConn waits for the socket before it calls it again.
// TLS takes errWouldBlock as a temporary error and keeps what it had read.
//
// While the loop runs, it alone reads the socket: the client watch waits
// on a duplicate of it (watchClient), and a request for net/http is handed
// over once the loop has let go of the socket.

// errWouldBlock is loopConn's EAGAIN: nothing to read until the poller
// says so. It is a temporary net.Error, which crypto/tls retries.
var errWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "h1: socket has nothing to read yet" }
func (wouldBlock) Timeout() bool   { return false }
func (wouldBlock) Temporary() bool { return true }

// loopConn is a client's TCP socket, read without waiting while serveLoop
// runs (on) and as a sockConn otherwise: in a TLS handshake, and once the
// connection is handed to net/http.
type loopConn struct {
	*sockConn
	fd int
	on bool
	// drained: since the last wait, a read found the socket empty or
	// emptied it.
	drained bool
}

// newLoopConn returns c ready for serveLoop, or nil when c is not a TCP
// socket.
func newLoopConn(c net.Conn) *loopConn {
	if s, ok := c.(*sockConn); ok {
		return &loopConn{sockConn: s}
	}
	return nil
}

func (c *loopConn) Read(p []byte) (int, error) {
	if !c.on {
		return c.sockConn.Read(p)
	}
	if c.drained {
		return 0, errWouldBlock
	}
	if len(p) > maxRawIO {
		p = p[:maxRawIO]
	}
	n, err := rawRead(c.fd, p)
	if err == syscall.EAGAIN {
		c.drained = true
		return 0, errWouldBlock
	}
	c.drained = n < len(p)
	return c.readResult(n, err, nil, p)
}

// serveLoop is serve's loop for a client on a TCP socket (see above). It
// keeps serve's rules: the header timeout from a request's first byte (from
// the accept for the first request), the idle timeout between requests,
// Shutdown's states, and a hand-over of what the fast path does not take.
func (fc *fastConn) serveLoop() connNext {
	lc := fc.loop
	fc.setWaitDeadline(true)
	next := closeConn
	var (
		inHead, headDeadline bool
		start                time.Time
	)
	_ = lc.rc.Read(func(fd uintptr) bool {
		lc.fd, lc.on, lc.drained = int(fd), true, false
		for {
			if !inHead {
				if fc.br.Buffered() == 0 {
					if _, err := fc.br.Peek(1); err == errWouldBlock {
						return false
					} else if err != nil {
						return true
					}
				}
				if !fc.activate() {
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
			next = closeConn // unless a later request says otherwise
			if !fc.rest() {
				return true
			}
			fc.setWaitDeadline(false)
		}
	})
	lc.on = false
	if next == handedOff {
		// serveHead left it to here: net/http reads the socket now.
		return fc.handOver()
	}
	return next
}
