package edge

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/internal/edge/h1"
)

// errRequestTimeout is the cause of a request cancelled by its route's
// Timeout; the error handler turns it into 504.
var errRequestTimeout = errors.New("request exceeded the route timeout")

// proxyState travels with one request through the ReverseProxy hooks.
type proxyState struct {
	host    string
	path    string
	route   *routeEntry
	target  *target // counted in flight; nil once released
	tried   triedSet
	timeout time.Duration
	body    retryBody

	// For WebSocket upgrades the timeout covers only the handshake: the
	// timer and the 101 race for phase.
	upgradeTimer *time.Timer
	phase        atomic.Int32
}

const (
	phaseWaiting int32 = iota
	phaseUpgraded
	phaseTimedOut
)

type stateKey struct{}

func stateOf(r *http.Request) *proxyState {
	ps, _ := r.Context().Value(stateKey{}).(*proxyState)
	return ps
}

func (ps *proxyState) release() {
	if ps.target != nil {
		ps.target.st.inflight.Add(-1)
		ps.target = nil
	}
}

// ServeHTTP routes the request by host (and path prefix) and proxies it to
// the least loaded healthy instance, or answers with the edge's own page.
func (e *Edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if e.serveEntrypoint(w, r, start) {
		return
	}
	ps := &proxyState{host: normalizeHost(r.Host), path: r.URL.Path}
	ps.tried.r = r // a sticky route reads its cookie
	if e.tracking() {
		rw := newRouteWriter(w, r)
		w = rw
		defer e.finishRoute(ps, rw, r, start)
	}
	rt, t, why := e.acquire(ps.host, ps.path, &ps.tried)
	if why == noBackend && rt.spec.Hold != nil {
		var ok bool
		if rt, t, why, ok = e.hold(w, r, ps, rt); !ok {
			return
		}
	}
	if why == saturated {
		rt, t, why = e.queue(r.Context(), ps, rt) // limit.go
	}
	ps.route = rt // for finishRoute; nil for an unknown host
	switch why {
	case unknownHost:
		writeError(w, r, http.StatusNotFound, ReasonUnknownHost, "No service is configured for host "+quoteHost(ps.host)+".")
		return
	case paused:
		writeError(w, r, http.StatusServiceUnavailable, ReasonPaused, "The service "+rt.key+" is paused. Its owner can start it again with: berth resume "+serviceOf(rt.key))
		return
	case noBackend:
		writeError(w, r, http.StatusServiceUnavailable, ReasonNoHealthyInstance, "The service "+rt.key+" has no healthy instance right now. Try again shortly.")
		return
	case saturated:
		writeOverloaded(w, r, rt)
		return
	}
	stick(w, r, rt, t) // sticky.go
	ps.route, ps.target, ps.timeout = rt, t, rt.timeout
	defer ps.release()
	defer ps.observe(start) // before release: the target is still known

	ctx := r.Context()
	if ps.timeout > 0 {
		if isUpgrade(r) {
			// After the 101 the connection belongs to the client and the
			// instance; cancelling the context would cut it.
			c, cancel := context.WithCancelCause(ctx)
			defer cancel(nil)
			ps.upgradeTimer = time.AfterFunc(ps.timeout, func() {
				if ps.phase.CompareAndSwap(phaseWaiting, phaseTimedOut) {
					cancel(errRequestTimeout)
				}
			})
			defer ps.upgradeTimer.Stop()
			ctx = c
		} else {
			c, cancel := context.WithTimeoutCause(ctx, ps.timeout, errRequestTimeout)
			defer cancel()
			ctx = c
		}
	}
	ctx = context.WithValue(ctx, stateKey{}, ps)
	if directable(r) {
		e.proxyDirect(w, r, ctx) // direct.go
		return
	}
	e.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// serviceOf returns the service part of a route key "app/service".
func serviceOf(key string) string {
	_, svc, ok := strings.Cut(key, "/")
	if !ok {
		return key
	}
	return svc
}

func (e *Edge) newReverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        e.rewrite,
		Transport:      &retryTransport{edge: e, base: newTransport()},
		BufferPool:     bufferPool{},
		ModifyResponse: modifyResponse,
		ErrorHandler:   e.proxyError,
		ErrorLog:       slog.NewLogLogger(e.log.Handler(), slog.LevelWarn),
		// FlushInterval 0: responses of known length are buffered;
		// ReverseProxy flushes text/event-stream and unknown-length
		// (streamed) responses after every write by itself.
	}
}

