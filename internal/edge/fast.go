package edge

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/edge/cache"
	"github.com/berth-dev/berth/internal/edge/h1"
	"github.com/berth-dev/berth/internal/edge/h2"
)

// Server serves an Edge on plain-HTTP or HTTPS listeners with the
// HTTP/1.1 fast path (package h1): the common request (GET or HEAD without
// a body, for a service's own host or a plain entrypoint) is proxied by
// the fast path's own connection loop, and a cached entrypoint's fresh
// hits are answered on it from memory; everything else (cache misses,
// entrypoints with shares, failover or error pages, bodies, upgrades,
// requests the edge answers itself, heads the strict parser does not
// take) is handed, with the connection, to the net/http server HTTP.
// HTTP/2 goes to the edge's own HTTP/2 server (package h2), which offers
// the same fast path each GET or HEAD without a body and gives the rest to
// HTTP's Handler. Behaviour is the same on both paths: the same
// balancing, retries and ejection, X-Forwarded-* headers, timeouts,
// statistics, metrics and access log.
//
// Every HTTP/1.x connection net/http serves, handed over or HTTPS, reads
// through the fast path's framing checks, which refuse ambiguous framing
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
	// NetHTTP2 leaves HTTP/2 connections to net/http's HTTP/2 server
	// instead of the edge's own (package h2): for comparisons.
	NetHTTP2 bool

	once sync.Once
	srv  *h1.Server
}

// ErrNoTLSConfig is returned by ServeTLS when HTTP has no TLSConfig.
var ErrNoTLSConfig = h1.ErrNoTLSConfig

// server is the fast path's server, made from s's fields on first use.
func (s *Server) server() *h1.Server {
	s.once.Do(func() {
		e := s.Edge
		s.srv = &h1.Server{
			Handler:        &fastHandler{e: e, divert: s.Divert},
			HTTP:           s.HTTP,
			TrustForwarded: e.trustForwarded,
			ErrorPage:      writeError,
			Log:            e.log,
		}
		hs := s.HTTP
		if !s.NetHTTP2 && (hs.TLSNextProto == nil || hs.TLSNextProto["h2"] != nil) {
			idle := hs.IdleTimeout
			if idle == 0 {
				idle = hs.ReadTimeout
			}
			srv := s.srv
			s.srv.HTTP2 = &h2.Server{Handler: hs.Handler, IdleTimeout: idle, MaxHeaderBytes: hs.MaxHeaderBytes, HTTP: hs, Log: e.log,
				// A GET or HEAD the fast path takes skips net/http's
				// request, ServeHTTP and the Transport's objects.
				Fast: func(w http.ResponseWriter, r *h2.FastRequest) bool {
					return srv.ServeStream(w, &h1.StreamRequest{
						Authority: r.Authority, Path: r.Path, Head: r.Head, Start: r.Start, TLS: r.TLS,
						RemoteAddr: r.RemoteAddr, Fields: r.Fields, Context: r.Context(), HTTP: r.Request,
					})
				}}
		}
	})
	return s.srv
}

// Serve accepts connections on ln until it is closed or the server shuts
// down, when it returns http.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error { return s.server().Serve(ln) }

// ServeTLS accepts HTTPS connections on ln, with HTTP.TLSConfig, until it
// is closed or the server shuts down, when it returns
// http.ErrServerClosed. It makes the TLS handshake itself: an HTTP/1.x
// connection is served by the fast path over TLS, and what it hands over
// reaches net/http behind the framing checks; an HTTP/2 connection goes to
// net/http as it is. A Server serves either plain listeners or HTTPS ones,
// not both.
func (s *Server) ServeTLS(ln net.Listener) error { return s.server().ServeTLS(ln) }

// Shutdown stops accepting, closes idle connections, and waits for the
// requests in flight to finish or ctx to end, on both paths, as net/http's
// Shutdown does.
func (s *Server) Shutdown(ctx context.Context) error { return s.server().Shutdown(ctx) }

// Close closes the listeners and every connection at once.
func (s *Server) Close() error { return s.server().Close() }

// FastRequests returns how many HTTP/1.x requests the fast path served.
func (s *Server) FastRequests() int64 { return s.server().FastRequests() }

// FastStreams returns how many HTTP/2 requests the fast path served.
func (s *Server) FastStreams() int64 { return s.server().FastStreams() }

// fastHandler routes the fast path's requests (h1.Handler): it takes those
// it can answer as ServeHTTP would without net/http's machinery, and leaves
// the rest.
type fastHandler struct {
	e      *Edge
	divert func(host, path string) bool
}

