package edge

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// Maximum concurrency (Route.MaxConcurrency): a backend with that many
// requests in flight is passed over. When every backend is at the cap, the
// request waits in a short queue (Route.QueueTimeout) for a slot, and gets
// 503 "overloaded" if none frees up in time, so an overloaded instance is
// never pushed further and a client learns at once to back off.

// ReasonOverloaded is X-Berth-Error of a 503 for a request that found every
// instance at its route's MaxConcurrency for the whole queue time.
const ReasonOverloaded = "overloaded"

// queuePoll is how often a queued request looks for a free slot. Slots free
// up when requests finish, which takes milliseconds; polling keeps the
// request path free of any notification.
const queuePoll = 2 * time.Millisecond

// atCap reports whether t has as many requests in flight as its route allows.
func (rt *routeEntry) atCap(t *target) bool {
	return rt.maxConc > 0 && t.st.inflight.Load() >= rt.maxConc
}

// queue waits up to the route's QueueTimeout for a backend below the cap.
// It returns what acquire last said: acquired, saturated when the wait
// ended without a slot, or why the route can no longer serve.
func (e *Edge) queue(ctx context.Context, ps *proxyState, rt *routeEntry) (*routeEntry, *target, outcome) {
	if rt.queue <= 0 {
		return rt, nil, saturated
	}
	deadline := time.NewTimer(rt.queue)
	defer deadline.Stop()
	tick := time.NewTicker(queuePoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return rt, nil, saturated
		case <-deadline.C:
			return rt, nil, saturated
		case <-tick.C:
		}
		r, t, why := e.acquire(ps.host, ps.path, &ps.tried)
		if why != saturated {
			return r, t, why
		}
		rt = r
	}
}

// writeOverloaded answers a request that found no free slot.
func writeOverloaded(w http.ResponseWriter, r *http.Request, rt *routeEntry) {
	w.Header().Set("Retry-After", "1")
	writeError(w, r, http.StatusServiceUnavailable, ReasonOverloaded,
		"The service "+rt.key+" is at its limit of "+strconv.FormatInt(rt.maxConc, 10)+
			" requests in flight per instance and none freed up in time. Try again shortly.")
}
