package traffic

// Internal load balancing, as ECS Service Connect does it: inside an app,
// http://api.shop.internal reaches service api through the edge (least
// outstanding requests, health, draining, sticky sessions, limits), where
// http://api:8080 reaches one container directly by DNS.
//
// Every container of the app resolves <service>.<app>.internal to the app
// network's gateway, the host's own address on that network (an /etc/hosts
// entry given at create), where the daemon listens on port 80 with a
// handler that serves only the app's own containers (by source address)
// and only the app's internal names, then hands the request to the edge,
// whose routes carry those names. Requests through it are counted apart
// (status "internal", berth_internal_requests_total).
//
// Port 80 on the gateway needs root (or CAP_NET_BIND_SERVICE). When it
// cannot be bound, the daemon says so and tries again the next time the
// app needs it (its next deploy, a daemon start); if the edge itself
// listens on :80 of every address, the names still work through it,
// uncounted. A network made again on another gateway gets a listener
// there at that same moment.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/store"
)

// InternalSuffix ends every internal host name.
const InternalSuffix = ".internal"

// internalPort is where containers send http://NAME.internal requests.
const internalPort = "80"

// InternalHost is the internal name of service svc of app.
func InternalHost(app, svc string) string { return svc + "." + app + InternalSuffix }

// IsInternalHost reports whether h is an internal name, served to the
// app's own containers only.
func IsInternalHost(h string) bool { return strings.HasSuffix(h, InternalSuffix) }

// InternalConfig is what the internal load balancers are given.
type InternalConfig struct {
	Log *slog.Logger
	// Net tells an app network's gateway; nil when the engine cannot, and
	// then there is no internal load balancing.
	Net runtime.InternalGateway
	// Network is the name of app's network.
	Network func(app string) string
	// Edge serves the requests, whose routes carry the internal names.
	Edge http.Handler
	// EdgeOnAllAddrs says the edge's HTTP listener is on port 80 of every
	// address, and so also receives the internal names' requests.
	EdgeOnAllAddrs bool
	// Ctx is the daemon's lifetime: the listeners close when it ends. BG
	// tracks their goroutines.
	Ctx context.Context
	BG  *sync.WaitGroup
}

// InternalLBs are the internal load balancers, one per app network.
type InternalLBs struct {
	cfg  InternalConfig
	log  *slog.Logger
	mu   sync.Mutex
	apps map[string]*internalNet
}

// NewInternal returns the internal load balancers of cfg, none listening
// yet: Ensure or Restore starts an app's.
func NewInternal(cfg InternalConfig) *InternalLBs {
	return &InternalLBs{cfg: cfg, log: cfg.Log, apps: map[string]*internalNet{}}
}

// internalNet is one app's internal load balancer.
type internalNet struct {
	app     string
	gateway string
	subnet  *net.IPNet
	srv     *http.Server // nil when it could not listen
	viaEdge bool         // the edge's own :80 serves the names instead
	mu      sync.Mutex
	names   []string                  // services with a port, sorted
	stats   map[string]*internalStats // by service
}

// internalStats count one service's requests through its internal name.
type internalStats struct {
	requests, errors atomic.Uint64
	nanos            atomic.Uint64
}

