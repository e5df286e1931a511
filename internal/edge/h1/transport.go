package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Transport is the transport the edge sends requests upstream with, on
// both paths (the fast path and net/http's ReverseProxy). A request without
// a body that may be sent twice (GET, HEAD, OPTIONS, TRACE),
// to a plain HTTP origin, takes the short path: it is written and its answer
// read in the calling goroutine, on a pooled keep-alive connection. That
// spares net/http.Transport's two goroutines per connection and the four
// goroutine hand-offs per request between them, which cost the edge about a
// fifth of its CPU per request under load on loopback.
//
// Everything else goes to the fallback http.Transport: a body must be
// streamed while the answer is read, an upgrade (WebSocket) keeps its
// connection, HTTPS may speak HTTP/2, and a POST must not be sent again when
// a kept-alive connection turns out closed.
type Transport struct {
	fallback *http.Transport
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	pool     connPool
}

var _ http.RoundTripper = (*Transport)(nil)

// maxResponseHeaderBytes bounds the status line and headers of an answer,
// as http.Transport does by default.
const maxResponseHeaderBytes = 10 << 20

// errSwitchedProtocols is an answer 101 to a request that asked for no
// upgrade.
var errSwitchedProtocols = errors.New("origin switched protocols on a request that did not ask to")

// aLongTimeAgo is a deadline in the past: setting it wakes a blocked read
// or write at once.
var aLongTimeAgo = time.Unix(1, 0)

// NewTransport returns the transport that sends what the short path cannot
// take to fallback, and dials with fallback's DialContext. Its pool keeps
// fallback's MaxIdleConnsPerHost connections per address, each for up to
// IdleConnTimeout.
func NewTransport(fallback *http.Transport) *Transport {
	return &Transport{
		fallback: fallback,
		dial:     fallback.DialContext,
		pool:     connPool{maxPerHost: fallback.MaxIdleConnsPerHost, idleTimeout: fallback.IdleConnTimeout},
	}
}

// CloseIdleConnections closes the idle connections of both paths.
func (t *Transport) CloseIdleConnections() {
	t.pool.closeIdle()
	t.fallback.CloseIdleConnections()
}

// shortPath reports whether req can take the short path.
func shortPath(req *http.Request) bool {
	if req.URL.Scheme != "http" || req.Body != nil && req.Body != http.NoBody || req.ContentLength > 0 ||
		len(req.TransferEncoding) > 0 || len(req.Trailer) > 0 {
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
	default:
		return false
	}
	// ReverseProxy keeps Upgrade only on a request that asks to switch
	// protocols.
	_, upgrade := req.Header["Upgrade"]
	return !upgrade
}

func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !shortPath(req) {
		return t.fallback.RoundTrip(req)
	}
	ctx := req.Context()
	addr := CanonicalAddr(req.URL.Host)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pc := t.pool.get(addr)
		if pc == nil {
			c, err := t.dial(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			pc = newUpConn(c, addr)
		}
		res, stale, err := t.send(ctx, pc, req)
		if err == nil {
			return res, nil
		}
		// A kept-alive connection the origin had closed fails before the
		// first byte of an answer: the request is sent again on another
		// one, as http.Transport does for requests that may be repeated.
		if !stale || ctx.Err() != nil {
			return nil, err
		}
	}
}

