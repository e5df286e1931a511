package h1

import (
	"bufio"
	"crypto/tls"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Connection states, for Shutdown.
const (
	connNew    int32 = iota // waiting for its first request
	connIdle                // waiting for its next request
	connActive              // reading or serving one
	connClosed              // closed by Shutdown
)

// fastConn is one client connection on the fast path.
type fastConn struct {
	s     *Server
	c     net.Conn // the client connection, a *tls.Conn for HTTPS
	raw   net.Conn // the socket under c, which Shutdown closes
	tls   *tls.ConnectionState
	br    *bufio.Reader
	bw    *bufio.Writer
	state atomic.Int32

	accepted time.Time
	remote   string // the client's address, as net/http's RemoteAddr
	clientIP string // for X-Forwarded-For, worked out once
	watch    clientWatch
	rdl      lazyDeadline // c's read deadline, as the loop last set it
	gone     atomic.Bool  // the client closed while its request waited
	req      Request
	target   Target
	x        fastExchange
	resp     fastResponse // a Responder's writer (respond.go)
	out      []byte       // the request head sent upstream
	// loop is the client's socket when serveLoop serves it (loop.go).
	loop *loopConn
}

// Buffers of fast connections. A request head that does not fit in the
// reader goes to net/http, which allows larger ones.
const fastBufSize = 4 << 10

var (
	fastReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, fastBufSize) }}
	fastWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, fastBufSize) }}
)

// outcome of one request on a fast connection.
type connNext int

const (
	nextRequest connNext = iota
	closeConn
	handedOff
)

func (fc *fastConn) serve() {
	fc.br = fastReaders.Get().(*bufio.Reader)
	fc.br.Reset(fc.c)
	fc.bw = fastWriters.Get().(*bufio.Writer)
	fc.bw.Reset(fc.c)
	fc.remote = fc.c.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(fc.remote); err == nil {
		fc.clientIP = host
	}
	next := closeConn
	defer func() {
		if v := recover(); v != nil {
			// A bug must cost one connection, not the edge, as in
			// net/http.
			fc.s.log().Error("edge fast path panicked; connection closed", "panic", v, "stack", string(debug.Stack()))
			fc.disarm() // before the reader goes back to its pool
			next = closeConn
		}
		fc.s.forget(fc)
		if t := fc.watch.timer; t != nil {
			t.Stop()
		}
		if next != handedOff {
			_ = fc.c.Close()
		}
		fc.br.Reset(nil)
		fastReaders.Put(fc.br)
		fc.bw.Reset(nil)
		fastWriters.Put(fc.bw)
	}()
	if fc.loop != nil {
		next = fc.serveLoop()
		return
	}
	for first := true; ; first = false {
		fc.setWaitDeadline(first)
		if _, err := fc.br.Peek(1); err != nil {
			return
		}
		if !fc.activate() {
			return // Shutdown closed it
		}
		if next = fc.serveOne(); next != nextRequest {
			return
		}
		if !fc.rest() {
			next = closeConn
			return
		}
	}
}

// activate marks the connection busy with a request whose first byte
// came; false when Shutdown closed it first.
func (fc *fastConn) activate() bool {
	return fc.state.CompareAndSwap(connIdle, connActive) || fc.state.CompareAndSwap(connNew, connActive)
}

// rest marks the connection idle after an answer; false when a Shutdown
// under way closes it instead.
func (fc *fastConn) rest() bool {
	fc.state.Store(connIdle)
	return !(fc.s.closing.Load() && fc.state.CompareAndSwap(connIdle, connClosed))
}

// serveOne reads a request head and serves it, or hands the connection
// over before consuming any of it.
func (fc *fastConn) serveOne() connNext {
	start := time.Now()
	n, ok := fc.readHead(&fc.req.h, start)
	return fc.serveHead(n, ok, start)
}

