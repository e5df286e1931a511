package edge

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/edge/h1"
)

// Errors an origin attempt ends with when it never reached the origin; the
// request may fail over whatever its method.
var (
	errNoBackend    = errors.New("no healthy instance")
	errOriginPaused = errors.New("service paused")
)

// newOriginTransport returns the transport to external origins: TLS
// verified against roots (nil: the system's), HTTP/2 when the origin offers
// it, never a proxy from the environment.
func newOriginTransport(roots *x509.CertPool) *h1.Transport {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return h1.NewTransport(&http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	})
}

func (e *Edge) newEntrypointProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        e.entrypointRewrite,
		Transport:      originTransport{e: e},
		BufferPool:     bufferPool{},
		ModifyResponse: entrypointModifyResponse,
		ErrorHandler:   e.entrypointProxyError,
		ErrorLog:       slog.NewLogLogger(e.log.Handler(), slog.LevelWarn),
	}
}

// serveOrigin is the innermost handler of an entrypoint: it sends the
// request to the origin chosen for it (failing over if need be).
func (e *Edge) serveOrigin(w http.ResponseWriter, r *http.Request) {
	es := epStateOf(r)
	if es == nil {
		writeError(w, r, http.StatusBadGateway, ReasonUpstreamError, "The request lost its entrypoint.")
		return
	}
	// The request's own trip to the origin runs under the context
	// serveEntrypoint made. The cache may call again under another (a
	// background revalidation, which can outlive the request): that trip
	// gets a state of its own.
	if r.Context() != es.ctx || !es.dispatched.CompareAndSwap(false, true) {
		es = es.again()
		r = r.WithContext(context.WithValue(r.Context(), epKey{}, es))
	}
	defer es.release()
	defer es.observe(es.start)
	e.ext.epProxy.ServeHTTP(w, r)
}

// again returns a fresh state for a second trip to the origin with the
// same decisions (a background revalidation by the cache).
func (es *epState) again() *epState {
	n := &epState{req: es.req, snap: es.snap, ep: es.ep, ctl: es.ctl, chosen: es.chosen, start: time.Now()}
	n.host, n.path, n.timeout = es.host, es.path, es.timeout
	n.dispatched.Store(true)
	return n
}

// entrypointRewrite prepares the outbound request; each attempt then points
// it at its origin (see originTransport).
func (e *Edge) entrypointRewrite(pr *httputil.ProxyRequest) {
	es := epStateOf(pr.In)
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = "origin.invalid"
	if es != nil && pr.Out.Body != nil && pr.Out.Body != http.NoBody {
		es.body.rc = pr.Out.Body
		pr.Out.Body = &es.body
	}
	e.setForwarded(pr.In, pr.Out)
}

// entrypointModifyResponse settles a WebSocket's 101 against its handshake
// timeout, as modifyResponse does for routes.
func entrypointModifyResponse(res *http.Response) error {
	if res.StatusCode != http.StatusSwitchingProtocols {
		return nil
	}
	es := epStateOf(res.Request)
	if es == nil || es.upgradeTimer == nil {
		return nil
	}
	if !es.phase.CompareAndSwap(phaseWaiting, phaseUpgraded) {
		return errRequestTimeout
	}
	es.upgradeTimer.Stop()
	return nil
}

// originTransport sends an entrypoint's request to its chosen origin, and
// to the failover origin when that one fails.
type originTransport struct{ e *Edge }

func (t originTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	es := epStateOf(req)
	if es == nil {
		return nil, errors.New("edge: request without entrypoint state")
	}
	var body *retryBody
	if es.body.rc != nil {
		body = &es.body
	}
	res, err := t.e.attempt(req, es, es.chosen, body)
	fo := es.ep.failover
	if fo == nil || es.chosen == fo || !es.failsOver(req, res, err) {
		return res, err
	}
	why := "error"
	if err != nil {
		why = err.Error()
	} else {
		why = res.Status
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
		res.Body.Close()
	}
	es.release()
	t.e.log.Info("failing over", "entrypoint", es.ep.name, "from", es.chosen.label, "to", fo.label, "method", req.Method, "path", es.path, "why", why)
	if es.replay != nil && (body == nil || !body.resendable()) {
		// The first attempt consumed the body, and may still be reading
		// it: the second gets its own copy.
		body = &retryBody{rc: io.NopCloser(bytes.NewReader(es.replay))}
		out := new(http.Request)
		*out = *req
		out.Body = body
		req = out
	}
	return t.e.attempt(req, es, fo, body)
}