var (
	_ h1.Handler   = (*fastHandler)(nil)
	_ h1.Exchange  = (*fastRequest)(nil)
	_ h1.Responder = (*hitRequest)(nil)
)

// fastRequest is one request the fast path serves, as the edge follows it.
type fastRequest struct {
	ps    proxyState
	e     *Edge
	head  bool
	start time.Time
	// On an entrypoint's host: the entrypoint and its origin (a service
	// origin's instances are in ps, as on a service's own host); external
	// says the origin is a URL, which has no other address to retry.
	ep       *epEntry
	origin   *originEntry
	external bool
}

// Route takes the request, and picks its instance or origin, when the
// fast path serves it as ServeHTTP would.
func (h *fastHandler) Route(req *h1.Request, t *h1.Target) h1.Exchange {
	host := normalizeHost(req.Host)
	if d := h.divert; d != nil && d(host, req.Path) {
		return nil
	}
	e := h.e
	s := e.snap.Load()
	ep := s.epHosts[host]
	if ep != nil && ep.cache != nil {
		return h.planHit(ep, req) // cache hits only
	}
	f := &fastRequest{ps: proxyState{host: host, path: req.Path}, e: e, head: req.Head, start: req.Start}
	ps := &f.ps
	t.Transport = e.up
	if ep != nil {
		if !f.planEntrypoint(s, ep, req.TLS, t) {
			return nil // cache, shares, error pages, failover, HTTPS origins
		}
	} else {
		rt, tg, why := e.acquire(host, req.Path, &ps.tried)
		if why != acquired {
			return nil // the edge's own answers, holds and queues
		}
		if rt.sticky != "" {
			tg.st.inflight.Add(-1)
			return nil // the cookie is read and set by ServeHTTP
		}
		ps.route, ps.target, ps.timeout = rt, tg, rt.timeout
	}
	if ps.target != nil {
		t.Addr = ps.target.addr
	}
	t.Timeout = ps.timeout
	if o := f.origin; o != nil && o.url != nil {
		t.HostAs, t.Prefix = o.url.Host, strings.TrimSuffix(o.url.EscapedPath(), "/")
	}
	if f.ep != nil && f.ep.ls != nil {
		f.ep.ls.inflight.Inc()
	}
	return f
}

// planEntrypoint picks the origin of a request on an entrypoint's host, as
// serveEntrypoint and attempt do, when the fast path can take it: no cache,
// compression, maintenance, failover, redirect or custom error pages; one
// origin (not shares or a canary), either external over plain HTTP or a
// service with an instance to take it. Header add/remove controls are
// applied on the way out. It reports whether it did.
func (f *fastRequest) planEntrypoint(s *snapshot, ep *epEntry, overTLS bool, t *h1.Target) bool {
	e, ps := f.e, &f.ps
	if ep.cache != nil || ep.spec.Compress || ep.maintenance || ep.failover != nil || ep.redirectHTTPS && !overTLS && e.ext.httpsPort != "" {
		return false
	}
	origin, ctl := ep.match(ps.path)
	if ctl == nil || len(ctl.pages) > 0 {
		return false
	}
	t.Controls = ctl.fastControls(overTLS)
	if origin == nil {
		if len(ep.arms) != 1 {
			return false
		}
		origin = ep.arms[0]
	}
	f.ep, f.origin, ps.timeout = ep, origin, ctl.timeout
	if u := origin.url; u != nil {
		if u.Scheme != "http" {
			return false
		}
		f.external = true
		t.Addr, t.Transport = h1.CanonicalAddr(u.Host), e.ext.origin
		return true
	}
	if sp := s.splits[origin.route]; sp != nil && sp != ep {
		return false
	}
	rt, tg, why := e.acquireKey(origin.route, &ps.tried)
	if why != acquired {
		return false
	}
	ps.route, ps.target = rt, tg
	return true
}

// Answered counts an origin's answer for its guard (none on a service's
// own host).
func (f *fastRequest) Answered(status int) {
	if o := f.origin; o != nil {
		o.guard.record(status >= 500)
	}
}

// Retry ejects the instance that failed with err and picks another. An
// external origin has no other.
func (f *fastRequest) Retry(err error) (string, bool) {
	if f.external {
		return "", false
	}
	e, ps := f.e, &f.ps
	e.drop(ps, err)
	var (
		rt   *routeEntry
		next *target
		why  outcome
	)
	if f.origin != nil {
		rt, next, why = e.acquireKey(f.origin.route, &ps.tried)
	} else {
		rt, next, why = e.acquire(ps.host, ps.path, &ps.tried)
	}
	if why != acquired {
		return "", false
	}
	ps.route, ps.target = rt, next
	return next.addr, true
}

