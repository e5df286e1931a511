package edge

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/internal/edge/cache"
	"github.com/berth-dev/berth/internal/edge/h1"
	"github.com/berth-dev/berth/internal/router"
)

// An entrypoint is a stable set of host names in front of origins that can
// move: a berth service (a route key) or an external URL. A request to one
// of its hosts goes through
//
//	redirect to HTTPS? ─▶ path route ─▶ maintenance? ─▶ body limit ─▶ origin choice
//	  (shift: header, sticky cookie, weight) ─▶ cache ─▶ compression ─▶ origin ─▶ failover
//
// and every answer, whoever wrote it, passes the route's response controls
// (header add/remove, custom error pages) on its way out.

// Cache is the part of *cache.Cache the edge uses: an Entrypoint's Cache
// that also reports Stats has them in the metrics.
type Cache interface {
	router.Cache
	Stats() cache.Stats
}

var _ Cache = (*cache.Cache)(nil)

// Reasons of the entrypoint path, as X-Berth-Error values.
const (
	ReasonMaintenance = "maintenance"       // 503: the entrypoint is in maintenance
	ReasonTooLarge    = "request-too-large" // 413: the body passed the route's MaxBody
	ReasonBadRequest  = h1.ReasonBadRequest // 400: malformed request (framing, chunks, a body cut short); also 501, 431
)

// maxReplayBody is the largest body of an idempotent request the edge keeps
// so that it can be resent to a failover origin; larger ones fail over only
// when they never reached the first origin.
const maxReplayBody = 1 << 20

