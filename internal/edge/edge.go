package edge

import (
	"cmp"
	"context"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/internal/edge/h1"
)

// Options configure an Edge.
type Options struct {
	// Logger receives the edge's own events (ejections, proxy errors). Nil
	// discards them.
	Logger *slog.Logger
	// TrustForwarded keeps the client's X-Forwarded-For (the edge appends to
	// it), X-Forwarded-Proto, X-Forwarded-Host and Forwarded headers. Set it
	// only when the edge sits behind another proxy that sets them; by default
	// they are replaced, so a client cannot spoof its address.
	TrustForwarded bool
	// Metrics, when set, counts requests by route or entrypoint and origin
	// (see NewMetrics).
	Metrics *Metrics
	// AccessLog, when set, receives one JSON line per request (see
	// accesslog.go); an *os.File or a LogFile. Lines are written one Write
	// each, serialised by the edge.
	AccessLog io.Writer
	// OnGuardTrip is called (in its own goroutine) when a guard rolls a
	// shift or canary back; the edge has already stopped sending traffic to
	// the guarded origins.
	OnGuardTrip func(GuardTrip)
	// HTTPSPort is the port entrypoints redirect plain HTTP to (Entrypoint.
	// RedirectHTTPS); "" when the edge has no HTTPS.
	HTTPSPort string
	// OriginRootCAs verify external origins' certificates; nil means the
	// system's roots.
	OriginRootCAs *x509.CertPool
}

// Edge is berth's HTTP edge. It is an http.Handler, safe for concurrent use;
// its routing table is changed with Update and Remove while it serves.
type Edge struct {
	log            *slog.Logger
	trustForwarded bool

	// snap is the routing table that ServeHTTP reads. Every change stores a
	// new snapshot; a snapshot is never modified once stored.
	snap atomic.Pointer[snapshot]

	// mu serialises writers and guards states. ServeHTTP never takes it.
	mu sync.Mutex
	// states holds the counters of every backend listed by the current
	// snapshot or still finishing requests after it was removed.
	states map[string]*backendState

	proxy *httputil.ReverseProxy
	// up is the proxy's transport to instances, which the fast path
	// (fast.go) shares.
	up *h1.Transport

	// holds are the requests waiting for a route's first backend.
	holds holds

	// ext holds entrypoints, guards, metrics and the access log
	// (entrypoint.go).
	ext extState
}

var _ http.Handler = (*Edge)(nil)

// New returns an Edge with no routes: every request gets 404 until Update
// installs one.
func New(opts Options) *Edge {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Edge{
		log:            log,
		trustForwarded: opts.TrustForwarded,
		states:         make(map[string]*backendState),
	}
	e.snap.Store(&snapshot{routes: map[string]*routeEntry{}, hosts: map[string]*routeEntry{}})
	e.proxy = e.newReverseProxy()
	e.up = e.proxy.Transport.(*retryTransport).base
	e.initExt(opts)
	return e
}