// Failed words the edge's answer to a request that got none, and counts it,
// as the net/http path does.
func (f *fastRequest) Failed(kind h1.Failure, err error) (status int, reason, msg string) {
	if o := f.origin; o != nil {
		o.ls.upstreamError(kind)
		o.guard.record(true)
		return f.e.originFailure(f.ep, o, &f.ps, kind, err)
	}
	return f.e.routeFailure(&f.ps, kind, err)
}

// Done counts the finished request on its instance, releases the
// instance, and records the request in the metrics and the access log, as
// finishRoute and finishEntrypoint do for the others. After a panic it only
// releases.
func (f *fastRequest) Done(res *h1.Result) {
	if res != nil {
		f.ps.observe(f.start)
		f.ps.release()
		if f.e.tracking() {
			f.record(res)
		}
	}
	f.ps.release()
	if f.ep != nil && f.ep.ls != nil {
		f.ep.ls.inflight.Dec()
	}
}

// record observes a request the fast path answered.
func (f *fastRequest) record(res *h1.Result) {
	ps := &f.ps
	method := http.MethodGet
	if f.head {
		method = http.MethodHead
	}
	rec := accessRecord{
		time: f.start, host: ps.host, method: method, path: ps.path,
		status: res.Status, bytes: res.Bytes, reason: res.Reason,
	}
	var ls *labelSet
	if f.ep != nil {
		rec.entrypoint, rec.origin, ls = f.ep.label, f.origin.label, f.origin.ls
	} else {
		rec.entrypoint, rec.origin, ls = ps.route.key, ps.route.key, ps.route.ls
	}
	f.e.observe(ls, &rec)
}

// hitCache is a Cache that finds the hits the fast path answers itself
// (*cache.Cache).
type hitCache interface {
	LookupHit(r *http.Request) (cache.Hit, bool)
}

// hitRequest is a request on a cached entrypoint that the cache answers
// from memory: the fast path writes the answer with no origin and no
// net/http server, through the entrypoint's response controls, as
// serveEntrypoint does.
type hitRequest struct {
	e      *Edge
	ep     *epEntry
	host   string
	start  time.Time
	hit    cache.Hit
	rw     respWriter
	cookie string
	req    *http.Request
}

// planHit takes a request on a cached entrypoint when the cache has a hit
// for it that needs neither the origin nor a file, and serveEntrypoint
// would ask the cache: no redirect to HTTPS, no maintenance. Everything
// else goes to net/http.
func (h *fastHandler) planHit(ep *epEntry, req *h1.Request) h1.Exchange {
	e := h.e
	if ep.maintenance || ep.redirectHTTPS && !req.TLS && e.ext.httpsPort != "" {
		return nil
	}
	hc, ok := ep.cache.(hitCache)
	if !ok {
		return nil
	}
	r := req.HTTP()
	hit, ok := hc.LookupHit(r)
	if !ok {
		return nil
	}
	x := &hitRequest{e: e, ep: ep, host: normalizeHost(req.Host), start: req.Start, hit: hit, req: r}
	if origin, _ := ep.match(req.Path); origin == nil {
		// As serveEntrypoint: a split picks its arm, and may set its
		// cookie, before the cache answers.
		_, x.cookie = ep.split.choose(r)
	}
	if ep.ls != nil {
		ep.ls.inflight.Inc()
	}
	return x
}

// Respond writes the hit through the entrypoint's response controls.
func (x *hitRequest) Respond(w http.ResponseWriter, r *http.Request) {
	_, ctl := x.ep.match(r.URL.Path)
	x.rw.init(w, r, ctl)
	x.rw.setCookie = x.cookie
	x.hit.Serve(&x.rw, r)
}

// The exchange's upstream calls: a hit has no upstream.
func (x *hitRequest) Answered(int)               {}
func (x *hitRequest) Retry(error) (string, bool) { return "", false }
func (x *hitRequest) Failed(h1.Failure, error) (int, string, string) {
	return http.StatusBadGateway, ReasonUpstreamError, "The origin failed to answer."
}

// Done records the hit as finishEntrypoint does.
func (x *hitRequest) Done(res *h1.Result) {
	ep := x.ep
	if ep.ls != nil {
		ep.ls.inflight.Dec()
	}
	if res != nil {
		x.e.record(ep.ls, &x.rw, x.req, x.host, ep.label, "", x.start)
	}
}