// Ensure makes the app's internal names (its services with a port)
// resolvable and served: it finds the app network's gateway and listens
// there (again, if it failed before or the gateway moved), and records the
// names for the containers created from now on. Failing to listen is not
// an error: it is logged.
func (l *InternalLBs) Ensure(ctx context.Context, sp *spec.Spec) {
	var names []string
	for _, n := range sp.ServiceOrder {
		if svc := sp.Services[n]; svc != nil && svc.Port != 0 {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	in := l.internalNet(ctx, sp.App)
	if in == nil {
		return
	}
	in.mu.Lock()
	in.names = names
	for _, n := range names {
		if in.stats[n] == nil {
			in.stats[n] = &internalStats{}
		}
	}
	in.mu.Unlock()
}

// internalNet returns the app's internal load balancer, starting it if
// needed: the first time, after a failed listen, or when the app network's
// gateway is no longer the one it listens on (a network made again by a
// deploy before the reconciler's restoreNetwork saw it gone). It returns
// the one it has, or nil, when the engine cannot tell the gateway.
func (l *InternalLBs) internalNet(ctx context.Context, app string) *internalNet {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.apps[app]
	if l.cfg.Net == nil {
		return old
	}
	gw, subnet, err := l.cfg.Net.NetworkAddrs(ctx, l.cfg.Network(app))
	if err != nil {
		l.log.Warn("internal load balancing unavailable", "app", app, "err", err)
		return old
	}
	_, ipnet, err := net.ParseCIDR(subnet)
	if err != nil {
		l.log.Warn("internal load balancing unavailable", "app", app, "err", err)
		return old
	}
	if old != nil && old.gateway == gw && (old.srv != nil || old.viaEdge) {
		return old
	}
	// A new value rather than a changed one: the handlers and readers of
	// old see its fields as they were. Names and counters carry over.
	in := &internalNet{app: app, gateway: gw, subnet: ipnet, stats: map[string]*internalStats{}}
	if old != nil {
		if old.srv != nil {
			_ = old.srv.Close() // on a gateway the network no longer has
		}
		old.mu.Lock()
		in.names = old.names
		maps.Copy(in.stats, old.stats)
		old.mu.Unlock()
	}
	addr := net.JoinHostPort(gw, internalPort)
	ln, err := net.Listen("tcp", addr)
	switch {
	case err == nil:
		in.srv = &http.Server{Handler: in.handler(l.cfg.Edge), ReadHeaderTimeout: 30 * time.Second}
		l.cfg.BG.Add(1)
		go func() {
			defer l.cfg.BG.Done()
			if err := in.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				l.log.Warn("internal load balancer stopped", "app", app, "err", err)
			}
		}()
		l.cfg.BG.Add(1)
		go func() {
			defer l.cfg.BG.Done()
			<-l.cfg.Ctx.Done()
			_ = in.srv.Close()
		}()
		l.log.Info("internal load balancer listening", "app", app, "addr", addr)
	case errors.Is(err, syscall.EADDRINUSE) && l.cfg.EdgeOnAllAddrs:
		in.viaEdge = true
		l.log.Info("internal names are served by the edge's own listener on every address", "app", app, "addr", addr)
	default:
		l.log.Warn("internal load balancing unavailable: cannot listen on the app network's gateway "+
			"(run the daemon as root, or give it CAP_NET_BIND_SERVICE); tried again at the app's next deploy", "app", app, "addr", addr, "err", err)
	}
	l.apps[app] = in
	return in
}

// Close stops an app's internal load balancer (the app is gone).
func (l *InternalLBs) Close(app string) {
	l.mu.Lock()
	in := l.apps[app]
	delete(l.apps, app)
	l.mu.Unlock()
	if in != nil && in.srv != nil {
		_ = in.srv.Close()
	}
}

// Names are the app's internal host names (SERVICE.APP.internal)
// that its pods must reach its internal load balancer at; none while the
// balancer does not listen.
func (l *InternalLBs) Names(app string) []string {
	l.mu.Lock()
	in := l.apps[app]
	l.mu.Unlock()
	if in == nil {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]string, len(in.names))
	for i, n := range in.names {
		out[i] = InternalHost(app, n)
	}
	return out
}

// Status reports one service's internal traffic, nil when the app
// has no internal load balancer.
func (l *InternalLBs) Status(app, svc string) *api.InternalTraffic {
	l.mu.Lock()
	in := l.apps[app]
	l.mu.Unlock()
	if in == nil {
		return nil
	}
	in.mu.Lock()
	st := in.stats[svc]
	in.mu.Unlock()
	if st == nil {
		return nil
	}
	out := &api.InternalTraffic{URL: "http://" + InternalHost(app, svc), Requests: st.requests.Load(), Errors: st.errors.Load()}
	if in.srv != nil {
		out.Listener = net.JoinHostPort(in.gateway, internalPort)
	}
	if out.Requests > 0 {
		out.LatencyMeanMS = float64(st.nanos.Load()) / float64(out.Requests) / 1e6
	}
	return out
}

