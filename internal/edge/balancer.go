package edge

import (
	"math"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"
)

// ejectFor is how long a backend that refused a connection is skipped. The
// control plane's health checks decide for longer; an Update that lists the
// backend re-admits it at once.
const ejectFor = 2 * time.Second

// maxAttempts bounds the backends one request tries when they refuse
// connections.
const maxAttempts = 16

// backendState holds the counters of one backend ID, shared by every route
// that lists it.
type backendState struct {
	inflight atomic.Int64
	// ejectedUntil is a clock() reading; 0 = never ejected.
	ejectedUntil atomic.Int64
	// Counters of different backends are written by every request; keep
	// each on its own cache line.
	_ [48]byte
	// stats count finished requests and their latency (stats.go).
	stats backendStats
}

// clockBase anchors clock to the monotonic clock, so ejection is immune to
// wall-clock jumps.
var clockBase = time.Now()

func clock() int64 { return int64(time.Since(clockBase)) }

// eject takes st out of rotation for ejectFor and reports whether it was in
// rotation until now.
func (st *backendState) eject() bool {
	now := clock()
	was := st.ejected(&now)
	st.ejectedUntil.Store(now + int64(ejectFor))
	return !was
}

func (st *backendState) readmit() {
	if st != nil && st.ejectedUntil.Load() != 0 {
		st.ejectedUntil.Store(0)
	}
}

// ejected reports whether st is ejected at *now, reading the clock into *now
// the first time it is needed: most picks meet no ejected backend and never
// read it.
func (st *backendState) ejected(now *int64) bool {
	until := st.ejectedUntil.Load()
	if until == 0 {
		return false
	}
	if *now == 0 {
		*now = clock()
	}
	return *now < until
}

// triedSet remembers the backends one request already tried, without
// allocating.
type triedSet struct {
	n  int
	st [maxAttempts]*backendState
	// r is the request, whose cookie a sticky route reads (nil: none).
	r *http.Request
	// capped is set by pick when it passed a backend at its route's
	// MaxConcurrency.
	capped bool
}

func (t *triedSet) add(st *backendState) {
	if t.n < len(t.st) {
		t.st[t.n] = st
		t.n++
	}
}

func (t *triedSet) has(st *backendState) bool {
	for _, s := range t.st[:t.n] {
		if s == st {
			return true
		}
	}
	return false
}

func (t *triedSet) full() bool { return t.n == len(t.st) }

// pick returns the backend with the fewest requests in flight, skipping the
// tried ones and preferring those not ejected; nil when none is left. If all
// untried backends are ejected the least loaded of them is still tried:
// ejection is a guess, and trying costs a refused dial, where giving up costs
// a failed request.
//
// It scans every backend from a random start, so ties (the usual case at low
// load) spread evenly. A full scan beats power-of-two choices at the instance
// counts one machine runs, and always finds the least loaded.
//
// The route's controls refine the choice: a sticky client's own backend
// comes first (sticky.go), a backend at MaxConcurrency is passed over
// (limit.go), and one in its slow start is taken only with a probability
// that grows over the window (slowstart.go).
func (rt *routeEntry) pick(tried *triedSet) *target {
	n := len(rt.backends)
	tried.capped = false
	switch {
	case n == 0 || tried.full():
		return nil
	case rt.sticky != "":
		if t := rt.stickyTarget(tried); t != nil {
			return t
		}
	}
	if n == 1 {
		t := &rt.backends[0]
		if tried.has(t.st) {
			return nil
		}
		if rt.atCap(t) {
			tried.capped = true
			return nil
		}
		return t
	}
	// rank orders the candidates: in rotation, then passed over by slow
	// start this time, then ejected; the least loaded wins within a rank.
	const (
		inRotation = iota
		warming
		ejected
		none
	)
	var (
		now      int64
		best     *target
		bestLoad int64 = math.MaxInt64
		bestRank       = none
	)
	i := rand.IntN(n)
	for range n {
		t := &rt.backends[i]
		if i++; i == n {
			i = 0
		}
		if tried.n > 0 && tried.has(t.st) {
			continue
		}
		load := t.st.inflight.Load()
		if rt.maxConc > 0 && load >= rt.maxConc {
			tried.capped = true
			continue
		}
		rank := inRotation
		switch {
		case t.st.ejected(&now):
			rank = ejected
		case t.since != 0 && rt.warming(t, &now):
			rank = warming
		}
		if rank < bestRank || (rank == bestRank && load < bestLoad) {
			best, bestLoad, bestRank = t, load, rank
		}
	}
	return best
}

// outcome says why acquire did not return a backend.
type outcome int

const (
	acquired outcome = iota
	unknownHost
	paused
	noBackend // none listed, or all tried
	saturated // every backend is at the route's MaxConcurrency
)

// acquire routes host and path in the current snapshot, picks a backend and
// counts the request on it. The count happens before the pick is validated
// against the current snapshot; WaitIdle's correctness rests on that order
// (see the comment there). The caller must uncount the returned target.
func (e *Edge) acquire(host, urlPath string, tried *triedSet) (*routeEntry, *target, outcome) {
	for {
		s := e.snap.Load()
		rt := s.lookup(host, urlPath)
		switch {
		case rt == nil:
			return nil, nil, unknownHost
		case rt.paused:
			return rt, nil, paused
		}
		t := rt.pick(tried)
		if t == nil {
			if tried.capped {
				return rt, nil, saturated
			}
			return rt, nil, noBackend
		}
		if n := t.st.inflight.Add(1); rt.maxConc > 0 && n > rt.maxConc {
			// Another request took the last slot between the pick and
			// the count: pick again.
			t.st.inflight.Add(-1)
			continue
		}
		if e.snap.Load() == s {
			return rt, t, acquired
		}
		t.st.inflight.Add(-1)
	}
}
