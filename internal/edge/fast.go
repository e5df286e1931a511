package edge

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves an Edge on plain-HTTP listeners with a fast path: a loop of
// its own per connection reads each request head, and proxies the common
// request (GET or HEAD without a body, for a service's own host) to an
// instance itself, writing the answer straight back. Everything else
// (entrypoints, bodies, upgrades, requests the edge answers itself, heads
// its strict parser does not take) is handed, with the connection, to the
// net/http server HTTP, which keeps the connection from then on.
//
// The fast path exists for CPU per request: net/http's server and
// httputil.ReverseProxy cost about twice what the proxying itself does (a
// header map per message, a context and a background read per request, a
// goroutine hand-off per read). Behaviour is the same on both paths: the
// same balancing, retries and ejection, X-Forwarded-* headers, timeouts,
// statistics, metrics and access log.
//
// Every HTTP/1.x connection net/http serves, handed over or HTTPS, reads
// through a framingConn (framing.go), which refuses ambiguous framing
// before net/http sees it.
type Server struct {
	// Edge answers the requests the fast path takes.
	Edge *Edge
	// HTTP serves the connections handed over, with its Handler (the Edge,
	// or a handler that wraps it). Its ReadHeaderTimeout and IdleTimeout
	// (or ReadTimeout) bound the fast path too. Server chains its own
	// function in front of HTTP.ConnState, to follow the connections it
	// checks; ServeTLS sets HTTP.TLSConfig to a copy offering HTTP/2.
	HTTP *http.Server
	// Divert, when set, reports requests that must go to HTTP.Handler
	// although the fast path could take them: hosts and paths the wrapping
	// handler answers itself (ACME challenges, redirects to HTTPS).
	Divert func(host, path string) bool

	mu       sync.Mutex
	lns      map[net.Listener]struct{}
	conns    map[*fastConn]struct{}
	shaking  map[net.Conn]time.Time // HTTPS connections in their handshake, with when they were accepted
	handoff  *handoffListener
	tlsCfg   *tls.Config // of ServeTLS's handshakes
	closing  atomic.Bool
	closed   atomic.Bool  // Close: nothing more is served
	late     atomic.Int64 // connections served by serveLate
	fastReqs atomic.Int64 // requests the fast path answered
}

// ErrNoTLSConfig is returned by ServeTLS when HTTP has no TLSConfig.
var ErrNoTLSConfig = errors.New("edge: ServeTLS needs HTTP.TLSConfig")

// Serve accepts connections on ln until it is closed or the server shuts
// down, when it returns http.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	return s.serve(ln, false)
}

// ServeTLS accepts HTTPS connections on ln, with HTTP.TLSConfig, until it
// is closed or the server shuts down, when it returns
// http.ErrServerClosed. It has no fast path. It makes the TLS handshake
// itself, instead of net/http's ServeTLS, so that an HTTP/1.x connection
// reaches net/http behind the framing checks (framing.go); an HTTP/2
// connection, whose framing is binary, goes to net/http as it is. A
// Server serves either plain listeners or HTTPS ones, not both.
func (s *Server) ServeTLS(ln net.Listener) error {
	return s.serve(ln, true)
}

func (s *Server) serve(ln net.Listener, useTLS bool) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	if useTLS && s.tlsCfg == nil {
		if s.HTTP.TLSConfig == nil {
			s.mu.Unlock()
			return ErrNoTLSConfig
		}
		s.tlsCfg = handshakeConfig(s.HTTP)
		if s.handoff == nil {
			// net/http sets up HTTP/2 for the connections that
			// negotiated it only when its TLSConfig offers it.
			s.HTTP.TLSConfig = s.tlsCfg.Clone()
		}
	}
	if s.handoff == nil {
		s.handoff = newHandoffListener(ln.Addr())
		s.conns = make(map[*fastConn]struct{})
		s.shaking = make(map[net.Conn]time.Time)
		s.lns = make(map[net.Listener]struct{})
		prev := s.HTTP.ConnState
		s.HTTP.ConnState = func(c net.Conn, st http.ConnState) {
			if f, ok := c.(framed); ok {
				f.observe(st)
			}
			if prev != nil {
				prev(c, st)
			}
		}
		go func() { _ = s.HTTP.Serve(s.handoff) }()
	}
	tlsCfg := s.tlsCfg
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
	}()

	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		delay = 0
		if useTLS {
			if !s.track(c) {
				c.Close()
				return http.ErrServerClosed
			}
			go s.handshake(c, tlsCfg)
			continue
		}
		fc := s.newConn(c)
		if fc == nil {
			c.Close()
			return http.ErrServerClosed
		}
		go fc.serve()
	}
}

