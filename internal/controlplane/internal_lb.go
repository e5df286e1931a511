package controlplane

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
	"github.com/berth-dev/berth/internal/router"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/store"
)

// internalSuffix ends every internal host name.
const internalSuffix = ".internal"

// internalPort is where containers send http://NAME.internal requests.
const internalPort = "80"

func internalHost(app, svc string) string { return svc + "." + app + internalSuffix }

func isInternalHost(h string) bool { return strings.HasSuffix(h, internalSuffix) }

// internalNets are the internal load balancers, one per app network. The
// zero value is ready to use.
type internalNets struct {
	mu   sync.Mutex
	apps map[string]*internalNet
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

// ensureInternal makes the app's internal names (its services with a port)
// resolvable and served: it finds the app network's gateway and listens
// there (again, if it failed before or the gateway moved), and records the
// names for the containers created from now on. Failing to listen is not
// an error: it is logged.
func (d *Daemon) ensureInternal(ctx context.Context, sp *spec.Spec) {
	var names []string
	for _, n := range sp.ServiceOrder {
		if svc := sp.Services[n]; svc != nil && svc.Port != 0 {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	in := d.internalNet(ctx, sp.App)
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
func (d *Daemon) internalNet(ctx context.Context, app string) *internalNet {
	d.inet.mu.Lock()
	defer d.inet.mu.Unlock()
	old := d.inet.apps[app]
	na, ok := d.pods.(runtime.InternalGateway)
	if !ok {
		return old
	}
	gw, subnet, err := na.NetworkAddrs(ctx, networkName(app))
	if err != nil {
		d.log.Warn("internal load balancing unavailable", "app", app, "err", err)
		return old
	}
	_, ipnet, err := net.ParseCIDR(subnet)
	if err != nil {
		d.log.Warn("internal load balancing unavailable", "app", app, "err", err)
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
		in.srv = &http.Server{Handler: in.handler(d), ReadHeaderTimeout: 30 * time.Second}
		d.bg.Add(1)
		go func() {
			defer d.bg.Done()
			if err := in.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.log.Warn("internal load balancer stopped", "app", app, "err", err)
			}
		}()
		d.bg.Add(1)
		go func() {
			defer d.bg.Done()
			<-d.ctx.Done()
			_ = in.srv.Close()
		}()
		d.log.Info("internal load balancer listening", "app", app, "addr", addr)
	case errors.Is(err, syscall.EADDRINUSE) && d.edgeOnAllAddrs():
		in.viaEdge = true
		d.log.Info("internal names are served by the edge's own listener on every address", "app", app, "addr", addr)
	default:
		d.log.Warn("internal load balancing unavailable: cannot listen on the app network's gateway "+
			"(run the daemon as root, or give it CAP_NET_BIND_SERVICE); tried again at the app's next deploy", "app", app, "addr", addr, "err", err)
	}
	if d.inet.apps == nil {
		d.inet.apps = map[string]*internalNet{}
	}
	d.inet.apps[app] = in
	return in
}

// edgeOnAllAddrs reports whether the edge's HTTP listener is on port 80 of
// every address, and so also receives the internal names' requests.
func (d *Daemon) edgeOnAllAddrs() bool {
	host, port, err := net.SplitHostPort(d.cfg.HTTPAddr)
	if err != nil || port != internalPort {
		return false
	}
	ip := net.ParseIP(host)
	return host == "" || ip != nil && ip.IsUnspecified()
}

// closeInternal stops an app's internal load balancer (the app is gone).
func (d *Daemon) closeInternal(app string) {
	d.inet.mu.Lock()
	in := d.inet.apps[app]
	delete(d.inet.apps, app)
	d.inet.mu.Unlock()
	if in != nil && in.srv != nil {
		_ = in.srv.Close()
	}
}

// internalNames are the app's internal host names (SERVICE.APP.internal)
// that its pods must reach its internal load balancer at; none while the
// balancer does not listen.
func (d *Daemon) internalNames(app string) []string {
	d.inet.mu.Lock()
	in := d.inet.apps[app]
	d.inet.mu.Unlock()
	if in == nil {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]string, len(in.names))
	for i, n := range in.names {
		out[i] = internalHost(app, n)
	}
	return out
}

// internalStatus reports one service's internal traffic, nil when the app
// has no internal load balancer.
func (d *Daemon) internalStatus(app, svc string) *api.InternalTraffic {
	d.inet.mu.Lock()
	in := d.inet.apps[app]
	d.inet.mu.Unlock()
	if in == nil {
		return nil
	}
	in.mu.Lock()
	st := in.stats[svc]
	in.mu.Unlock()
	if st == nil {
		return nil
	}
	out := &api.InternalTraffic{URL: "http://" + internalHost(app, svc), Requests: st.requests.Load(), Errors: st.errors.Load()}
	if in.srv != nil {
		out.Listener = net.JoinHostPort(in.gateway, internalPort)
	}
	if out.Requests > 0 {
		out.LatencyMeanMS = float64(st.nanos.Load()) / float64(out.Requests) / 1e6
	}
	return out
}

// handler serves the app's containers: their own internal names only.
func (in *internalNet) handler(d *Daemon) http.Handler {
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
		svc, ok := strings.CutSuffix(strings.TrimSuffix(name, "."), "."+in.app+internalSuffix)
		in.mu.Lock()
		st := in.stats[svc]
		known := ok && slices.Contains(in.names, svc)
		in.mu.Unlock()
		if !known {
			http.Error(w, fmt.Sprintf("404 Not Found: no service of app %s is named by host %q; use http://SERVICE.%s%s", in.app, r.Host, in.app, internalSuffix), http.StatusNotFound)
			return
		}
		rw := &statusWriter{ResponseWriter: w}
		d.edgeHTTP.ServeHTTP(rw, r)
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

// lbControls copies a service's load-balancer controls into its route.
func lbControls(r *router.Route, sp *spec.Service) {
	if sp.Sticky != nil {
		r.Sticky = sp.Sticky.Cookie
	}
	r.SlowStart = sp.SlowStart
	if mc := sp.MaxConcurrency; mc != nil {
		r.MaxConcurrency, r.QueueTimeout = mc.Requests, mc.Queue
	}
}

// restoreInternal brings an app's internal load balancer back after a
// daemon start, from the app's stored spec, so the running containers'
// internal names answer again.
func (d *Daemon) restoreInternal(ctx context.Context, app store.App) {
	if app.SpecYAML == "" {
		return
	}
	sp, err := spec.Parse(app.SpecFile, []byte(app.SpecYAML))
	if err != nil {
		d.log.Warn("internal load balancing: stored spec unreadable", "app", app.Name, "err", err)
		return
	}
	d.ensureInternal(ctx, sp)
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

// internalCollector exports every internal load balancer's counters.
type internalCollector struct{ d *Daemon }

var _ prometheus.Collector = internalCollector{}

func (internalCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- internalRequestsDesc
	ch <- internalErrorsDesc
	ch <- internalSecondsDesc
}

func (c internalCollector) Collect(ch chan<- prometheus.Metric) {
	c.d.inet.mu.Lock()
	nets := make([]*internalNet, 0, len(c.d.inet.apps))
	for _, in := range c.d.inet.apps {
		nets = append(nets, in)
	}
	c.d.inet.mu.Unlock()
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
