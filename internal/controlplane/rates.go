package controlplane

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/fleet"
	"github.com/berth-dev/berth/internal/router"
)

// Request rate and latency per revision, for status. The edge counts per
// instance (router.BackendStats, a few atomic adds per request); every
// trafficEvery the traffic loop folds each instance's new requests into
// its revision's totals and keeps the totals of the last trafficWindow, so
// status reports rates and percentiles over that window.
const (
	trafficEvery  = time.Second
	trafficWindow = time.Minute
	// trafficForget drops the last reading of an instance not seen for
	// this long.
	trafficForget = 10 * time.Minute
)

// revTotals are a revision's cumulative request counters.
type revTotals struct {
	requests uint64
	latency  time.Duration
	buckets  [router.NumLatencyBuckets]uint64
}

func (t *revTotals) add(cur, prev router.BackendStats) {
	if cur.Requests < prev.Requests {
		prev = router.BackendStats{} // the edge restarted counting it
	}
	t.requests += cur.Requests - prev.Requests
	t.latency += cur.Latency - prev.Latency
	for i := range t.buckets {
		t.buckets[i] += cur.Buckets[i] - prev.Buckets[i]
	}
}

// trafficPoint is every revision's totals at one sample.
type trafficPoint struct {
	at   time.Time
	revs map[int]revTotals
}

type instanceReading struct {
	stats router.BackendStats
	at    time.Time
}

// trafficBook is one service's traffic history, guarded by trafficBooks.mu.
type trafficBook struct {
	last   map[string]instanceReading // by instance ID
	totals map[int]revTotals          // since the daemon started
	points []trafficPoint             // oldest first, covering trafficWindow
	// history is the last hour, for the console's graphs (history.go).
	history historyRing
}

// reading is one instance's counters at a sample.
type reading struct {
	id    string
	rev   int
	stats router.BackendStats
}

// trafficBooks are the services' traffic histories, by the fleet's
// service: a service destroyed and deployed again starts a new one.
type trafficBooks struct {
	mu    sync.Mutex
	books map[*fleet.Service]*trafficBook
	// historyAt is when the histories last took a point.
	historyAt time.Time
}

// trafficLoop samples the traffic (sampleTraffic) every trafficEvery until
// ctx ends.
func (d *Daemon) trafficLoop(ctx context.Context) {
	tick := time.NewTicker(trafficEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			d.sampleTraffic(now)
		}
	}
}

// sampleTraffic reads every serving instance's counters from the edge.
func (d *Daemon) sampleTraffic(now time.Time) {
	defer d.contain("traffic sample")
	ss := d.fleet.Services("")
	// The histories take a point every historyEvery, with the edge's 5xx
	// counts read once for all services.
	var errs map[string]uint64
	d.traffic.mu.Lock()
	historyDue := now.Sub(d.traffic.historyAt) >= historyEvery
	if historyDue {
		d.traffic.historyAt = now
	}
	d.traffic.mu.Unlock()
	if historyDue {
		errs = d.edgeErrors()
	}
	for _, s := range ss {
		live := s.Live()
		rs := make([]reading, 0, len(live))
		for _, in := range live {
			if st, ok := d.edge.Stats(in.ID); ok {
				rs = append(rs, reading{id: in.ID, rev: in.Revision, stats: st})
			}
		}
		var revErrs map[int]uint64
		if historyDue {
			revErrs = revisionErrors(s, errs)
		}
		d.traffic.mu.Lock()
		b := d.traffic.books[s]
		if b == nil {
			b = &trafficBook{}
			d.traffic.books[s] = b
		}
		b.record(now, rs)
		if historyDue {
			b.history.sample(now, b.totals, revErrs)
		}
		d.traffic.mu.Unlock()
	}
	d.traffic.mu.Lock()
	defer d.traffic.mu.Unlock()
	for s := range d.traffic.books {
		if !slices.Contains(ss, s) {
			delete(d.traffic.books, s)
		}
	}
}