// handshakeConfig is the TLS configuration of ServeTLS's handshakes: hs's,
// offering HTTP/2 and HTTP/1.1 as net/http's ServeTLS does.
func handshakeConfig(hs *http.Server) *tls.Config {
	cfg := hs.TLSConfig.Clone()
	h2 := hs.TLSNextProto == nil || hs.TLSNextProto["h2"] != nil // a non-nil empty map turns HTTP/2 off
	if h2 && !slices.Contains(cfg.NextProtos, "h2") {
		cfg.NextProtos = append([]string{"h2"}, cfg.NextProtos...)
	}
	if !slices.Contains(cfg.NextProtos, "http/1.1") {
		cfg.NextProtos = append(cfg.NextProtos, "http/1.1")
	}
	return cfg
}

// track counts an HTTPS connection in its handshake, for Close.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.shaking[c] = time.Now()
	return true
}

// handshake makes the TLS handshake of c, bounded as net/http bounds it,
// and hands the connection to net/http.
func (s *Server) handshake(c net.Conn, cfg *tls.Config) {
	tc := tls.Server(c, cfg)
	if d := s.tlsHandshakeTimeout(); d > 0 {
		_ = c.SetDeadline(time.Now().Add(d))
	}
	err := tc.Handshake()
	if err == nil {
		// Counted as late until net/http has it, so a Shutdown never
		// sees it in neither place.
		s.late.Add(1)
	}
	s.mu.Lock()
	delete(s.shaking, c)
	s.mu.Unlock()
	if err != nil {
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
			// As net/http: a plain-HTTP client on the HTTPS port.
			_ = re.Conn.SetDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		s.Edge.log.Debug("TLS handshake failed", "client", c.RemoteAddr().String(), "err", err)
		_ = c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	var hc net.Conn = tc
	switch tc.ConnectionState().NegotiatedProtocol {
	case "", "http/1.1", "http/1.0":
		hc = newFramingConn(tc, nil, s.HTTP.MaxHeaderBytes, s.Edge.log)
	}
	if s.handoff.push(hc) {
		s.late.Add(-1)
		return
	}
	if s.closed.Load() {
		s.late.Add(-1)
		_ = c.Close()
		return
	}
	// Its client connected before the Shutdown: answered all the same,
	// as handOver does.
	defer s.late.Add(-1)
	s.serveLate(hc)
}

// looksLikeHTTP reports whether a TLS record header is the start of a
// plain-HTTP request, as net/http tells it.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// tlsHandshakeTimeout is net/http's bound of a handshake: the least of its
// read, read-header and write timeouts.
func (s *Server) tlsHandshakeTimeout() time.Duration {
	var d time.Duration
	for _, v := range [...]time.Duration{s.HTTP.ReadTimeout, s.HTTP.ReadHeaderTimeout, s.HTTP.WriteTimeout} {
		if v > 0 && (d == 0 || v < d) {
			d = v
		}
	}
	return d
}

// Shutdown stops accepting, closes idle connections, and waits for the
// requests in flight to finish or ctx to end, on both paths. As in
// net/http, a connection accepted but not yet read from gets its first
// request answered (its client connected before the shutdown and may not
// retry), while one idle between requests is closed at once (clients
// retry a request on a kept-alive connection closed under them).
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopAccepting()
	errc := make(chan error, 1)
	go func() { errc <- s.HTTP.Shutdown(ctx) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !s.closeIdle(false) || s.late.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return <-errc
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.closed.Store(true)
	s.stopAccepting()
	s.closeIdle(true)
	return s.HTTP.Close()
}

func (s *Server) stopAccepting() {
	s.closing.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	for ln := range s.lns {
		_ = ln.Close()
	}
	if s.handoff == nil {
		s.handoff = newHandoffListener(nil)
		_ = s.handoff.Close()
	}
}

// closeIdle closes the fast connections waiting for a request (all of
// them with force) and reports whether none is left. A new connection
// counts as idle only once it has waited newConnGrace for its first
// request, as in net/http.
func (s *Server) closeIdle(force bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for fc := range s.conns {
		if fc.state.CompareAndSwap(connIdle, connClosed) ||
			(time.Since(fc.accepted) > newConnGrace && fc.state.CompareAndSwap(connNew, connClosed)) || force {
			_ = fc.c.Close()
		}
	}
	for c, accepted := range s.shaking {
		// No request yet; but its client connected, so it gets the
		// grace of a new connection, as in net/http.
		if force || time.Since(accepted) > newConnGrace {
			_ = c.Close()
		}
	}
	return len(s.conns) == 0 && len(s.shaking) == 0
}

// newConnGrace is how long Shutdown waits for a new connection's first
// request, as net/http does.
const newConnGrace = 5 * time.Second

func (s *Server) newConn(c net.Conn) *fastConn {
	fc := &fastConn{s: s, e: s.Edge, c: c, accepted: time.Now()}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Accepted during a Shutdown, it is served all the same: its client
	// is connected.
	if s.closed.Load() {
		return nil
	}
	s.conns[fc] = struct{}{}
	return fc
}

func (s *Server) forget(fc *fastConn) {
	s.mu.Lock()
	delete(s.conns, fc)
	s.mu.Unlock()
}

// idleTimeout is how long a connection may wait for its next request, as
// net/http reads it (0: no limit).
func (s *Server) idleTimeout() time.Duration {
	if d := s.HTTP.IdleTimeout; d != 0 {
		return max(d, 0)
	}
	return max(s.HTTP.ReadTimeout, 0)
}

func (s *Server) headerTimeout() time.Duration {
	if d := s.HTTP.ReadHeaderTimeout; d != 0 {
		return max(d, 0)
	}
	return max(s.HTTP.ReadTimeout, 0)
}

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
	e     *Edge
	c     net.Conn
	br    *bufio.Reader
	bw    *bufio.Writer
	state atomic.Int32

	accepted time.Time
	clientIP string // for X-Forwarded-For, worked out once
	watch    clientWatch
	gone     atomic.Bool // the client closed while its request waited
	req      reqHead
	out      []byte // the request head sent to the instance
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
	if host, _, err := net.SplitHostPort(fc.c.RemoteAddr().String()); err == nil {
		fc.clientIP = host
	}
	next := closeConn
	defer func() {
		if v := recover(); v != nil {
			// A bug must cost one connection, not the edge, as in
			// net/http.
			fc.e.log.Error("edge fast path panicked; connection closed", "panic", v, "stack", string(debug.Stack()))
			fc.disarm() // before the reader goes back to its pool
			next = closeConn
		}
		fc.s.forget(fc)
		if next != handedOff {
			_ = fc.c.Close()
		}
		fc.br.Reset(nil)
		fastReaders.Put(fc.br)
		fc.bw.Reset(nil)
		fastWriters.Put(fc.bw)
	}()
	for first := true; ; first = false {
		// The first request has the header timeout from the accept, as
		// in net/http; later ones wait up to the idle timeout.
		wait := fc.s.idleTimeout()
		if first {
			wait = fc.s.headerTimeout()
		}
		if wait > 0 {
			_ = fc.c.SetReadDeadline(time.Now().Add(wait))
		} else {
			_ = fc.c.SetReadDeadline(time.Time{})
		}
		if _, err := fc.br.Peek(1); err != nil {
			return
		}
		if !fc.state.CompareAndSwap(connIdle, connActive) && !fc.state.CompareAndSwap(connNew, connActive) {
			return // Shutdown closed it
		}
		if next = fc.serveOne(); next != nextRequest {
			return
		}
		fc.state.Store(connIdle)
		if fc.s.closing.Load() && fc.state.CompareAndSwap(connIdle, connClosed) {
			next = closeConn
			return
		}
	}
}