// SetEntrypoint installs ep, replacing the entrypoint of the same name.
// Requests in flight finish where they were sent; new ones see ep at once.
func (e *Edge) SetEntrypoint(ep Entrypoint) error {
	ep, err := normalizeEntrypoint(ep)
	if err != nil {
		return err
	}
	h := http.Handler(http.HandlerFunc(e.serveOrigin))
	if ep.Compress {
		h = cache.Compress(h, cache.CompressOptions{})
	}
	if ep.Cache != nil {
		h = ep.Cache.Handler(h)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ext.eps[ep.Name] = &installedEP{spec: ep, handler: h}
	e.installLocked(e.snap.Load().specs())
	return nil
}

// RemoveEntrypoint deletes the entrypoint; its hosts answer as if it never
// existed (404, or a route that lists them).
func (e *Edge) RemoveEntrypoint(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.ext.eps[name]; !ok {
		return
	}
	delete(e.ext.eps, name)
	e.installLocked(e.snap.Load().specs())
}

// Entrypoints returns the installed entrypoints, sorted by name.
func (e *Edge) Entrypoints() []Entrypoint {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Entrypoint, 0, len(e.ext.eps))
	for _, ie := range e.ext.eps {
		out = append(out, ie.spec)
	}
	slices.SortFunc(out, func(a, b Entrypoint) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// installedEP is an entrypoint with its handler chain, built once per
// SetEntrypoint and reused by every snapshot.
type installedEP struct {
	spec    Entrypoint
	handler http.Handler
}

func normalizeEntrypoint(ep Entrypoint) (Entrypoint, error) {
	bad := func(format string, args ...any) (Entrypoint, error) {
		return Entrypoint{}, fmt.Errorf("%w %q: %s", ErrInvalidEntrypoint, ep.Name, fmt.Sprintf(format, args...))
	}
	if ep.Name == "" {
		return bad("no name")
	}
	hosts := make([]string, 0, len(ep.Hosts))
	for _, h := range ep.Hosts {
		if h = normalizeHost(strings.TrimSpace(h)); h != "" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		return bad("no host names")
	}
	ep.Hosts = hosts
	if err := checkOrigin(ep.Origin); err != nil {
		return bad("origin: %v", err)
	}
	total := 0
	ep.Shares = slices.Clone(ep.Shares)
	for _, s := range ep.Shares {
		if err := checkOrigin(s.Origin); err != nil {
			return bad("share: %v", err)
		}
		if s.Weight < 0 || s.Weight > router.AllTraffic {
			return bad("share of %s is %d basis points; it must be 0-%d", s.Origin.Name, s.Weight, router.AllTraffic)
		}
		if s.Origin.Name == ep.Origin.Name {
			return bad("%s is the origin and a share", s.Origin.Name)
		}
		total += s.Weight
	}
	if total > router.AllTraffic {
		return bad("shares add up to %s%%, more than 100%%", strconv.FormatFloat(float64(total)/100, 'f', -1, 64))
	}
	if ep.Failover != nil {
		f := *ep.Failover
		f.Codes = slices.Clone(f.Codes)
		if err := checkOrigin(f.Origin); err != nil {
			return bad("failover: %v", err)
		}
		for _, c := range f.Codes {
			if c < 500 || c > 599 {
				return bad("failover status %d is not a 5xx", c)
			}
		}
		ep.Failover = &f
	}
	ep.Routes = slices.Clone(ep.Routes)
	for i := range ep.Routes {
		r := &ep.Routes[i]
		if !strings.HasPrefix(strings.TrimSpace(r.Prefix), "/") {
			return bad("route %q: a path prefix starts with /", r.Prefix)
		}
		r.Prefix = normalizePrefix(r.Prefix)
		if r.Origin != nil {
			if err := checkOrigin(*r.Origin); err != nil {
				return bad("route %s: %v", r.Prefix, err)
			}
		}
	}
	for code := range ep.ErrorPages {
		if code < 400 || code > 599 {
			return bad("error page for status %d: only 4xx and 5xx answers have error pages", code)
		}
	}
	return ep, nil
}

func checkOrigin(o Origin) error {
	switch {
	case o.Name == "":
		return errors.New("origin without a name")
	case (o.Route == "") == (o.URL == nil):
		return fmt.Errorf("origin %s must be a route or a URL", o.Name)
	case o.URL != nil && o.URL.Scheme != "http" && o.URL.Scheme != "https":
		return fmt.Errorf("origin %s: the URL scheme must be http or https", o.Name)
	case o.URL != nil && o.URL.Host == "":
		return fmt.Errorf("origin %s: the URL has no host", o.Name)
	}
	return nil
}

// originLabel is an origin's metrics label and access log value.
func originLabel(o *Origin) string {
	if o.URL != nil {
		return o.URL.Scheme + "://" + o.URL.Host
	}
	return o.Route
}

// epEntry is an entrypoint compiled into one snapshot.
type epEntry struct {
	name, label   string
	spec          *Entrypoint
	handler       http.Handler
	arms          []*originEntry // arm 0 is Origin, then the shares
	split         *split
	failover      *originEntry
	failCodes     []int
	routes        []epRoute // longest prefix first
	ctl           *controls // for paths no route claims
	maintenance   bool
	redirectHTTPS bool
	cache         router.Cache
	ls            *labelSet // answers no origin wrote
}

// epRoute is a compiled EntrypointRoute.
type epRoute struct {
	prefix string
	origin *originEntry // nil: the entrypoint's split
	ctl    *controls
}

// originEntry is an origin resolved in one snapshot.
type originEntry struct {
	name  string
	label string
	route string   // for a service; resolved per attempt in the current snapshot
	url   *url.URL // for an external origin
	ls    *labelSet
	guard *guard // for a shared origin under a guard
}

// controls are compiled Controls, plus the entrypoint-wide response
// settings every route shares.
type controls struct {
	// HeaderControls are the header add/remove, which the fast path
	// applies too.
	h1.HeaderControls
	timeout time.Duration
	maxBody int64
	pages   map[int][]byte
	hsts    []string // Strict-Transport-Security value; nil for none
	cache   bool     // read the cache status for the access log
	// overTLS are the header controls of an answer over HTTPS: the
	// HeaderControls, then Strict-Transport-Security when hsts is set,
	// as respWriter applies them.
	overTLS h1.HeaderControls
}

// fastControls are the header controls the fast path applies to an
// answer, over HTTPS or not; nil when there are none.
func (c *controls) fastControls(overTLS bool) *h1.HeaderControls {
	hc := &c.HeaderControls
	if overTLS {
		hc = &c.overTLS
	}
	if len(hc.Add) == 0 && len(hc.Remove) == 0 {
		return nil
	}
	return hc
}

// extState is what the entrypoint, metrics and access log machinery keep in
// an Edge beyond its routes. Guarded by Edge.mu.
type extState struct {
	eps       map[string]*installedEP
	guards    map[string]*guard
	metrics   *Metrics
	log       *accessLog
	onTrip    func(GuardTrip)
	httpsPort string
	unknownLS *labelSet
	// origin is the transport to external origins: TLS verified, HTTP/2.
	origin  *h1.Transport
	epProxy http.Handler
}

// compileEntrypointsLocked adds the installed entrypoints, and metric label
// sets for every route, to a snapshot being built.
func (e *Edge) compileEntrypointsLocked(s *snapshot) {
	x := &e.ext
	for k, rt := range s.routes {
		rt.ls = x.metrics.set(k, k)
	}
	s.epHosts = make(map[string]*epEntry)
	s.splits = make(map[string]*epEntry)
	names := make([]string, 0, len(x.eps))
	for n := range x.eps {
		names = append(names, n)
	}
	slices.Sort(names)
	used := map[string]bool{}
	for _, n := range names {
		ie := x.eps[n]
		ep := e.compileEntrypoint(s, ie, used)
		if k := ie.spec.Splits; k != "" && ie.spec.Origin.Route == k && s.splits[k] == nil {
			s.splits[k] = ep
		}
		for _, h := range ie.spec.Hosts {
			if other, ok := s.epHosts[h]; ok {
				e.log.Warn("host claimed by two entrypoints; the first name keeps it", "host", h, "kept", other.name, "ignored", n)
				continue
			}
			s.epHosts[h] = ep
		}
	}
	for k := range x.guards {
		if !used[k] {
			delete(x.guards, k)
		}
	}
}

func (e *Edge) compileEntrypoint(s *snapshot, ie *installedEP, used map[string]bool) *epEntry {
	sp := &ie.spec
	label := cmp.Or(sp.Label, sp.Name)
	ep := &epEntry{
		name: sp.Name, label: label, spec: sp, handler: ie.handler,
		maintenance: sp.Maintenance, redirectHTTPS: sp.RedirectHTTPS, cache: sp.Cache,
		ls: e.ext.metrics.set(label, ""),
	}
	origins := map[string]*originEntry{}
	resolve := func(o Origin) *originEntry {
		k := o.Name + "\x00" + originLabel(&o)
		if oe := origins[k]; oe != nil {
			return oe
		}
		oe := &originEntry{name: o.Name, label: originLabel(&o), route: o.Route, url: o.URL, ls: e.ext.metrics.set(label, originLabel(&o))}
		origins[k] = oe
		return oe
	}
	ep.arms = []*originEntry{resolve(sp.Origin)}
	names := []string{sp.Origin.Name}
	weights := []int{0}
	var g *guard
	if len(sp.Shares) > 0 && !sp.Guard.Off {
		g = e.guardLocked("ep:"+sp.Name+"#"+sp.ShiftID, sp.Guard, GuardTrip{Entrypoint: sp.Name, ID: sp.ShiftID, Origins: shareNames(sp.Shares)})
		used[g.key] = true
	}
	for _, sh := range sp.Shares {
		oe := resolve(sh.Origin)
		oe.guard = g
		ep.arms = append(ep.arms, oe)
		names = append(names, sh.Origin.Name)
		weights = append(weights, sh.Weight)
	}
	cookie := ""
	if sp.Sticky {
		cookie = cookieName(sp.Name)
	}
	ep.split = newSplit(names, weights, cookie, sp.Header, g)
	if sp.Failover != nil {
		ep.failover = resolve(sp.Failover.Origin)
		ep.failCodes = sp.Failover.Codes
	}
	var hsts []string
	if sp.HSTS > 0 {
		hsts = []string{"max-age=" + strconv.FormatInt(int64(sp.HSTS/time.Second), 10)}
	}
	ep.ctl = compileControls(sp.Controls, nil, sp.ErrorPages, hsts, sp.Cache != nil)
	for _, r := range sp.Routes {
		er := epRoute{prefix: r.Prefix, ctl: compileControls(r.Controls, &sp.Controls, sp.ErrorPages, hsts, sp.Cache != nil)}
		if r.Origin != nil {
			er.origin = resolve(*r.Origin)
		}
		ep.routes = append(ep.routes, er)
	}
	slices.SortStableFunc(ep.routes, func(a, b epRoute) int { return cmp.Compare(len(b.prefix), len(a.prefix)) })
	return ep
}

// cookieName is the sticky cookie of an entrypoint: "berth_" and its name,
// with what a cookie name cannot hold replaced by '_'.
func cookieName(name string) string {
	b := []byte("berth_" + name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}

func shareNames(ss []Share) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Origin.Name
	}
	return out
}

// compileControls merges a route's controls over the entrypoint's (parent).
func compileControls(c Controls, parent *Controls, pages map[int][]byte, hsts []string, cached bool) *controls {
	out := &controls{timeout: c.Timeout, maxBody: c.MaxBody, pages: pages, hsts: hsts, cache: cached}
	add := map[string]string{}
	var remove []string
	if parent != nil {
		out.timeout = cmp.Or(out.timeout, parent.Timeout)
		out.maxBody = cmp.Or(out.maxBody, parent.MaxBody)
		for k, v := range parent.AddHeaders {
			add[http.CanonicalHeaderKey(k)] = v
		}
		for _, k := range parent.RemoveHeaders {
			remove = append(remove, http.CanonicalHeaderKey(k))
		}
	}
	for k, v := range c.AddHeaders {
		add[http.CanonicalHeaderKey(k)] = v
	}
	for _, k := range c.RemoveHeaders {
		remove = append(remove, http.CanonicalHeaderKey(k))
	}
	for _, k := range remove {
		if !slices.Contains(out.Remove, k) {
			out.Remove = append(out.Remove, k)
		}
	}
	keys := make([]string, 0, len(add))
	for k := range add {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		out.Add = append(out.Add, h1.HeaderValue{Key: k, Values: []string{add[k]}})
	}
	out.overTLS = out.HeaderControls
	if hsts != nil {
		const sts = "Strict-Transport-Security"
		out.overTLS.Add = append(slices.DeleteFunc(slices.Clone(out.Add), func(hv h1.HeaderValue) bool { return hv.Key == sts }),
			h1.HeaderValue{Key: sts, Values: hsts})
	}
	return out
}

// guardLocked returns the guard with key, creating it with g's settings.
// A guard outlives snapshots so that its window is not reset by unrelated
// changes of the routing table.
func (e *Edge) guardLocked(key string, g Guard, trip GuardTrip) *guard {
	if gd := e.ext.guards[key]; gd != nil {
		return gd
	}
	if g.ErrorRate <= 0 && g.Window <= 0 {
		g.ErrorRate = DefaultGuardErrorRate
	}
	gd := newGuard(key, g)
	trip.Window = time.Duration(gd.bucketDur * guardBuckets)
	trip.Threshold = g.ErrorRate
	gd.onTrip = func(errs, total int64) {
		t := trip
		t.Errors, t.Requests = errs, total
		e.log.Warn("guard tripped: shift rolled back", "entrypoint", t.Entrypoint, "shift", t.ID, "origins", t.Origins,
			"errors", errs, "requests", total, "window", t.Window, "threshold", t.Threshold)
		if e.ext.onTrip != nil {
			e.ext.onTrip(t)
		}
	}
	e.ext.guards[key] = gd
	return gd
}

// match returns the route of an entrypoint that serves urlPath: its origin
// (nil for the split) and controls.
func (ep *epEntry) match(urlPath string) (*originEntry, *controls) {
	if len(ep.routes) == 0 {
		return nil, ep.ctl
	}
	p := cleanPath(urlPath)
	for i := range ep.routes {
		if r := &ep.routes[i]; matchPrefix(p, r.prefix) {
			return r.origin, r.ctl
		}
	}
	return nil, ep.ctl
}

// epState is one entrypoint request's state; it embeds the proxy state the
// service path uses, for the body, timeout and backend bookkeeping.
type epState struct {
	proxyState
	req    *http.Request
	snap   *snapshot
	ep     *epEntry
	ctl    *controls
	chosen *originEntry // picked before the cache
	origin *originEntry // the last one tried
	start  time.Time
	rw     respWriter
	ctx    context.Context // the context the request is served under
	replay []byte          // the body, kept for a failover (maxReplayBody)
	// splitGuard is the guard of the side of a split route the last
	// attempt took (Entrypoint.Splits), which counts its outcome.
	splitGuard *guard

	// dispatched is set by the request's trip to the origin (serveOrigin).
	dispatched atomic.Bool
	tooLarge   atomic.Bool
}

type epKey struct{}

func epStateOf(r *http.Request) *epState {
	es, _ := r.Context().Value(epKey{}).(*epState)
	return es
}

// serveEntrypoint serves r if its host belongs to an entrypoint, and reports
// whether it did.
func (e *Edge) serveEntrypoint(w http.ResponseWriter, r *http.Request, start time.Time) bool {
	s := e.snap.Load()
	if len(s.epHosts) == 0 {
		return false
	}
	host := normalizeHost(r.Host)
	ep := s.epHosts[host]
	if ep == nil {
		return false
	}
	es := &epState{req: r, snap: s, ep: ep, start: start}
	es.host, es.path = host, r.URL.Path
	origin, ctl := ep.match(es.path)
	es.ctl = ctl
	es.rw.init(w, r, ctl)
	w = &es.rw
	if ep.ls != nil {
		ep.ls.inflight.Inc()
	}
	defer e.finishEntrypoint(es)

	switch {
	case ep.redirectHTTPS && r.TLS == nil && e.ext.httpsPort != "":
		redirectHTTPS(w, r, es.host, e.ext.httpsPort)
		return true
	case ep.maintenance:
		writeError(w, r, http.StatusServiceUnavailable, ReasonMaintenance, ep.label+" is down for maintenance. Please try again later.")
		return true
	case ctl.maxBody > 0 && r.ContentLength > ctl.maxBody:
		writeError(w, r, http.StatusRequestEntityTooLarge, ReasonTooLarge, "The request body is larger than "+strconv.FormatInt(ctl.maxBody, 10)+" bytes.")
		return true
	}
	if ctl.maxBody > 0 && r.Body != nil && r.Body != http.NoBody {
		r.Body = &limitedBody{rc: r.Body, left: ctl.maxBody, es: es}
	}
	if ep.failover != nil && r.ContentLength > 0 && r.ContentLength <= maxReplayBody && idempotent(r) {
		// An idempotent request that reached its origin may be sent to the
		// failover origin too: keep its (small) body for that.
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			if es.tooLarge.Load() {
				writeError(w, r, http.StatusRequestEntityTooLarge, ReasonTooLarge, "The request body is larger than "+strconv.FormatInt(ctl.maxBody, 10)+" bytes.")
				return true
			}
			badBody(w, r, err)
			return true
		}
		es.replay = buf
		r.Body = io.NopCloser(bytes.NewReader(buf))
	}
	if origin == nil {
		arm, cookie := ep.split.choose(r)
		origin = ep.arms[arm]
		es.rw.setCookie = cookie
	}
	es.chosen = origin
	es.timeout = ctl.timeout

	ctx := r.Context()
	if es.timeout > 0 {
		if isUpgrade(r) {
			c, cancel := context.WithCancelCause(ctx)
			defer cancel(nil)
			es.upgradeTimer = time.AfterFunc(es.timeout, func() {
				if es.phase.CompareAndSwap(phaseWaiting, phaseTimedOut) {
					cancel(errRequestTimeout)
				}
			})
			defer es.upgradeTimer.Stop()
			ctx = c
		} else {
			c, cancel := context.WithTimeoutCause(ctx, es.timeout, errRequestTimeout)
			defer cancel()
			ctx = c
		}
	}
	es.ctx = context.WithValue(ctx, epKey{}, es)
	ep.handler.ServeHTTP(w, r.WithContext(es.ctx))
	return true
}

