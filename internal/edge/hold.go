package edge

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ReasonStarting is the X-Berth-Error of a held request that gave up: the
// queue was full, or no instance became healthy in time.
const ReasonStarting = "starting"

// holds tracks held requests: how many wait per route, and a channel closed
// at every change of the routing table, which is what they wait for.
type holds struct {
	// changed is replaced and closed by signal; nil until a request first
	// waits.
	changed atomic.Pointer[chan struct{}]

	mu   sync.Mutex
	held map[string]int // by route key
}

// wait returns a channel closed at the next signal.
func (h *holds) wait() <-chan struct{} {
	for {
		if c := h.changed.Load(); c != nil {
			return *c
		}
		c := make(chan struct{})
		if h.changed.CompareAndSwap(nil, &c) {
			return c
		}
	}
}

// signal wakes every waiter; they look at the routing table again.
func (h *holds) signal() {
	if h.changed.Load() == nil {
		return
	}
	c := make(chan struct{})
	if old := h.changed.Swap(&c); old != nil {
		close(*old)
	}
}

// add changes the held count of a route by n and returns the new count.
func (h *holds) add(key string, n int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held == nil {
		h.held = make(map[string]int)
	}
	v := h.held[key] + n
	if v <= 0 {
		delete(h.held, key)
		return 0
	}
	h.held[key] = v
	return v
}

func (h *holds) count(key string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held[key]
}

// hold waits for the route rt of a request that found no backend to get one
// (see Hold), then acquires a backend as ServeHTTP does. When it gives up it
// answers the request itself and returns ok false.
func (e *Edge) hold(w http.ResponseWriter, r *http.Request, ps *proxyState, rt *routeEntry) (_ *routeEntry, _ *target, _ outcome, ok bool) {
	h := rt.spec.Hold
	key := rt.key
	limit := h.Max
	if limit <= 0 {
		limit = DefaultMaxHeld
	}
	defer e.holds.add(key, -1)
	if e.holds.add(key, 1) > limit {
		writeError(w, r, http.StatusServiceUnavailable, ReasonStarting, "The service "+key+" is starting and too many requests are already waiting for it. Try again shortly.")
		return nil, nil, 0, false
	}
	var expired <-chan time.Time
	if h.Timeout > 0 {
		t := time.NewTimer(h.Timeout)
		defer t.Stop()
		expired = t.C
	}
	if h.Wake != nil {
		h.Wake()
	}
	for {
		// Take the channel before looking: a change between the look and the
		// wait then closes it, and is not missed.
		changed := e.holds.wait()
		rt, t, why := e.acquire(ps.host, ps.path, &ps.tried)
		if why != noBackend || rt.spec.Hold == nil {
			return rt, t, why, true
		}
		select {
		case <-changed:
		case <-expired:
			writeError(w, r, http.StatusServiceUnavailable, ReasonStarting, "The service "+key+" did not start within "+h.Timeout.String()+". Try again shortly.")
			return nil, nil, 0, false
		case <-r.Context().Done():
			// The client went away; nobody reads an answer.
			w.WriteHeader(http.StatusServiceUnavailable)
			return nil, nil, 0, false
		}
	}
}