// serveOne reads a request head and serves it, or hands the connection
// over before consuming any of it.
func (fc *fastConn) serveOne() connNext {
	start := time.Now()
	h := &fc.req
	n, ok := fc.readHead(h, start)
	if n == 0 {
		if ok {
			return fc.handOver()
		}
		return closeConn
	}
	buf, _ := fc.br.Peek(n)
	target := h.target.of(buf)
	path := targetPath(target)
	host := normalizeHost(string(h.host.of(buf)))
	if d := fc.s.Divert; d != nil && d(host, path) {
		return fc.handOver()
	}
	e := fc.e
	ps := &proxyState{host: host, path: path}
	defer ps.release() // also on a panic; a no-op once released
	x := fastExchange{fc: fc, ps: ps, up: e.up, start: start}
	if s := e.snap.Load(); s.epHosts[host] != nil {
		if !x.planEntrypoint(s, s.epHosts[host]) {
			return fc.handOver() // cache, shares, error pages, failover, HTTPS origins
		}
	} else {
		rt, t, why := e.acquire(host, path, &ps.tried)
		if why != acquired {
			return fc.handOver() // the edge's own answers, holds and queues
		}
		if rt.sticky != "" {
			t.st.inflight.Add(-1)
			return fc.handOver() // the cookie is read and set by ServeHTTP
		}
		ps.route, ps.target, ps.timeout = rt, t, rt.timeout
	}
	var hostAs, prefix string
	if o := x.origin; o != nil && o.url != nil {
		hostAs, prefix = o.url.Host, strings.TrimSuffix(o.url.EscapedPath(), "/")
	}
	fc.out = fc.appendUpstreamHead(fc.out[:0], h, buf, hostAs, prefix)
	var accept string
	if h.accept.to > 0 {
		accept = string(h.accept.of(buf))
	}
	x.head, x.accept, x.closeAfter = h.head, accept, h.close
	_, _ = fc.br.Discard(n) // the request is ours now
	fc.s.fastReqs.Add(1)

	fc.gone.Store(false)
	if x.ep != nil && x.ep.ls != nil {
		x.ep.ls.inflight.Inc()
		defer x.ep.ls.inflight.Dec()
	}
	keep := x.proxy()
	ps.observe(start)
	ps.release()
	if e.tracking() {
		e.recordFast(ps, &x)
	}
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
		buf, _ := fc.br.Peek(fc.br.Buffered())
		n, v := parseRequest(buf, h, fc.e.trustForwarded)
		switch {
		case v == headOK:
			return n, true
		case v == headUnsupported || len(buf) >= fc.br.Size():
			return 0, true
		}
		if !deadline {
			// The head did not arrive whole: from here on it has the
			// header timeout.
			if d := fc.s.headerTimeout(); d > 0 {
				_ = fc.c.SetReadDeadline(start.Add(d))
			} else {
				_ = fc.c.SetReadDeadline(time.Time{})
			}
			deadline = true
		}
		if _, err := fc.br.Peek(len(buf) + 1); err != nil {
			return 0, false
		}
	}
}