// newTransport returns the one transport all backends share, tuned for
// instances on loopback: many idle keep-alive connections, fast failure on a
// dead port, nothing between the edge and the instance.
func newTransport() *h1.Transport {
	dialer := &net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}
	return h1.NewTransport(&http.Transport{
		Proxy:               nil, // never the environment's proxy
		DialContext:         dialer.DialContext,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
		DisableCompression:  true, // pass bodies through as the instance encodes them
	})
}

// rewrite points the outbound request at the picked backend. The original
// Host header is kept, so the instance sees the name the client asked for.
func (e *Edge) rewrite(pr *httputil.ProxyRequest) {
	ps := stateOf(pr.In)
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = ps.target.addr
	if pr.Out.Body != nil && pr.Out.Body != http.NoBody {
		ps.body.rc = pr.Out.Body
		pr.Out.Body = &ps.body
	}
	e.setForwarded(pr.In, pr.Out)
}

// retryBody keeps a request body usable for a retry: the transport closes the
// body when it cannot connect, and a closed body cannot be sent again. The
// ReverseProxy still closes the body it wrapped when the request ends, so a
// late read by the transport fails instead of touching a finished request.
type retryBody struct {
	rc     io.ReadCloser
	read   atomic.Bool
	failed atomic.Bool // reading the client's body failed: its fault, not the backend's
}

func (b *retryBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		b.failed.Store(true)
	}
	return n, err
}

func (b *retryBody) Close() error { return nil }

// resendable reports whether no byte of the body has been taken yet.
func (b *retryBody) resendable() bool { return !b.read.Load() }

var (
	protoHTTP  = []string{"http"}
	protoHTTPS = []string{"https"}
)

// setForwarded sets X-Forwarded-For, -Proto and -Host, and X-Real-IP. ReverseProxy has
// already removed the client's values; they are copied back only when the
// edge trusts its clients.
func (e *Edge) setForwarded(in, out *http.Request) {
	h := out.Header
	peer, _, err := net.SplitHostPort(in.RemoteAddr)
	if err == nil {
		clientIP := peer
		if prior := in.Header["X-Forwarded-For"]; e.trustForwarded && len(prior) > 0 {
			clientIP = strings.Join(prior, ", ") + ", " + clientIP
		}
		h["X-Forwarded-For"] = []string{clientIP}
	}
	if !e.trustForwarded {
		for k := range h {
			if h1.ForwardingAlias(k) {
				delete(h, k)
			}
		}
	}
	// X-Real-IP is the peer's address, as nginx's $remote_addr; a client's
	// own value is kept only when the edge trusts its clients, as for
	// X-Forwarded-*.
	switch v := in.Header["X-Real-Ip"]; {
	case e.trustForwarded && len(v) > 0:
	case err == nil:
		h["X-Real-Ip"] = []string{peer}
	default:
		delete(h, "X-Real-Ip")
	}
	if v := in.Header["X-Forwarded-Proto"]; e.trustForwarded && len(v) > 0 {
		h["X-Forwarded-Proto"] = v
	} else if in.TLS != nil {
		h["X-Forwarded-Proto"] = protoHTTPS // shared, read-only
	} else {
		h["X-Forwarded-Proto"] = protoHTTP
	}
	if v := in.Header["X-Forwarded-Host"]; e.trustForwarded && len(v) > 0 {
		h["X-Forwarded-Host"] = v
	} else {
		h["X-Forwarded-Host"] = []string{in.Host}
	}
	if v := in.Header["Forwarded"]; e.trustForwarded && len(v) > 0 {
		h["Forwarded"] = v
	}
}

// modifyResponse settles the race between a WebSocket's 101 and its
// handshake timeout: whichever comes first wins.
func modifyResponse(res *http.Response) error {
	if res.StatusCode != http.StatusSwitchingProtocols {
		return nil
	}
	ps := stateOf(res.Request)
	if ps == nil || ps.upgradeTimer == nil {
		return nil
	}
	if !ps.phase.CompareAndSwap(phaseWaiting, phaseUpgraded) {
		return errRequestTimeout
	}
	ps.upgradeTimer.Stop()
	return nil
}

// proxyError answers a request that got no response from a backend.
func (e *Edge) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	ps := stateOf(r)
	if ps == nil || ps.route == nil {
		e.log.Warn("proxy error", "err", err)
		writeError(w, r, http.StatusBadGateway, ReasonUpstreamError, "The service failed to answer.")
		return
	}
	ctx := r.Context()
	if ps.body.failed.Load() {
		badBody(w, r, err)
		return
	}
	var kind upstreamErr
	switch {
	case errors.Is(context.Cause(ctx), errRequestTimeout) || errors.Is(err, errRequestTimeout):
		kind = errTimeout
	case ctx.Err() != nil:
		// The client went away; nobody reads an answer.
		e.log.Debug("client gone before the response", "route", ps.route.key, "err", err)
		w.WriteHeader(http.StatusBadGateway)
		return
	case h1.IsDialError(err):
		kind = errUnreachable
	default:
		kind = errBroken
	}
	status, reason, msg := e.routeFailure(ps, kind, err)
	writeError(w, r, status, reason, msg)
}