// send writes req on pc and reads the head of its answer. On error pc is
// closed, and stale reports whether the error is that of a kept-alive
// connection the origin had closed: it broke before any byte of an answer.
func (t *Transport) send(ctx context.Context, pc *upConn, req *http.Request) (res *http.Response, stale bool, err error) {
	stop := afterFunc(ctx, pc.abort)
	fail := func(err error, onConn bool) (*http.Response, bool, error) {
		stop()
		pc.conn.Close()
		if ctx.Err() != nil {
			// The deadline set by the cancellation broke the
			// connection; the context says why.
			return nil, false, fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		return nil, onConn && pc.reused && pc.got == 0, err
	}
	pc.got = 0
	pc.setDeadline(time.Time{}, time.Time{}) // the fast path's may be left
	if err := writeRequest(pc.bw, req); err != nil {
		// A request it cannot write, or a head larger than the buffer
		// that met a closed connection on the way.
		var op *net.OpError
		return fail(err, errors.As(err, &op))
	}
	if err := pc.bw.Flush(); err != nil {
		return fail(err, true)
	}
	pc.limit = maxResponseHeaderBytes
	for {
		if res, err = readResponse(pc, req); err != nil {
			return fail(err, true)
		}
		if res.StatusCode < 100 || res.StatusCode > 199 || res.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		// An informational answer (103 Early Hints): ReverseProxy passes
		// it on through its trace; the final answer follows.
		if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(res.StatusCode, textproto.MIMEHeader(res.Header)); err != nil {
				return fail(err, false)
			}
			pc.limit = maxResponseHeaderBytes
		}
	}
	pc.limit = -1
	if res.StatusCode == http.StatusSwitchingProtocols {
		return fail(errSwitchedProtocols, false)
	}
	// After HEAD the connection is not reused: an origin that sends a body
	// anyway would leave it out of step, and nothing reads the stray bytes.
	keep := !res.Close && !req.Close && req.Method != http.MethodHead
	b := &upBody{pool: &t.pool, pc: pc, rc: res.Body, stop: stop, ctx: ctx, keep: keep}
	if res.Body == http.NoBody {
		b.finish(true)
		return res, false, nil
	}
	res.Body = b
	return res, false, nil
}

// upBody is the body of an answer on the short path. Its connection goes
// back to the pool when the body has been read to its end, and is closed
// when the body is closed before that.
type upBody struct {
	pool *connPool
	pc   *upConn
	rc   io.ReadCloser
	stop func() bool
	ctx  context.Context
	keep bool // the connection may carry another request after this one

	done atomic.Bool
	eof  bool
}

var errBodyClosed = errors.New("read on a closed response body")

func (b *upBody) Read(p []byte) (int, error) {
	if b.done.Load() {
		if b.eof {
			return 0, io.EOF
		}
		return 0, errBodyClosed
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
		b.finish(true)
	case err != nil:
		if cerr := b.ctx.Err(); cerr != nil {
			// Cancelled (the client left, or the route's timeout):
			// ReverseProxy logs any other error.
			err = cerr
		}
		b.finish(false)
	}
	return n, err
}

func (b *upBody) Close() error {
	b.finish(false)
	return nil
}

// finish releases the connection once: to the pool after a complete answer
// whose connection stays open and was not interrupted, else closed.
func (b *upBody) finish(complete bool) {
	if !b.done.CompareAndSwap(false, true) {
		return
	}
	// stop reports false when the cancellation already ran (or runs): the
	// connection's deadline is in the past.
	if b.stop() && complete && b.keep {
		b.pool.put(b.pc)
		return
	}
	b.pc.conn.Close()
}

// upConn is a kept-alive connection to an origin.
type upConn struct {
	conn   net.Conn
	addr   string
	br     *bufio.Reader
	bw     *bufio.Writer
	reused bool  // it carried a request before this one
	got    int64 // bytes read for the current request
	// limit is how many more bytes the answer's head may take; negative
	// once the head is read.
	limit  int64
	idleAt int64 // clock() when it went back to the pool
	// abort wakes a blocked read or write when the request is cancelled;
	// made once, not per request.
	abort func()
	// sock is conn's socket, for a request head written by the next Read
	// (sendHead); nil when conn is not a TCP connection.
	sock    *sockConn
	pending []byte // the request head the next Read writes first
	// dl is conn's deadline as its owner last set it (deadline.go); the
	// cancellation's abort, which sets one from another goroutine, leaves
	// a connection that is not used again.
	dl lazyDeadline
}

func newUpConn(c net.Conn, addr string) *upConn {
	c = wrapSock(c)
	pc := &upConn{conn: c, addr: addr, limit: -1}
	pc.br = bufio.NewReaderSize(pc, 4<<10)
	pc.bw = bufio.NewWriterSize(c, 4<<10)
	pc.abort = func() { _ = c.SetDeadline(aLongTimeAgo) }
	pc.sock = sockOf(c)
	return pc
}

