package controlplane

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/fleet"
	"github.com/berth-dev/berth/internal/router"
)

// The console's graphs: every historyEvery the traffic loop turns each
// service's revision totals (rates.go) into one point of requests per
// second, p50/p99 latency and errors per second over the interval, and
// keeps the last historyLen points (an hour) in a ring, in memory only.
// It reads what status already counts: the edge does no more work.
var historyEvery = 5 * time.Second // a variable so tests can shorten it

const historyLen = 720 // an hour of points at 5 s

// historyRing is one service's traffic points, guarded by trafficBooks.mu.
type historyRing struct {
	points [historyLen]api.TrafficPoint
	n      int // points held
	next   int // where the next point goes
	at     time.Time
	totals map[int]revTotals // at the last point
	errs   map[int]uint64    // 5xx by revision at the last point
}

// sample adds a point from the revisions' cumulative totals and 5xx counts
// now (the traffic loop calls it every historyEvery). The totals count
// from zero when the service's book began, so the first point covers the
// interval before it; the edge's 5xx counters may be older than the
// service (one destroyed and deployed again), so the first call only takes
// their baseline.
func (h *historyRing) sample(now time.Time, totals map[int]revTotals, errs map[int]uint64) {
	if h.at.IsZero() {
		h.at, h.errs = now.Add(-historyEvery), clone(errs)
	}
	secs := now.Sub(h.at).Seconds()
	p := api.TrafficPoint{Time: now}
	for rev, cur := range totals {
		prev := h.totals[rev]
		n := cur.requests - prev.requests
		e := errs[rev] - h.errs[rev]
		if errs[rev] < h.errs[rev] {
			e = 0
		}
		if n == 0 && e == 0 {
			continue
		}
		rs := api.RevisionSample{Revision: rev, RequestsPerSecond: float64(n) / secs, ErrorsPerSecond: float64(e) / secs}
		if n > 0 {
			var delta [router.NumLatencyBuckets]uint64
			for i := range delta {
				delta[i] = cur.buckets[i] - prev.buckets[i]
			}
			rs.LatencyP50MS = ms(quantile(delta, 0.50))
			rs.LatencyP99MS = ms(quantile(delta, 0.99))
		}
		p.Revisions = append(p.Revisions, rs)
	}
	sort.Slice(p.Revisions, func(i, j int) bool { return p.Revisions[i].Revision > p.Revisions[j].Revision })
	h.points[h.next] = p
	h.next = (h.next + 1) % historyLen
	h.n = min(h.n+1, historyLen)
	h.at, h.totals, h.errs = now, clone(totals), clone(errs)
}

// list is the points, oldest first.
func (h *historyRing) list() []api.TrafficPoint {
	out := make([]api.TrafficPoint, 0, h.n)
	start := (h.next - h.n + historyLen) % historyLen
	for i := range h.n {
		out = append(out, h.points[(start+i)%historyLen])
	}
	return out
}

func clone[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// edgeErrors reads the edge's 5xx counters by origin ("app/service", or
// "app/service@canary") from its metrics registry; nil when it cannot.
func (d *Daemon) edgeErrors() map[string]uint64 {
	if d.edgex.registry == nil {
		return nil
	}
	mfs, err := d.edgex.registry.Gather()
	if err != nil {
		return nil
	}
	out := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "berth_edge_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label(m, "code") == "5xx" {
				out[label(m, "origin")] += uint64(m.GetCounter().GetValue())
			}
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// revisionErrors attributes a service's 5xx counts at the edge to its
// revisions: the service's own origin to the serving revision, its
// canary's to the newest other live revision.
func revisionErrors(s *fleet.Service, errs map[string]uint64) map[int]uint64 {
	key := s.App() + "/" + s.Name()
	out := map[int]uint64{}
	serving := s.Serving().Number
	if n := errs[key]; n > 0 {
		out[serving] += n
	}
	var canary uint64
	for origin, n := range errs {
		if strings.HasPrefix(origin, key+"@") {
			canary += n
		}
	}
	if canary > 0 {
		other := 0
		for _, in := range s.Live() {
			if in.Revision != serving && in.Revision > other {
				other = in.Revision
			}
		}
		if other > 0 {
			out[other] += canary
		}
	}
	return out
}

func (d *Daemon) handleHistory(w http.ResponseWriter, r *http.Request) {
	app, name := r.PathValue("app"), r.PathValue("svc")
	s := d.fleet.Lookup(app, name)
	if s == nil {
		fail(w, fmt.Errorf("%w: app %q has no service %q; see \"berth status\"", ErrNotFound, app, name))
		return
	}
	out := api.TrafficHistory{App: app, Service: name, Every: historyEvery.String(), Points: []api.TrafficPoint{}}
	d.traffic.mu.Lock()
	if b := d.traffic.books[s]; b != nil {
		out.Points = b.history.list()
	}
	d.traffic.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}