// serveHead serves the request whose head of n bytes readHead found (or
// not: see readHead) in the reader's buffer.
func (fc *fastConn) serveHead(n int, ok bool, start time.Time) connNext {
	req := &fc.req
	h := &req.h
	if n == 0 {
		if ok {
			return fc.handOver()
		}
		return closeConn
	}
	buf, _ := fc.br.Peek(n)
	req.Host, req.Path, req.Head, req.Start, req.TLS = string(h.host.of(buf)), targetPath(h.target.of(buf)), h.head, start, fc.tls != nil
	req.raw, req.remote, req.tls, req.hr, req.mk = buf[:n], fc.remote, fc.tls, nil, nil
	t := &fc.target
	*t = Target{}
	var ex Exchange
	if fc.s.Handler != nil {
		ex = fc.s.Handler.Route(req, t)
	}
	if ex == nil {
		return fc.handOver()
	}
	x := &fc.x
	*x = fastExchange{exchange: exchange{ex: ex, t: t, addr: t.Addr, head: h.head, start: start}, fc: fc, closeAfter: h.close}
	defer x.abort() // on a panic; a no-op once done
	var keep bool
	if rs, ok := ex.(Responder); ok {
		hr := req.HTTP() // before the head's bytes go
		_, _ = fc.br.Discard(n)
		fc.s.fastReqs.Add(1)
		keep = fc.respond(x, rs, hr)
	} else {
		fc.out = fc.appendUpstreamHead(fc.out[:0], h, buf, t.HostAs, t.Prefix)
		if h.accept.to > 0 {
			x.accept = string(h.accept.of(buf))
		}
		_, _ = fc.br.Discard(n) // the request is ours now
		fc.s.fastReqs.Add(1)

		fc.gone.Store(false)
		keep = x.proxy()
	}
	x.done = true
	ex.Done(&x.res)
	if !keep || x.closeAfter {
		_ = fc.bw.Flush()
		return closeConn
	}
	if fc.bw.Flush() != nil {
		return closeConn
	}
	return nextRequest
}

// readHead waits for a whole request head in the reader's buffer and
// returns its length. It returns 0 and true when the request must go to
// net/http, 0 and false when the connection failed.
func (fc *fastConn) readHead(h *reqHead, start time.Time) (int, bool) {
	deadline := false
	for {
		n, ok, more := fc.headIn(h)
		if !more {
			return n, ok
		}
		if !deadline {
			// The head did not arrive whole: from here on it has the
			// header timeout.
			fc.setHeadDeadline(start)
			deadline = true
		}
		if _, err := fc.br.Peek(fc.br.Buffered() + 1); err != nil {
			return 0, false
		}
	}
}

// headIn looks for a whole request head in the reader's buffer and returns
// its length; 0 and ok when the request must go to net/http; more when the
// rest of the head has yet to come.
func (fc *fastConn) headIn(h *reqHead) (n int, ok, more bool) {
	buf, _ := fc.br.Peek(fc.br.Buffered())
	n, v := parseRequest(buf, h, fc.s.TrustForwarded)
	switch {
	case v == headOK:
		return n, true, false
	case v == headUnsupported || len(buf) >= fc.br.Size():
		return 0, true, false
	}
	return 0, false, true
}

// setWaitDeadline bounds the wait for the next request: the first has the
// header timeout from the accept, as in net/http; later ones wait up to
// the idle timeout.
func (fc *fastConn) setWaitDeadline(first bool) {
	wait := fc.s.idleTimeout()
	if first {
		wait = fc.s.headerTimeout()
	}
	if now := time.Now(); wait > 0 {
		fc.setReadDeadline(now.Add(wait), now)
	} else {
		fc.setReadDeadline(time.Time{}, now)
	}
}

// setHeadDeadline bounds the rest of a head that did not arrive whole by
// the header timeout from start, its first byte.
func (fc *fastConn) setHeadDeadline(start time.Time) {
	if d := fc.s.headerTimeout(); d > 0 {
		fc.setReadDeadline(start.Add(d), time.Now())
	} else {
		fc.setReadDeadline(time.Time{}, start)
	}
}