// sendHead sends b, a request head without a body: at once, or, on a TCP
// connection back from the pool within the last second, from the next Read,
// which then waits for the answer before it reads (ready.go). A failed
// write is that Read's error.
//
// Waiting first would forget an end of the connection that came before
// the request was written: a peer that closed wholly resets the request,
// which ends the wait, but one that only half-closed is not heard from again
// until it closes. Connections idle for longer, and new ones, are written
// at once and read as usual.
func (pc *upConn) sendHead(b []byte) error {
	if pc.sock == nil || pc.br.Buffered() > 0 || !pc.reused || clock()-pc.idleAt > int64(time.Second) {
		_, err := pc.conn.Write(b)
		return err
	}
	pc.pending = b
	return nil
}

// Read reads from the connection for br, bounding the answer's head.
func (pc *upConn) Read(p []byte) (int, error) {
	if pc.limit >= 0 {
		if pc.limit == 0 {
			return 0, fmt.Errorf("origin's response headers exceeded %d bytes", maxResponseHeaderBytes)
		}
		if int64(len(p)) > pc.limit {
			p = p[:pc.limit]
		}
	}
	var n int
	var err error
	if b := pc.pending; b != nil {
		pc.pending = nil
		n, err = pc.sock.writeThenRead(b, p)
	} else {
		n, err = pc.conn.Read(p)
	}
	pc.got += int64(n)
	if pc.limit > 0 {
		pc.limit -= int64(n)
	}
	return n, err
}

// connPool holds idle connections by address, most recently used on top:
// the busy ones stay warm and the ones at the bottom age out.
type connPool struct {
	maxPerHost  int
	idleTimeout time.Duration

	mu      sync.Mutex
	idle    map[string][]*upConn
	sweeper *time.Timer // runs while idle connections wait
}

// get returns an idle connection to addr, or nil when there is none.
func (p *connPool) get(addr string) *upConn {
	p.mu.Lock()
	conns := p.idle[addr]
	n := len(conns)
	if n == 0 {
		p.mu.Unlock()
		return nil
	}
	pc := conns[n-1]
	conns[n-1] = nil
	p.idle[addr] = conns[:n-1]
	p.mu.Unlock()
	if p.idleTimeout > 0 && clock()-pc.idleAt > int64(p.idleTimeout) {
		pc.conn.Close()
		return p.get(addr)
	}
	pc.reused = true
	return pc
}

func (p *connPool) put(pc *upConn) {
	if pc.br.Buffered() > 0 {
		// The origin sent more than its answer: the connection is out of
		// step.
		pc.conn.Close()
		return
	}
	pc.idleAt = clock()
	p.mu.Lock()
	if p.idle == nil {
		p.idle = make(map[string][]*upConn)
	}
	conns := p.idle[pc.addr]
	if p.maxPerHost > 0 && len(conns) >= p.maxPerHost {
		p.mu.Unlock()
		pc.conn.Close()
		return
	}
	p.idle[pc.addr] = append(conns, pc)
	if p.sweeper == nil && p.idleTimeout > 0 {
		p.sweeper = time.AfterFunc(p.idleTimeout, p.sweep)
	}
	p.mu.Unlock()
}

// sweep closes the connections idle for longer than idleTimeout, so that
// an origin that gets no more requests does not keep sockets open.
func (p *connPool) sweep() {
	var old []*upConn
	now := clock()
	p.mu.Lock()
	for addr, conns := range p.idle {
		i := 0
		for i < len(conns) && now-conns[i].idleAt > int64(p.idleTimeout) {
			i++
		}
		old = append(old, conns[:i]...)
		if i == len(conns) {
			delete(p.idle, addr)
			continue
		}
		p.idle[addr] = append(conns[:0], conns[i:]...)
		clear(conns[len(conns)-i:])
	}
	if len(p.idle) > 0 {
		p.sweeper.Reset(p.idleTimeout / 2)
	} else {
		p.sweeper = nil
	}
	p.mu.Unlock()
	for _, pc := range old {
		pc.conn.Close()
	}
}

func (p *connPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, conns := range idle {
		for _, pc := range conns {
			pc.conn.Close()
		}
	}
}

// CanonicalAddr adds the default port (80) to a URL host that has none.
func CanonicalAddr(host string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	if len(host) > 0 && host[0] == '[' && host[len(host)-1] == ']' {
		return host + ":80"
	}
	return net.JoinHostPort(host, "80")
}

// clockBase anchors clock.
var clockBase = time.Now()

