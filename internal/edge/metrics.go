package edge

import (
	"cmp"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-dev/berth/internal/edge/h1"
)

// Metrics are the edge's Prometheus metrics. Labels:
//
//   - entrypoint: the entrypoint's name, or the route key "app/service" of a
//     service's own host names; "" for a request whose host matches nothing;
//   - origin: what answered: a service "app/service" (its canary
//     "app/service@canary"), an external origin "https://host", or "" when
//     the edge answered by itself (a cache hit, maintenance, a redirect, 413);
//   - code: the status class, "2xx" ... "5xx".
//
// The request path never builds a label set: every route and origin holds
// its metric children, resolved when the routing table is built.
type Metrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	bytes          *prometheus.CounterVec
	upstreamErrors *prometheus.CounterVec
	inflight       *prometheus.GaugeVec

	cacheHits, cacheMisses, cacheStale, cacheObjects, cacheBytes *prometheus.Desc

	mu   sync.Mutex
	sets map[[2]string]*labelSet

	// edge is the Edge these metrics describe, for the cache collector.
	edge atomic.Pointer[Edge]
}

// upstreamErr is a kind of upstream failure, a label value of
// berth_edge_upstream_errors_total.
type upstreamErr = h1.Failure

const (
	errUnreachable = h1.Unreachable // no connection could be made
	errTimeout     = h1.TimedOut    // no answer within the timeout
	errBroken      = h1.Broken      // the connection failed after the request was sent
	numUpstreamErr = 3
)

var upstreamErrNames = [numUpstreamErr]string{"unreachable", "timeout", "error"}

// latencyBuckets resolve the sub-millisecond overhead of the edge as well as
// slow origins.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

var codeClasses = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// NewMetrics creates the edge's metrics and registers them with reg. Pass
// the result in Options.Metrics.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "berth", Subsystem: "edge", Name: "requests_total",
			Help: "Requests answered by the edge, by entrypoint (or service), origin and status class.",
		}, []string{"entrypoint", "origin", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "berth", Subsystem: "edge", Name: "request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its response, by entrypoint (or service) and origin.",
			Buckets: latencyBuckets,
		}, []string{"entrypoint", "origin"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "berth", Subsystem: "edge", Name: "response_bytes_total",
			Help: "Response body bytes sent to clients, by entrypoint (or service) and origin.",
		}, []string{"entrypoint", "origin"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "berth", Subsystem: "edge", Name: "upstream_errors_total",
			Help: "Attempts to reach an origin that got no response: unreachable (connection failed), timeout, error (failed after the request was sent).",
		}, []string{"entrypoint", "origin", "kind"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "berth", Subsystem: "edge", Name: "requests_in_flight",
			Help: "Requests the edge is serving now, by entrypoint (or service).",
		}, []string{"entrypoint"}),
		cacheHits:    prometheus.NewDesc("berth_edge_cache_hits_total", "Requests an entrypoint's cache answered without its origin.", []string{"entrypoint"}, nil),
		cacheMisses:  prometheus.NewDesc("berth_edge_cache_misses_total", "Requests an entrypoint's cache sent to the origin with nothing usable stored.", []string{"entrypoint"}, nil),
		cacheStale:   prometheus.NewDesc("berth_edge_cache_stale_total", "Requests an entrypoint's cache answered with a stale response.", []string{"entrypoint"}, nil),
		cacheObjects: prometheus.NewDesc("berth_edge_cache_objects", "Responses an entrypoint's cache holds.", []string{"entrypoint"}, nil),
		cacheBytes:   prometheus.NewDesc("berth_edge_cache_bytes", "Bytes an entrypoint's cache holds, in memory and on disk.", []string{"entrypoint", "store"}, nil),
		sets:         map[[2]string]*labelSet{},
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.bytes, m.upstreamErrors, m.inflight, cacheCollector{m}} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register edge metrics: %w", err)
		}
	}
	return m, nil
}

// labelSet holds the metric children of one (entrypoint, origin) pair.
type labelSet struct {
	codes    [len(codeClasses)]prometheus.Counter
	duration prometheus.Observer
	bytes    prometheus.Counter
	errs     [numUpstreamErr]prometheus.Counter
	inflight prometheus.Gauge
}

// set returns the children for (entrypoint, origin), creating them once.
// It is called while routing tables are built, never per request. A nil
// Metrics returns nil, and a nil *labelSet records nothing.
func (m *Metrics) set(entrypoint, origin string) *labelSet {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{entrypoint, origin}
	if ls := m.sets[k]; ls != nil {
		return ls
	}
	ls := &labelSet{
		duration: m.duration.WithLabelValues(entrypoint, origin),
		bytes:    m.bytes.WithLabelValues(entrypoint, origin),
		inflight: m.inflight.WithLabelValues(entrypoint),
	}
	for i, c := range codeClasses {
		ls.codes[i] = m.requests.WithLabelValues(entrypoint, origin, c)
	}
	for i, n := range upstreamErrNames {
		ls.errs[i] = m.upstreamErrors.WithLabelValues(entrypoint, origin, n)
	}
	m.sets[k] = ls
	return ls
}

// observe records one finished request.
func (ls *labelSet) observe(status int, bytes int64, seconds float64) {
	if ls == nil {
		return
	}
	class := status / 100
	if class < 1 || class >= len(codeClasses) {
		class = 0
	}
	ls.codes[class].Inc()
	ls.duration.Observe(seconds)
	if bytes > 0 {
		ls.bytes.Add(float64(bytes))
	}
}

func (ls *labelSet) upstreamError(kind upstreamErr) {
	if ls != nil {
		ls.errs[kind].Inc()
	}
}

// cacheCollector reports the counters of every entrypoint's cache at scrape
// time, so cache hits cost the request path nothing.
type cacheCollector struct{ m *Metrics }

func (c cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.m.cacheHits
	ch <- c.m.cacheMisses
	ch <- c.m.cacheStale
	ch <- c.m.cacheObjects
	ch <- c.m.cacheBytes
}

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	e := c.m.edge.Load()
	if e == nil {
		return
	}
	type named struct {
		name  string
		cache Cache
	}
	var caches []named
	e.mu.Lock()
	for _, ie := range e.ext.eps {
		if c, ok := ie.spec.Cache.(Cache); ok {
			caches = append(caches, named{cmp.Or(ie.spec.Label, ie.spec.Name), c})
		}
	}
	e.mu.Unlock()
	m := c.m
	for _, nc := range caches {
		name, st := nc.name, nc.cache.Stats()
		ch <- prometheus.MustNewConstMetric(m.cacheHits, prometheus.CounterValue, float64(st.Hits), name)
		ch <- prometheus.MustNewConstMetric(m.cacheMisses, prometheus.CounterValue, float64(st.Misses), name)
		ch <- prometheus.MustNewConstMetric(m.cacheStale, prometheus.CounterValue, float64(st.Stale), name)
		ch <- prometheus.MustNewConstMetric(m.cacheObjects, prometheus.GaugeValue, float64(st.Objects), name)
		ch <- prometheus.MustNewConstMetric(m.cacheBytes, prometheus.GaugeValue, float64(st.MemoryBytes), name, "memory")
		ch <- prometheus.MustNewConstMetric(m.cacheBytes, prometheus.GaugeValue, float64(st.DiskBytes), name, "disk")
	}
}