// badBody answers a request whose body could not be read from the client
// (a malformed chunk, a body cut short): 400, the connection closed, as
// nginx answers, and nothing counted against the backend, which did
// nothing wrong.
func badBody(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Set("Connection", "close")
	msg := "The request body is malformed or ended early."
	if errors.Is(err, h1.ErrBadChunk) {
		msg = "The request body's chunked framing is malformed."
	}
	writeError(w, r, http.StatusBadRequest, ReasonBadRequest, msg)
}

// routeFailure logs why a request on a service's own host got no answer
// and words the edge's answer.
func (e *Edge) routeFailure(ps *proxyState, kind upstreamErr, err error) (status int, reason, msg string) {
	key := ps.route.key
	switch kind {
	case errTimeout:
		e.log.Info("request timed out", "route", key, "host", ps.host, "path", ps.path, "timeout", ps.timeout)
	case errUnreachable:
		e.log.Warn("no instance reachable", "route", key, "err", err)
	default:
		e.log.Warn("instance failed to answer", "route", key, "err", err)
	}
	return failure(kind, "The service "+key, ps.timeout)
}

// failure words the edge's own answer to a request that got none from
// upstream, named by what ("The service shop/web", "The origin X").
func failure(kind upstreamErr, what string, timeout time.Duration) (status int, reason, msg string) {
	switch kind {
	case errTimeout:
		return http.StatusGatewayTimeout, ReasonTimeout, what + " did not answer within " + timeout.String() + "."
	case errUnreachable:
		return http.StatusBadGateway, ReasonUnreachable, what + " could not be reached."
	}
	return http.StatusBadGateway, ReasonUpstreamError, what + " failed to answer."
}

// retryTransport sends a request again to another backend when the first
// refused the connection: the request never left the edge, so any method is
// safe to retry. The refusing backend is ejected for ejectFor.
type retryTransport struct {
	edge *Edge
	base *h1.Transport
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ps := stateOf(req)
	res, err := t.base.RoundTrip(req)
	for err != nil && ps != nil && ps.target != nil && retryable(req, err) && ps.body.resendable() && req.Context().Err() == nil {
		t.edge.drop(ps, err)

		rt, next, why := t.edge.acquire(ps.host, ps.path, &ps.tried)
		if why != acquired {
			return nil, err
		}
		ps.route, ps.target = rt, next
		retry := *req // RoundTrip must not modify its request
		u := *req.URL
		u.Host = next.addr
		retry.URL = &u
		req = &retry
		res, err = t.base.RoundTrip(req)
	}
	return res, err
}

// retryable reports whether a failed request may go to another backend:
// always when the connection was never made; for idempotent methods
// (RFC 9110 9.2.2) also when the connection broke before any response. The
// second case matters because the engine's port proxy accepts connections
// for a dead container and then closes them.
func retryable(req *http.Request, err error) bool {
	if h1.IsDialError(err) {
		return true
	}
	if isUpgrade(req) {
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return h1.BrokeBeforeAnswer(err)
	}
	return false
}

// drop takes the backend a request failed on out of rotation for ejectFor,
// remembers it as tried and uncounts the request on it, before the request
// picks another.
func (e *Edge) drop(ps *proxyState, err error) {
	t := ps.target
	if t.st.eject() {
		e.log.Warn("instance refused the connection; ejected", "route", ps.route.key, "backend", t.id, "addr", t.addr, "for", ejectFor, "err", err)
	}
	ps.tried.add(t.st)
	ps.release()
}

// isUpgrade reports whether r asks to switch protocols (WebSocket).
func isUpgrade(r *http.Request) bool {
	if r.Header.Get("Upgrade") == "" {
		return false
	}
	for _, v := range r.Header["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// bufferPool lends ReverseProxy 32 KiB copy buffers. It pools array pointers,
// not slices, so Put does not allocate.
type bufferPool struct{}

const bufferSize = 32 << 10

var buffers = sync.Pool{New: func() any { return new([bufferSize]byte) }}

var _ httputil.BufferPool = bufferPool{}

func (bufferPool) Get() []byte { return buffers.Get().(*[bufferSize]byte)[:] }

func (bufferPool) Put(b []byte) {
	if cap(b) >= bufferSize {
		buffers.Put((*[bufferSize]byte)(b[:bufferSize]))
	}
}