// targetPath returns the decoded path of an origin-form target, as
// net/http's URL.Path has it.
func targetPath[T string | []byte](target T) string {
	for i := 0; i < len(target); i++ {
		if target[i] == '?' {
			target = target[:i]
			break
		}
	}
	raw := string(target)
	for i := 0; i < len(raw); i++ {
		if raw[i] == '%' {
			return unescapePath(raw)
		}
	}
	return raw
}

// unescapePath decodes %XX escapes; parseRequest has checked they are
// well formed.
func unescapePath(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// handOver passes the connection, with the bytes read but not consumed, to
// the net/http server, behind the framing checks (framing.go). Inside
// serveLoop's read of the socket it only says so: serveLoop hands over
// once it has let go of the socket.
func (fc *fastConn) handOver() connNext {
	if fc.loop != nil && fc.loop.on {
		return handedOff
	}
	if err := fc.bw.Flush(); err != nil {
		return closeConn
	}
	_ = fc.c.SetDeadline(time.Time{})
	var buffered []byte
	if n := fc.br.Buffered(); n > 0 {
		buffered, _ = fc.br.Peek(n)
	}
	// Counted as late until net/http has it, so a Shutdown never sees it
	// in neither place.
	fc.s.late.Add(1)
	fc.s.forget(fc)
	pc := newFramingConn(fc.c, buffered, fc.s.HTTP.MaxHeaderBytes, fc.s.log(), fc.s.errorPage())
	if fc.s.handoff.push(pc) {
		fc.s.late.Add(-1)
		return handedOff
	}
	if fc.s.closed.Load() {
		fc.s.late.Add(-1)
		return closeConn
	}
	go func() {
		defer fc.s.late.Add(-1)
		fc.s.serveLate(pc)
	}()
	return handedOff
}

// appendUpstreamHead appends the request head sent upstream: the client's
// request line and header lines, less hop-by-hop headers, with
// X-Forwarded-For, -Host and -Proto and X-Real-IP set as the edge's
// net/http path sets them. For an external origin hostAs replaces the Host
// and prefix, the origin URL's path, goes before the target, as the edge's
// net/http path does.
func (fc *fastConn) appendUpstreamHead(b []byte, h *reqHead, buf []byte, hostAs, prefix string) []byte {
	if h.head {
		b = append(b, "HEAD "...)
	} else {
		b = append(b, "GET "...)
	}
	b = append(b, prefix...)
	b = append(b, h.target.of(buf)...)
	b = append(b, " HTTP/1.1\r\n"...)
	for i, l := range h.lines[:h.nlines] {
		if i == h.hostLine && hostAs != "" {
			b = append(b, "Host: "...)
			b = append(b, hostAs...)
			b = append(b, "\r\n"...)
			continue
		}
		b = append(b, l.of(buf)...)
	}
	if fc.clientIP != "" {
		b = append(b, "X-Forwarded-For: "...)
		for _, v := range h.xff[:h.nxff] {
			b = append(b, v.of(buf)...)
			b = append(b, ", "...)
		}
		b = append(b, fc.clientIP...)
		b = append(b, "\r\n"...)
	}
	return appendForwarded(b, fc.clientIP, h.realIP, h.xfProto, h.xfHost, fc.tls != nil, h.host.of(buf))
}

// appendForwarded appends X-Real-IP (with a clientIP), X-Forwarded-Proto
// and X-Forwarded-Host as the edge sets them, but those the client's own
// replace (kept from a client the edge trusts), and the blank line.
func appendForwarded[T string | []byte](b []byte, clientIP string, realIP, xfProto, xfHost, overTLS bool, host T) []byte {
	if clientIP != "" && !realIP {
		b = append(b, "X-Real-IP: "...)
		b = append(b, clientIP...)
		b = append(b, "\r\n"...)
	}
	switch {
	case xfProto:
	case overTLS:
		b = append(b, "X-Forwarded-Proto: https\r\n"...)
	default:
		b = append(b, "X-Forwarded-Proto: http\r\n"...)
	}
	if !xfHost {
		b = append(b, "X-Forwarded-Host: "...)
		b = append(b, host...)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}