// clock is a monotonic reading in nanoseconds, cheaper to keep and compare
// than a time.Time.
func clock() int64 { return int64(time.Since(clockBase)) }

// reqWriteExclude are the fields Request.Write writes itself, or not.
var reqWriteExclude = map[string]bool{"Host": true, "User-Agent": true, "Content-Length": true, "Transfer-Encoding": true, "Trailer": true}

// writeRequest writes a GET or HEAD without a body as req.Write writes
// it, byte for byte, without its fmt calls (a tenth of the edge's CPU per
// proxied request on the net/http path); anything else, or a host or
// target that needs req.Write's conversions or checks, goes to req.Write.
func writeRequest(bw *bufio.Writer, req *http.Request) error {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead || !plainHost(host) || req.Body != nil && req.Body != http.NoBody ||
		req.ContentLength != 0 || len(req.TransferEncoding) > 0 || req.Trailer != nil {
		return req.Write(bw)
	}
	if trace := httptrace.ContextClientTrace(req.Context()); trace != nil &&
		(trace.WroteHeaderField != nil || trace.WroteHeaders != nil || trace.WroteRequest != nil) {
		return req.Write(bw)
	}
	ruri := req.URL.RequestURI()
	for i := 0; i < len(ruri); i++ {
		if c := ruri[i]; c < ' ' || c == 0x7f {
			return req.Write(bw)
		}
	}
	_, _ = bw.WriteString(req.Method)
	_ = bw.WriteByte(' ')
	_, _ = bw.WriteString(ruri)
	_, _ = bw.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = bw.WriteString(host)
	_, _ = bw.WriteString("\r\n")
	ua := "Go-http-client/1.1" // net/http's default
	if _, ok := req.Header["User-Agent"]; ok {
		ua = req.Header.Get("User-Agent")
	}
	if ua != "" {
		_, _ = bw.WriteString("User-Agent: ")
		_, _ = bw.WriteString(textproto.TrimString(newlineToSpace.Replace(ua)))
		_, _ = bw.WriteString("\r\n")
	}
	if req.Close && !hasCloseToken(req.Header.Get("Connection")) {
		_, _ = bw.WriteString("Connection: close\r\n")
	}
	writeFields(bw, req.Header, reqWriteExclude)
	_, err := bw.WriteString("\r\n")
	return err
}

// writeFields writes a header's fields as Header.WriteSubset does (sorted
// by name, invalid names dropped, values cleaned), without its pooled
// sorter and map of exclusions.
func writeFields(bw *bufio.Writer, h http.Header, exclude map[string]bool) {
	var arr [32]string
	keys := arr[:0]
	for k := range h {
		if !exclude[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range h[k] {
			v = textproto.TrimString(newlineToSpace.Replace(v))
			_, _ = bw.WriteString(k)
			_, _ = bw.WriteString(": ")
			_, _ = bw.WriteString(v)
			_, _ = bw.WriteString("\r\n")
		}
	}
}

// plainHost reports whether a Host value goes out as it is: printable
// ASCII that net/http accepts, with no zone (which Request.Write drops).
func plainHost(h string) bool {
	if h == "" || strings.IndexByte(h, '%') >= 0 || !httpguts.ValidHostHeader(h) {
		return false
	}
	for i := 0; i < len(h); i++ {
		if h[i] <= ' ' || h[i] >= 0x7f {
			return false
		}
	}
	return true
}

// hasCloseToken reports whether a Connection value lists close, as
// net/http's hasToken does.
func hasCloseToken(v string) bool {
	const token = "close"
	if v == token {
		return true
	}
	boundary := func(b byte) bool { return b == ' ' || b == ',' || b == '\t' }
	for sp := 0; sp+len(token) <= len(v); sp++ {
		if b := v[sp]; b != token[0] && b|0x20 != token[0] {
			continue
		}
		if sp > 0 && !boundary(v[sp-1]) {
			continue
		}
		if end := sp + len(token); end != len(v) && !boundary(v[end]) {
			continue
		}
		if strings.EqualFold(v[sp:sp+len(token)], token) {
			return true
		}
	}
	return false
}

// newlineToSpace is how net/http cleans a User-Agent value.
var newlineToSpace = strings.NewReplacer("\n", " ", "\r", " ")