// failsOver reports whether a failed attempt goes to the failover origin:
// any request that never reached its origin; an idempotent one that did,
// after a connection failure or a failover status.
func (es *epState) failsOver(req *http.Request, res *http.Response, err error) bool {
	if es.tooLarge.Load() || es.body.rc != nil && !es.body.resendable() && es.replay == nil {
		return false
	}
	if err != nil {
		if req.Context().Err() != nil {
			return false // timed out, or the client left
		}
		return neverReached(err) || idempotent(req)
	}
	return idempotent(req) && slices.Contains(es.ep.failCodes, res.StatusCode)
}

// neverReached reports whether err guarantees that the origin saw nothing
// of the request.
func neverReached(err error) bool {
	return h1.IsDialError(err) || errors.Is(err, errNoBackend) || errors.Is(err, errOriginPaused) ||
		errors.As(err, new(*tls.CertificateVerificationError)) || errors.As(err, new(tls.RecordHeaderError))
}

// idempotent reports whether sending the request twice is as sending it
// once (RFC 9110 9.2.2).
func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return !isUpgrade(r)
	}
	return false
}

// attempt sends req to o and counts the outcome for o's metrics and guard.
func (e *Edge) attempt(req *http.Request, es *epState, o *originEntry, body *retryBody) (*http.Response, error) {
	es.origin = o
	var (
		res *http.Response
		err error
	)
	if o.url != nil {
		res, err = e.ext.origin.RoundTrip(toURL(req, o.url))
	} else {
		res, err = e.attemptService(req, es, o, body)
	}
	// The origin's guard (a share), and the guard of the side of a split
	// route the attempt took (a canary), count the outcome.
	g1, g2 := o.guard, es.splitGuard
	es.splitGuard = nil
	fail := func(kind upstreamErr) {
		o.ls.upstreamError(kind)
		g1.record(true)
		g2.record(true)
	}
	if err != nil {
		ctx := req.Context()
		switch {
		case es.tooLarge.Load() || body != nil && body.failed.Load():
			// The client's fault, not the origin's.
		case errors.Is(context.Cause(ctx), errRequestTimeout) || errors.Is(err, errRequestTimeout):
			fail(errTimeout)
		case ctx.Err() != nil:
			// The client went away.
		case neverReached(err):
			fail(errUnreachable)
		default:
			fail(errBroken)
		}
		return nil, err
	}
	g1.record(res.StatusCode >= 500)
	g2.record(res.StatusCode >= 500)
	return res, nil
}

// toURL points a copy of req at an external origin: its scheme and host,
// its path as a prefix, and its host as the Host header.
func toURL(req *http.Request, base *url.URL) *http.Request {
	out := new(http.Request)
	*out = *req
	u := *req.URL
	u.Scheme, u.Host = base.Scheme, base.Host
	if p := base.Path; p != "" && p != "/" {
		if u.RawPath != "" {
			u.RawPath = strings.TrimSuffix(base.EscapedPath(), "/") + u.RawPath
		}
		u.Path = strings.TrimSuffix(p, "/") + u.Path
	}
	out.URL = &u
	out.Host = base.Host
	return out
}

// attemptService sends req to the least loaded instance of a service
// origin, trying another when one refuses the connection, as the service's
// own hosts do.
func (e *Edge) attemptService(req *http.Request, es *epState, o *originEntry, body *retryBody) (*http.Response, error) {
	base := e.proxy.Transport.(*retryTransport).base
	key := o.route
	if sp := es.snap.splits[key]; sp != nil && sp != es.ep {
		// The route is split (a canary): this request takes a side too.
		arm, cookie := sp.split.choose(es.req)
		key, es.splitGuard = sp.arms[arm].route, sp.arms[arm].guard
		if es.rw.setCookie == "" {
			es.rw.setCookie = cookie
		}
	}
	var lastErr error
	for {
		rt, t, why := e.acquireRoute(es, key)
		switch why {
		case paused:
			return nil, errOriginPaused
		case noBackend:
			if rt != nil && rt.spec.Hold != nil && rt.spec.Hold.Wake != nil {
				rt.spec.Hold.Wake() // scaled to zero: ask for an instance
			}
			if lastErr != nil {
				return nil, lastErr
			}
			return nil, fmt.Errorf("%w for %s", errNoBackend, key)
		}
		es.route, es.target = rt, t
		out := new(http.Request)
		*out = *req
		u := *req.URL
		u.Scheme, u.Host = "http", t.addr
		out.URL = &u
		res, err := base.RoundTrip(out)
		if err == nil {
			return res, nil
		}
		if !retryable(req, err) || body != nil && !body.resendable() || req.Context().Err() != nil {
			return nil, err
		}
		e.drop(&es.proxyState, err)
		lastErr = err
	}
}

