package h1

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves plain-HTTP and HTTPS listeners with a fast path: a loop of its own
// per connection reads each request head, and proxies the requests its
// Handler routes to an upstream itself, writing the answer straight back.
// Everything else (bodies, upgrades, requests the Handler leaves, heads its
// strict parser does not take) is handed, with the connection, to the
// net/http server HTTP, which keeps the connection from then on.
//
// Every HTTP/1.x connection net/http serves, handed over or HTTPS, reads
// through a framingConn (framing.go), which refuses ambiguous framing
// before net/http sees it.
type Server struct {
	// Handler routes the requests the fast path parsed; nil leaves every
	// request to HTTP.
	Handler Handler
	// HTTP serves the connections handed over, with its Handler. Its
	// ReadHeaderTimeout and IdleTimeout (or ReadTimeout) bound the fast
	// path too. Server chains its own function in front of
	// HTTP.ConnState, to follow the connections it checks; ServeTLS sets
	// HTTP.TLSConfig to a copy offering HTTP/2.
	HTTP *http.Server
	// TrustForwarded forwards the client's X-Forwarded-For (appended to),
	// X-Forwarded-Proto, X-Forwarded-Host, X-Real-IP and Forwarded headers
	// as they came; by default they are replaced, so a client cannot spoof
	// its address.
	TrustForwarded bool
	// ErrorPage writes the server's own answers: to a request whose
	// framing it refuses (with ReasonBadRequest), and to one that got no
	// answer from upstream (as the Exchange's Failed words it). Nil writes
	// a plain-text page.
	ErrorPage func(w http.ResponseWriter, r *http.Request, status int, reason, msg string)
	// HTTP2, when set, serves the HTTPS connections that negotiated
	// HTTP/2 instead of net/http's HTTP/2 server. Shutdown and Close reach
	// it too.
	HTTP2 ConnServer
	// Log receives the server's own events at debug level (handshakes
	// that failed, refused requests, clients gone) and a panic of the
	// fast path at error level. Nil discards them.
	Log *slog.Logger

	mu         sync.Mutex
	lns        map[net.Listener]struct{}
	conns      map[*fastConn]struct{}
	shaking    map[net.Conn]time.Time // HTTPS connections in their handshake, with when they were accepted
	handoff    *handoffListener
	tlsCfg     *tls.Config // of ServeTLS's handshakes
	closing    atomic.Bool
	closed     atomic.Bool  // Close: nothing more is served
	late       atomic.Int64 // connections served by serveLate
	h2         atomic.Int64 // connections served by HTTP2
	fastReqs   atomic.Int64 // HTTP/1.x requests the fast path answered
	streamReqs atomic.Int64 // HTTP/2 requests it answered (ServeStream)
}

// ConnServer serves connections handed to it whole: the HTTPS connections
// that negotiated HTTP/2.
type ConnServer interface {
	// ServeConn serves c until it closes.
	ServeConn(c net.Conn)
	// Shutdown lets the connections' requests finish and closes them.
	Shutdown(ctx context.Context) error
	// Close closes every connection at once.
	Close() error
}

// ErrNoTLSConfig is returned by ServeTLS when HTTP has no TLSConfig.
var ErrNoTLSConfig = errors.New("edge: ServeTLS needs HTTP.TLSConfig")

// FastRequests returns how many HTTP/1.x requests the fast path served.
func (s *Server) FastRequests() int64 { return s.fastReqs.Load() }

// log is the server's logger, never nil.
func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return discard
	}
	return s.Log
}

var discard = slog.New(slog.DiscardHandler)

// errorPage is the server's ErrorPage, never nil.
func (s *Server) errorPage() pageFunc {
	if s.ErrorPage == nil {
		return plainPage
	}
	return s.ErrorPage
}

// Serve accepts connections on ln until it is closed or the server shuts
// down, when it returns http.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	return s.serve(ln, false)
}

