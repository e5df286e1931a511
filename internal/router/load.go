package router

import "time"

// RouteLoad is a route's demand at one instant.
type RouteLoad struct {
	// InFlight is the requests being served by the route's backends.
	InFlight int
	// Held is the requests waiting for the route's first backend (see Hold).
	Held int
	// Backends is how many backends the route lists.
	Backends int
}

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

// BackendStats are a backend's cumulative counters since the router started
// counting it (when a route first listed it). They restart from zero if the
// router forgot the backend in between (it was unlisted and idle); readers
// that compute rates treat a decrease as such a reset.
type BackendStats struct {
	// Requests is how many requests the backend answered (any status).
	Requests uint64
	// Latency is their summed duration, arrival at the router to the end
	// of the response.
	Latency time.Duration
	// Buckets counts requests by latency: Buckets[i] holds those at most
	// LatencyBuckets[i] (and above the previous bound); the last one the rest.
	Buckets [NumLatencyBuckets]uint64
}