// acquireRoute picks and counts a backend of the route with key for an
// entrypoint's request.
func (e *Edge) acquireRoute(es *epState, key string) (*routeEntry, *target, outcome) {
	return e.acquireKey(key, &es.tried)
}

// acquireKey picks and counts a backend of the route with key, as acquire
// does for a host: the count comes before the check that the snapshot is
// still current, which is what WaitIdle relies on.
func (e *Edge) acquireKey(key string, tried *triedSet) (*routeEntry, *target, outcome) {
	for {
		s := e.snap.Load()
		rt := s.routes[key]
		switch {
		case rt == nil:
			return nil, nil, noBackend
		case rt.paused:
			return rt, nil, paused
		}
		t := rt.pick(tried)
		if t == nil {
			return rt, nil, noBackend
		}
		t.st.inflight.Add(1)
		if e.snap.Load() == s {
			return rt, t, acquired
		}
		t.st.inflight.Add(-1)
	}
}

// entrypointProxyError answers a request that got no response from any
// origin.
func (e *Edge) entrypointProxyError(w http.ResponseWriter, r *http.Request, err error) {
	es := epStateOf(r)
	if es == nil || es.origin == nil {
		e.log.Warn("proxy error", "err", err)
		writeError(w, r, http.StatusBadGateway, ReasonUpstreamError, "The origin failed to answer.")
		return
	}
	ctx := r.Context()
	name := es.origin.name
	switch {
	case es.tooLarge.Load() || errors.Is(err, errTooLarge):
		writeError(w, r, http.StatusRequestEntityTooLarge, ReasonTooLarge, "The request body is larger than "+fmt.Sprint(es.ctl.maxBody)+" bytes.")
	case es.body.failed.Load():
		badBody(w, r, err)
	case errors.Is(context.Cause(ctx), errRequestTimeout) || errors.Is(err, errRequestTimeout):
		status, reason, msg := e.originFailure(es.ep, es.origin, &es.proxyState, errTimeout, err)
		writeError(w, r, status, reason, msg)
	case ctx.Err() != nil:
		w.WriteHeader(http.StatusBadGateway)
	case errors.Is(err, errOriginPaused):
		writeError(w, r, http.StatusServiceUnavailable, ReasonPaused, "The service "+name+" is paused.")
	case errors.Is(err, errNoBackend):
		writeError(w, r, http.StatusServiceUnavailable, ReasonNoHealthyInstance, "The service "+name+" has no healthy instance right now. Try again shortly.")
	case neverReached(err):
		status, reason, msg := e.originFailure(es.ep, es.origin, &es.proxyState, errUnreachable, err)
		writeError(w, r, status, reason, msg)
	default:
		status, reason, msg := e.originFailure(es.ep, es.origin, &es.proxyState, errBroken, err)
		writeError(w, r, status, reason, msg)
	}
}

// originFailure logs why an entrypoint's request got no answer from its
// origin o and words the edge's answer.
func (e *Edge) originFailure(ep *epEntry, o *originEntry, ps *proxyState, kind upstreamErr, err error) (status int, reason, msg string) {
	switch kind {
	case errTimeout:
		e.log.Info("request timed out", "entrypoint", ep.name, "origin", o.label, "host", ps.host, "path", ps.path, "timeout", ps.timeout)
	case errUnreachable:
		e.log.Warn("origin unreachable", "entrypoint", ep.name, "origin", o.label, "err", err)
	default:
		e.log.Warn("origin failed to answer", "entrypoint", ep.name, "origin", o.label, "err", err)
	}
	return failure(kind, "The origin "+o.name, ps.timeout)
}

// ProbeOrigin checks that an external origin answers at all: any HTTP
// response, even an error status, counts; no connection, a TLS failure or
// no answer within timeout is ErrOriginUnreachable.
func (e *Edge) ProbeOrigin(ctx context.Context, u *url.URL, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrOriginUnreachable, u, err)
	}
	req.Header.Set("User-Agent", "berth-edge-probe")
	res, err := e.ext.origin.RoundTrip(req)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("no answer within %s", timeout)
		}
		return fmt.Errorf("%w: %s: %v", ErrOriginUnreachable, u, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	return nil
}