// ServeTLS accepts HTTPS connections on ln, with HTTP.TLSConfig, until it
// is closed or the server shuts down, when it returns
// http.ErrServerClosed. It makes the TLS handshake itself, instead of
// net/http's ServeTLS: a connection that negotiated HTTP/1.x (or nothing)
// is served by the fast loop over the TLS connection, as Serve serves a
// plain one, and what it hands over reaches net/http behind the framing
// checks (framing.go); an HTTP/2 connection, whose framing is binary,
// goes to net/http as it is. A Server serves either plain listeners or
// HTTPS ones, not both.
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
		c = wrapSock(c)
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
	var tc *tls.Conn
	lc := newLoopConn(c)
	if lc != nil {
		tc = tls.Server(lc, cfg)
	} else {
		tc = tls.Server(c, cfg)
	}
	if d := s.tlsHandshakeTimeout(); d > 0 {
		_ = c.SetDeadline(time.Now().Add(d))
	}
	err := tc.Handshake()
	if err == nil && s.Handler != nil && fastProto(tc.ConnectionState().NegotiatedProtocol) {
		// HTTP/1.x: the fast loop serves it over the TLS connection,
		// handing it to net/http as it does a plain one.
		s.serveTLSFast(c, tc, lc)
		return
	}
	if err == nil && s.HTTP2 != nil && tc.ConnectionState().NegotiatedProtocol == "h2" {
		s.serveHTTP2(c, tc)
		return
	}
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
		s.log().Debug("TLS handshake failed", "client", c.RemoteAddr().String(), "err", err)
		_ = c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	var hc net.Conn = tc
	switch tc.ConnectionState().NegotiatedProtocol {
	case "", "http/1.1", "http/1.0":
		hc = newFramingConn(tc, nil, s.HTTP.MaxHeaderBytes, s.log(), s.errorPage())
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

// serveHTTP2 hands an HTTPS connection that negotiated HTTP/2 to
// HTTP2. It is counted from before it leaves the handshakes, so that a
// Shutdown waits for it.
func (s *Server) serveHTTP2(c net.Conn, tc *tls.Conn) {
	s.h2.Add(1)
	defer s.h2.Add(-1)
	s.mu.Lock()
	delete(s.shaking, c)
	s.mu.Unlock()
	if s.closed.Load() {
		_ = c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	s.HTTP2.ServeConn(tc)
}

// fastProto reports whether a protocol negotiated by ALPN is one the fast
// loop reads: HTTP/1.x, or none (a client without ALPN speaks HTTP/1.1).
func fastProto(p string) bool {
	return p == "" || p == "http/1.1" || p == "http/1.0"
}

// serveTLSFast serves an HTTPS connection whose handshake is done on the
// fast loop. It moves from the handshakes to the fast connections under
// one lock, so that a Shutdown never sees it in neither place, and keeps
// the time it was accepted for Shutdown's grace.
func (s *Server) serveTLSFast(c net.Conn, tc *tls.Conn, lc *loopConn) {
	_ = c.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	fc := &fastConn{s: s, c: tc, raw: c, tls: &st, loop: lc}
	s.mu.Lock()
	fc.accepted = s.shaking[c]
	delete(s.shaking, c)
	if s.closed.Load() {
		s.mu.Unlock()
		_ = c.Close()
		return
	}
	s.conns[fc] = struct{}{}
	s.mu.Unlock()
	fc.serve()
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
	errc := make(chan error, 2)
	go func() { errc <- s.HTTP.Shutdown(ctx) }()
	if s.HTTP2 != nil {
		go func() { errc <- s.HTTP2.Shutdown(ctx) }()
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !s.closeIdle(false) || s.late.Load() > 0 || s.h2.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	err := <-errc
	if s.HTTP2 != nil {
		err = errors.Join(err, <-errc)
	}
	return err
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.closed.Store(true)
	s.stopAccepting()
	s.closeIdle(true)
	if s.HTTP2 != nil {
		_ = s.HTTP2.Close()
	}
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
			// The socket itself: closing a TLS connection would
			// first send an alert, under s.mu.
			_ = fc.raw.Close()
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
	fc := &fastConn{s: s, c: c, raw: c, accepted: time.Now()}
	if lc := newLoopConn(c); lc != nil {
		fc.c, fc.loop = lc, lc
	}
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