// handler serves the app's containers: their own internal names only.
func (in *internalNet) handler(edge http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !in.subnet.Contains(ip) {
			http.Error(w, "403 Forbidden: this is the internal load balancer of app "+in.app+"; only its own containers may use it", http.StatusForbidden)
			return
		}
		name := strings.ToLower(r.Host)
		if h, _, err := net.SplitHostPort(name); err == nil {
			name = h
		}
		svc, ok := strings.CutSuffix(strings.TrimSuffix(name, "."), "."+in.app+InternalSuffix)
		in.mu.Lock()
		st := in.stats[svc]
		known := ok && slices.Contains(in.names, svc)
		in.mu.Unlock()
		if !known {
			http.Error(w, fmt.Sprintf("404 Not Found: no service of app %s is named by host %q; use http://SERVICE.%s%s", in.app, r.Host, in.app, InternalSuffix), http.StatusNotFound)
			return
		}
		rw := &statusWriter{ResponseWriter: w}
		edge.ServeHTTP(rw, r)
		st.requests.Add(1)
		st.nanos.Add(uint64(time.Since(start)))
		if rw.status >= 500 {
			st.errors.Add(1)
		}
	})
}

// statusWriter records the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets the proxy flush and hijack (WebSockets) through it.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Restore brings an app's internal load balancer back after a
// daemon start, from the app's stored spec, so the running containers'
// internal names answer again.
func (l *InternalLBs) Restore(ctx context.Context, app store.App) {
	if app.SpecYAML == "" {
		return
	}
	sp, err := spec.Parse(app.SpecFile, []byte(app.SpecYAML))
	if err != nil {
		l.log.Warn("internal load balancing: stored spec unreadable", "app", app.Name, "err", err)
		return
	}
	l.Ensure(ctx, sp)
}

// Prometheus metrics of the internal load balancers, read at scrape time.
var (
	internalRequestsDesc = prometheus.NewDesc("berth_internal_requests_total",
		"Requests from an app's own containers through a service's internal name (http://SERVICE.APP.internal).",
		[]string{"app", "service"}, nil)
	internalErrorsDesc = prometheus.NewDesc("berth_internal_errors_total",
		"Internal requests answered with a 5xx status.", []string{"app", "service"}, nil)
	internalSecondsDesc = prometheus.NewDesc("berth_internal_request_duration_seconds_total",
		"Time spent on internal requests, from arrival to the end of the response.", []string{"app", "service"}, nil)
)

// InternalLBs export every internal load balancer's counters.
var _ prometheus.Collector = (*InternalLBs)(nil)

// Describe sends the internal load balancers' metric descriptions.
func (*InternalLBs) Describe(ch chan<- *prometheus.Desc) {
	ch <- internalRequestsDesc
	ch <- internalErrorsDesc
	ch <- internalSecondsDesc
}

// Collect sends every internal load balancer's counters.
func (l *InternalLBs) Collect(ch chan<- prometheus.Metric) {
	l.mu.Lock()
	nets := make([]*internalNet, 0, len(l.apps))
	for _, in := range l.apps {
		nets = append(nets, in)
	}
	l.mu.Unlock()
	for _, in := range nets {
		in.mu.Lock()
		for svc, st := range in.stats {
			ch <- prometheus.MustNewConstMetric(internalRequestsDesc, prometheus.CounterValue, float64(st.requests.Load()), in.app, svc)
			ch <- prometheus.MustNewConstMetric(internalErrorsDesc, prometheus.CounterValue, float64(st.errors.Load()), in.app, svc)
			ch <- prometheus.MustNewConstMetric(internalSecondsDesc, prometheus.CounterValue, float64(st.nanos.Load())/1e9, in.app, svc)
		}
		in.mu.Unlock()
	}
}
