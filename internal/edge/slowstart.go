package edge

import (
	"math/rand/v2"
	"time"
)

// Slow start (Route.SlowStart), as ALB and Envoy do it: a backend that
// joined a route less than SlowStart ago is in rotation only for a share of
// the picks that grows linearly from minSlowStartShare to all of them over
// the window. When it is passed over, the least loaded of the others is
// taken; when there is no other, it is taken anyway.

// minSlowStartShare is the share of picks a backend gets as it joins.
const minSlowStartShare = 0.1

// slowStartSince converts when a backend joined into a clock reading, or 0
// when it is outside the window (or the route has none).
func slowStartSince(since time.Time, window time.Duration) int64 {
	if window <= 0 || since.IsZero() {
		return 0
	}
	age := time.Since(since)
	if age >= window {
		return 0
	}
	if c := clock() - int64(age); c > 0 {
		return c
	}
	return 1
}

// warming reports whether t, in its slow start, sits this pick out. It reads
// the clock into *now if that was not done yet.
func (rt *routeEntry) warming(t *target, now *int64) bool {
	if rt.slowStart <= 0 {
		return false
	}
	if *now == 0 {
		*now = clock()
	}
	share := float64(*now-t.since) / float64(rt.slowStart)
	if share >= 1 {
		return false
	}
	return rand.Float64() >= max(share, minSlowStartShare)
}
