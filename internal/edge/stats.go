package edge

import (
	"sync/atomic"
	"time"
)

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