// trafficReport is the traffic of app/name over the window, by revision
// (serving first).
func (d *Daemon) trafficReport(app, name string, serving int) []api.RevisionTraffic {
	s := d.fleet.Lookup(app, name)
	d.traffic.mu.Lock()
	defer d.traffic.mu.Unlock()
	if b := d.traffic.books[s]; b != nil {
		return b.report(serving)
	}
	return nil
}

func (b *trafficBook) record(now time.Time, rs []reading) {
	if b.last == nil {
		b.last, b.totals = map[string]instanceReading{}, map[int]revTotals{}
	}
	if len(b.points) == 0 {
		// Nothing counted before the first sample: the requests it finds
		// came in the tick before it, so the window starts there at zero.
		b.points = append(b.points, trafficPoint{at: now.Add(-trafficEvery), revs: map[int]revTotals{}})
	}
	for _, r := range rs {
		t := b.totals[r.rev]
		t.add(r.stats, b.last[r.id].stats)
		b.totals[r.rev] = t
		b.last[r.id] = instanceReading{stats: r.stats, at: now}
	}
	for id, r := range b.last {
		if now.Sub(r.at) > trafficForget {
			delete(b.last, id)
		}
	}
	p := trafficPoint{at: now, revs: make(map[int]revTotals, len(b.totals))}
	for rev, t := range b.totals {
		p.revs[rev] = t
	}
	b.points = append(b.points, p)
	// Keep one point at or before the window's start, to difference against.
	cut := now.Add(-trafficWindow)
	i := 0
	for i+1 < len(b.points) && !b.points[i+1].at.After(cut) {
		i++
	}
	b.points = b.points[i:]
}

// report returns each revision's traffic over the window; serving is always
// listed once it has answered a request, others only while they answer.
func (b *trafficBook) report(serving int) []api.RevisionTraffic {
	if len(b.points) == 0 {
		return nil
	}
	first, last := b.points[0], b.points[len(b.points)-1]
	elapsed := last.at.Sub(first.at)
	var out []api.RevisionTraffic
	for rev, cur := range last.revs {
		prev := first.revs[rev]
		inWindow := cur.requests - prev.requests
		if (rev != serving && inWindow == 0) || cur.requests == 0 {
			continue
		}
		rt := api.RevisionTraffic{Revision: rev, Requests: cur.requests, Window: elapsed.Round(time.Second).String()}
		if elapsed > 0 {
			rt.RequestsPerSecond = float64(inWindow) / elapsed.Seconds()
		}
		if inWindow > 0 {
			var delta [router.NumLatencyBuckets]uint64
			for i := range delta {
				delta[i] = cur.buckets[i] - prev.buckets[i]
			}
			rt.LatencyMeanMS = ms((cur.latency - prev.latency) / time.Duration(inWindow))
			rt.LatencyP50MS = ms(quantile(delta, 0.50))
			rt.LatencyP99MS = ms(quantile(delta, 0.99))
		}
		out = append(out, rt)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Revision == serving) != (out[j].Revision == serving) {
			return out[i].Revision == serving
		}
		return out[i].Revision > out[j].Revision
	})
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// quantile estimates the q-quantile of a latency histogram, interpolating
// linearly inside the bucket it falls in.
func quantile(buckets [router.NumLatencyBuckets]uint64, q float64) time.Duration {
	var total uint64
	for _, n := range buckets {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var seen float64
	for i, n := range buckets {
		if n == 0 {
			continue
		}
		if seen+float64(n) >= rank {
			if i == len(router.LatencyBuckets) {
				return router.LatencyBuckets[i-1] // the unbounded bucket: its lower bound
			}
			lo := time.Duration(0)
			if i > 0 {
				lo = router.LatencyBuckets[i-1]
			}
			hi := router.LatencyBuckets[i]
			return lo + time.Duration(float64(hi-lo)*(rank-seen)/float64(n))
		}
		seen += float64(n)
	}
	return router.LatencyBuckets[len(router.LatencyBuckets)-1]
}