// finishEntrypoint records a finished entrypoint request in the metrics and
// the access log.
func (e *Edge) finishEntrypoint(es *epState) {
	ep := es.ep
	if ep.ls != nil {
		ep.ls.inflight.Dec()
	}
	ls, origin := ep.ls, ""
	if es.origin != nil {
		ls, origin = es.origin.ls, es.origin.label
	}
	e.record(ls, &es.rw, es.req, es.host, ep.label, origin, es.start)
}

// redirectHTTPS answers with a permanent redirect to the same URL over
// HTTPS, keeping the method (308).
func redirectHTTPS(w http.ResponseWriter, r *http.Request, host, port string) {
	target := "https://" + host
	if port != "443" {
		target += ":" + port
	}
	target += r.URL.RequestURI()
	w.Header().Set("Location", target)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusPermanentRedirect)
}

// limitedBody fails a request body that grows past the route's MaxBody, and
// marks the request so that the answer is 413.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
	es   *epState
}

var errTooLarge = errors.New("request body larger than the route allows")

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Anything beyond the limit is too much; a body of exactly the
		// limit ends here with EOF.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			b.es.tooLarge.Store(true)
			return 0, errTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// initExt sets up the entrypoint machinery from the options.
func (e *Edge) initExt(opts Options) {
	x := &e.ext
	x.eps = map[string]*installedEP{}
	x.guards = map[string]*guard{}
	x.metrics = opts.Metrics
	if opts.AccessLog != nil {
		x.log = &accessLog{w: opts.AccessLog}
	}
	x.onTrip = opts.OnGuardTrip
	x.httpsPort = opts.HTTPSPort
	x.unknownLS = x.metrics.set("", "")
	x.origin = newOriginTransport(opts.OriginRootCAs)
	x.epProxy = e.newEntrypointProxy()
	if x.metrics != nil {
		x.metrics.edge.Store(e)
	}
}
