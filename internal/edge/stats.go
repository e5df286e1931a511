package edge

import (
	"sync/atomic"
	"time"
)

// LatencyBuckets are the upper bounds of the per-backend latency histogram;
// a last, unbounded bucket follows them. They are spaced for web requests:
// fine below 100ms, coarse above a second.
var LatencyBuckets = [...]time.Duration{
	500 * time.Microsecond,
	time.Millisecond,
	2 * time.Millisecond,
	5 * time.Millisecond,
	10 * time.Millisecond,
	20 * time.Millisecond,
	50 * time.Millisecond,
	100 * time.Millisecond,
	200 * time.Millisecond,
	500 * time.Millisecond,
	time.Second,
	2 * time.Second,
	5 * time.Second,
	10 * time.Second,
	30 * time.Second,
}

// NumLatencyBuckets is len(LatencyBuckets) plus the unbounded bucket.
const NumLatencyBuckets = len(LatencyBuckets) + 1

// backendStats counts the requests a backend finished and how long they
// took: a handful of atomic adds per request, no lock, no allocation.
type backendStats struct {
	requests atomic.Uint64
	nanos    atomic.Uint64
	buckets  [NumLatencyBuckets]atomic.Uint64
}

func (s *backendStats) observe(d time.Duration) {
	i := 0
	for i < len(LatencyBuckets) && d > LatencyBuckets[i] {
		i++
	}
	s.buckets[i].Add(1)
	s.nanos.Add(uint64(max(d, 0)))
	s.requests.Add(1)
}

// BackendStats are a backend's cumulative counters since the edge started
// counting it (when a route first listed it). They restart from zero if the
// edge forgot the backend in between (it was unlisted and idle); readers
// that compute rates treat a decrease as such a reset.
type BackendStats struct {
	// Requests is how many requests the backend answered (any status).
	Requests uint64
	// Latency is their summed duration, arrival at the edge to the end of
	// the response.
	Latency time.Duration
	// Buckets counts requests by latency: Buckets[i] holds those at most
	// LatencyBuckets[i] (and above the previous bound); the last one the rest.
	Buckets [NumLatencyBuckets]uint64
}

// Stats returns the counters of a backend, and false if the edge does not
// know it (never listed, or forgotten since).
func (e *Edge) Stats(backendID string) (BackendStats, bool) {
	e.mu.Lock()
	st := e.states[backendID]
	e.mu.Unlock()
	if st == nil {
		return BackendStats{}, false
	}
	var out BackendStats
	// Not one atomic snapshot: a request finishing during the read may be
	// in the buckets and not yet in Requests; the next reading has it.
	for i := range out.Buckets {
		out.Buckets[i] = st.stats.buckets[i].Load()
	}
	out.Latency = time.Duration(st.stats.nanos.Load())
	out.Requests = st.stats.requests.Load()
	return out, true
}

// RouteLoad is a route's demand at one instant.
type RouteLoad struct {
	// InFlight is the requests being served by the route's backends.
	InFlight int
	// Held is the requests waiting for the route's first backend (see Hold).
	Held int
	// Backends is how many backends the route lists.
	Backends int
}

// Load returns the demand on the route with the given key (zero if there is
// none). It reads the current snapshot and counters without a lock.
func (e *Edge) Load(key string) RouteLoad {
	var l RouteLoad
	if rt := e.snap.Load().routes[key]; rt != nil {
		l.Backends = len(rt.backends)
		for i := range rt.backends {
			l.InFlight += int(rt.backends[i].st.inflight.Load())
		}
	}
	l.Held = e.holds.count(key)
	return l
}

// observe counts the finished request on the backend that answered it (the
// last one tried), if any.
func (ps *proxyState) observe(start time.Time) {
	if ps.target != nil {
		ps.target.st.stats.observe(time.Since(start))
	}
}