// Update installs r, replacing the route with the same key. Requests already
// in flight finish on the backends they picked; new requests see r at once.
// A backend that r lists is re-admitted if it was ejected.
func (e *Edge) Update(r Route) {
	r = normalizeRoute(r)
	if r.Key == "" {
		e.log.Warn("route without a key ignored", "hosts", r.Hosts)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	specs := e.snap.Load().specs()
	specs[r.Key] = r
	e.installLocked(specs)
	for _, b := range r.Backends {
		e.states[b.ID].readmit()
	}
}

// Remove deletes the route with the given key; its hosts answer 404.
func (e *Edge) Remove(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	specs := e.snap.Load().specs()
	if _, ok := specs[key]; !ok {
		return
	}
	delete(specs, key)
	e.installLocked(specs)
}

// CloseIdleConnections closes the edge's idle keep-alive connections to
// instances, e.g. when the daemon shuts down.
func (e *Edge) CloseIdleConnections() {
	e.proxy.Transport.(*retryTransport).base.CloseIdleConnections()
	e.ext.origin.CloseIdleConnections()
}

// Routes returns a copy of the installed routes, sorted by key.
func (e *Edge) Routes() []Route {
	s := e.snap.Load()
	out := make([]Route, 0, len(s.routes))
	for _, rt := range s.routes {
		out = append(out, cloneRoute(rt.spec))
	}
	slices.SortFunc(out, func(a, b Route) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

// InFlight returns the number of requests currently proxied to the backend,
// over all routes.
func (e *Edge) InFlight(backendID string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if st := e.states[backendID]; st != nil {
		return int(st.inflight.Load())
	}
	return 0
}

// drainPoll is how often WaitIdle looks at the counters. Draining is measured
// in seconds, so polling keeps the request path free of any notification.
const drainPoll = 5 * time.Millisecond

// WaitIdle blocks until none of the backends has a request in flight, or ctx
// ends, in which case it returns the context's cause. Call it after the Update
// or Remove that stopped routing to the backends: once it returns nil, no
// request will be sent to them (unless a later Update lists them again), so
// their instances can be stopped.
//
// Why nothing slips through: a request counts itself on a backend (in-flight
// +1) and only then checks that the snapshot it picked from is still the
// current one; if not, it uncounts itself and picks again from the new
// snapshot (see acquire). So a request that reaches a backend B validated its
// pick while a snapshot listing B was current, i.e. before the Update that
// removed B was stored, and it was counted before that. WaitIdle starts after
// that Update, so it either sees the request counted, or the request has
// already finished. A request that loaded an old snapshot but had not yet
// validated fails validation and never reaches B; it may bump B's counter for
// a moment, which only delays WaitIdle by one poll.
func (e *Edge) WaitIdle(ctx context.Context, backendIDs []string) error {
	if e.idle(backendIDs) {
		return nil
	}
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-tick.C:
			if e.idle(backendIDs) {
				return nil
			}
		}
	}
}

func (e *Edge) idle(ids []string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range ids {
		if st := e.states[id]; st != nil && st.inflight.Load() > 0 {
			return false
		}
	}
	e.pruneLocked(e.snap.Load())
	return true
}

// installLocked builds a snapshot from specs, publishes it and forgets the
// counters of backends that are neither listed nor busy. Forgetting is safe
// by the argument on WaitIdle: a request still holding an older snapshot that
// lists a forgotten backend fails validation and picks again.
func (e *Edge) installLocked(specs map[string]Route) {
	s := buildSnapshot(specs, e.stateLocked, e.log)
	e.compileEntrypointsLocked(s)
	e.snap.Store(s)
	e.pruneLocked(s)
	e.holds.signal()
}

func (e *Edge) stateLocked(id string) *backendState {
	st := e.states[id]
	if st == nil {
		st = new(backendState)
		e.states[id] = st
	}
	return st
}

func (e *Edge) pruneLocked(s *snapshot) {
	for id, st := range e.states {
		if !s.lists(id) && st.inflight.Load() == 0 {
			delete(e.states, id)
		}
	}
}

// snapshot is one immutable routing table.
type snapshot struct {
	routes map[string]*routeEntry // by key
	hosts  map[string]*routeEntry // by normalised host name
	ids    map[string]struct{}    // every backend ID listed
	// epHosts are the entrypoints by host name; they win over hosts.
	epHosts map[string]*epEntry
	// splits are the entrypoints that split a route (Entrypoint.Splits),
	// by route key.
	splits map[string]*epEntry
}

// routeEntry is a Route compiled for the request path.
type routeEntry struct {
	spec     Route // as installed, for Routes
	key      string
	backends []target
	paths    []pathEntry // longest prefix first
	timeout  time.Duration
	paused   bool
	ls       *labelSet // metric children; nil without metrics

	// Load-balancer controls, copied from the spec.
	sticky    string
	slowStart int64 // in clock units; 0 = off
	maxConc   int64 // 0 = no cap
	queue     time.Duration
}

type pathEntry struct {
	prefix string
	to     *routeEntry
}

// target is a backend as a route lists it, with the shared counters of its ID.
type target struct {
	id   string
	addr string
	st   *backendState
	// since is the clock reading when the backend joined, while it is in
	// its route's slow start; 0 otherwise.
	since int64
}

// specs returns a fresh copy of the routes of s, for building the next one.
func (s *snapshot) specs() map[string]Route {
	m := make(map[string]Route, len(s.routes)+1)
	for k, rt := range s.routes {
		m[k] = rt.spec
	}
	return m
}

func (s *snapshot) lists(id string) bool {
	_, ok := s.ids[id]
	return ok
}

func buildSnapshot(specs map[string]Route, state func(id string) *backendState, log *slog.Logger) *snapshot {
	s := &snapshot{
		routes: make(map[string]*routeEntry, len(specs)),
		hosts:  make(map[string]*routeEntry),
		ids:    make(map[string]struct{}),
	}
	keys := make([]string, 0, len(specs))
	for k := range specs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		r := specs[k]
		rt := &routeEntry{spec: r, key: k, timeout: r.Timeout, paused: r.Paused,
			sticky: r.Sticky, slowStart: int64(r.SlowStart), maxConc: int64(r.MaxConcurrency), queue: r.QueueTimeout}
		rt.backends = make([]target, len(r.Backends))
		for i, b := range r.Backends {
			rt.backends[i] = target{id: b.ID, addr: b.Addr, st: state(b.ID), since: slowStartSince(b.Since, r.SlowStart)}
			s.ids[b.ID] = struct{}{}
		}
		s.routes[k] = rt
	}
	// Hosts are claimed earliest owner first, then in key order, so a
	// conflict resolves the same way whatever the order of the updates,
	// and an app deployed later never takes an earlier one's host.
	claimOrder := slices.Clone(keys)
	slices.SortStableFunc(claimOrder, func(a, b string) int {
		ca, cb := specs[a].Claimed, specs[b].Claimed
		switch {
		case ca.IsZero() && cb.IsZero():
			return 0
		case ca.IsZero():
			return 1
		case cb.IsZero():
			return -1
		}
		return ca.Compare(cb)
	})
	for _, k := range claimOrder {
		rt := s.routes[k]
		for _, h := range rt.spec.Hosts {
			if other, ok := s.hosts[h]; ok {
				if other != rt {
					log.Error("host claimed by two routes: the earlier-deployed keeps it; remove it from the other's spec", "host", h, "kept", other.key, "ignored", k)
				}
				continue
			}
			s.hosts[h] = rt
		}
	}
	for _, k := range keys {
		rt := s.routes[k]
		for _, p := range rt.spec.PathRoutes {
			to := s.routes[p.Key]
			if to == nil {
				// An unknown target serves 503 until it is installed.
				to = &routeEntry{key: p.Key}
			}
			rt.paths = append(rt.paths, pathEntry{prefix: p.Prefix, to: to})
		}
		slices.SortStableFunc(rt.paths, func(a, b pathEntry) int { return cmp.Compare(len(b.prefix), len(a.prefix)) })
	}
	return s
}

// normalizeRoute returns a private copy of r with hosts and prefixes in the
// form the router compares.
func normalizeRoute(r Route) Route {
	r = cloneRoute(r)
	r.Key = strings.TrimSpace(r.Key)
	hosts := r.Hosts[:0]
	for _, h := range r.Hosts {
		if h = normalizeHost(strings.TrimSpace(h)); h != "" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	r.Hosts = hosts
	for i := range r.PathRoutes {
		r.PathRoutes[i].Prefix = normalizePrefix(r.PathRoutes[i].Prefix)
	}
	return r
}

func cloneRoute(r Route) Route {
	r.Hosts = slices.Clone(r.Hosts)
	r.Backends = slices.Clone(r.Backends)
	r.PathRoutes = slices.Clone(r.PathRoutes)
	return r
}