// targetPath returns the decoded path of an origin-form target, as
// net/http's URL.Path has it.
func targetPath(target []byte) string {
	for i, c := range target {
		if c == '?' {
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
// the net/http server, behind the framing checks (framing.go).
func (fc *fastConn) handOver() connNext {
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
	pc := newFramingConn(fc.c, buffered, fc.s.HTTP.MaxHeaderBytes, fc.e.log)
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

// serveLate serves a connection handed over after net/http stopped
// accepting, during a Shutdown: its client connected before the shutdown,
// so its request is answered rather than dropped, by a server of its own
// that closes the connection after the answer.
func (s *Server) serveLate(c net.Conn) {
	l := newHandoffListener(c.LocalAddr())
	srv := &http.Server{
		Handler:           s.HTTP.Handler,
		ReadHeaderTimeout: s.HTTP.ReadHeaderTimeout,
		ReadTimeout:       s.HTTP.ReadTimeout,
		WriteTimeout:      s.HTTP.WriteTimeout,
		ErrorLog:          s.HTTP.ErrorLog,
		ConnState: func(c net.Conn, st http.ConnState) {
			if f, ok := c.(framed); ok {
				f.observe(st)
			}
			if st == http.StateClosed || st == http.StateHijacked {
				_ = l.Close()
			}
		},
	}
	srv.SetKeepAlivesEnabled(false)
	go l.push(c)
	_ = srv.Serve(l)
}

// appendUpstreamHead appends the request head sent to the instance: the
// client's request line and header lines, less hop-by-hop headers, with
// X-Forwarded-For, -Host and -Proto and X-Real-IP set as setForwarded sets
// them. For an
// external origin hostAs replaces the Host and prefix, the origin URL's
// path, goes before the target, as toURL does.
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
		if !h.realIP {
			b = append(b, "X-Real-IP: "...)
			b = append(b, fc.clientIP...)
			b = append(b, "\r\n"...)
		}
	}
	if !h.xfProto {
		b = append(b, "X-Forwarded-Proto: http\r\n"...)
	}
	if !h.xfHost {
		b = append(b, "X-Forwarded-Host: "...)
		b = append(b, h.host.of(buf)...)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

// handoffListener is the net.Listener the net/http server accepts handed
// over connections from.
type handoffListener struct {
	addr   net.Addr
	conns  chan net.Conn
	mu     sync.Mutex
	closed chan struct{}
	done   bool
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

// push gives c to the net/http server; false when it no longer serves.
func (l *handoffListener) push(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.done = true
		close(l.closed)
	}
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// writeErrorPage answers with the edge's own error page, under an
// entrypoint's header controls (nil: none), and returns the size of its
// body.
func (fc *fastConn) writeErrorPage(head, closeAfter bool, accept string, ctl *controls, status int, reason, msg string) int64 {
	return writePage(fc.bw, head, closeAfter, accept, ctl, status, reason, msg)
}

// writePage writes one of the edge's own pages (writeError) as a whole
// HTTP/1.1 answer to bw, and returns the size of its body.
func writePage(bw *bufio.Writer, head, closeAfter bool, accept string, ctl *controls, status int, reason, msg string) int64 {
	r := &http.Request{Method: http.MethodGet, Header: http.Header{}}
	if head {
		r.Method = http.MethodHead
	}
	if accept != "" {
		r.Header["Accept"] = []string{accept}
	}
	pw := pageWriter{h: http.Header{}}
	writeError(&pw, r, status, reason, msg)
	ctl.apply(pw.h)
	_, _ = bw.WriteString("HTTP/1.1 ")
	writeStatus(bw, pw.status)
	writeDate(bw)
	_ = pw.h.Write(bw)
	if closeAfter {
		_, _ = bw.WriteString("Connection: close\r\n")
	}
	_, _ = bw.WriteString("\r\n")
	if !head {
		_, _ = bw.Write(pw.body)
	}
	return int64(len(pw.body))
}

// pageWriter collects an answer the edge writes itself.
type pageWriter struct {
	h      http.Header
	status int
	body   []byte
}

var _ http.ResponseWriter = (*pageWriter)(nil)

func (w *pageWriter) Header() http.Header { return w.h }

func (w *pageWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *pageWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, p...)
	return len(p), nil
}

// writeStatus writes "CODE TEXT" CRLF.
func writeStatus(bw *bufio.Writer, code int) {
	var b [3]byte
	_, _ = bw.Write(strconv.AppendInt(b[:0], int64(code), 10))
	_ = bw.WriteByte(' ')
	_, _ = bw.WriteString(http.StatusText(code))
	_, _ = bw.WriteString("\r\n")
}

// dateLine is a Date header line, made again when the second changes.
type dateLine struct {
	sec  int64
	line string
}

var lastDate atomic.Pointer[dateLine]

// writeDate writes a Date header line for now, which a proxy adds to an
// answer that has none (RFC 9110 6.6.1).
func writeDate(bw *bufio.Writer) {
	now := time.Now()
	d := lastDate.Load()
	if d == nil || d.sec != now.Unix() {
		d = &dateLine{sec: now.Unix(), line: "Date: " + now.UTC().Format(http.TimeFormat) + "\r\n"}
		lastDate.Store(d)
	}
	_, _ = bw.WriteString(d.line)
}
