package router

import "time"

// Route says where the requests for a set of host names go: a service's
// own hosts, and what its spec says about balancing them.
type Route struct {
	// Key names the route, "app/service". It is unique: Update with a known
	// key replaces that route.
	Key string
	// Hosts are exact host names without port, e.g. "web.shop.localhost".
	// They are matched case-insensitively.
	Hosts []string
	// Claimed is when the route's owner was first deployed. The daemon
	// lets one route hold a host; should two still list one (a state kept
	// from before that rule), the earlier-claimed keeps it (zero counts as
	// latest), then the lower key.
	Claimed time.Time
	// Backends are the healthy instances of the serving revision. With none,
	// requests get 503 "no healthy instance".
	Backends []Backend
	// Timeout limits each request, from arrival to the end of the response
	// body (0 = no limit). A request that exceeds it gets 504 if no response
	// has started. A WebSocket is only limited until its 101 answer.
	Timeout time.Duration
	// Paused answers every request with 503 and a "paused" page.
	Paused bool
	// PathRoutes send requests whose path starts with a prefix (on a segment
	// boundary: "/api" matches "/api" and "/api/x", not "/apiary") to the
	// backends of another route; the longest prefix wins. The path is passed
	// on unchanged, and the target route's Paused, Backends and Timeout
	// apply.
	PathRoutes []PathRoute
	// Hold, when set, makes requests wait while Backends is empty instead of
	// answering 503, and asks for a backend (scale to zero).
	Hold *Hold
	// Load-balancer controls.
	//
	// Sticky, when not "", keeps each client on the backend that first
	// answered it, with a cookie of that name; a client whose backend left
	// moves to another one.
	Sticky string
	// SlowStart ramps a new backend's share of requests (see Backend.Since)
	// up from a tenth to a full share over this window.
	SlowStart time.Duration
	// MaxConcurrency caps each backend's requests in flight (0: no cap). A
	// request that finds every backend at the cap waits up to QueueTimeout
	// for a free slot, then gets 503 "overloaded".
	MaxConcurrency int
	QueueTimeout   time.Duration
}

// Backend is one instance that can serve a route.
type Backend struct {
	// ID is the instance ID. In-flight counts and ejection are kept per ID,
	// shared by every route that lists it.
	ID string
	// Addr is where the router sends the instance's requests,
	// "127.0.0.1:PORT" on the local machine.
	Addr string
	// Since is when the backend joined the route, for the route's
	// SlowStart; zero means it takes its full share at once.
	Since time.Time
}

// PathRoute sends a path prefix of a route's hosts to another route.
type PathRoute struct {
	Prefix string
	// Key is the target route's key. A key that is not (yet) installed
	// answers 503 "no healthy instance".
	Key string
}

// DefaultMaxHeld bounds the requests one route holds at once when its Hold
// names no Max.
const DefaultMaxHeld = 1000

// Hold makes a route that lists no backend hold its requests, instead of
// answering 503 at once, while the control plane starts one: scale to zero.
// A held request is sent on as soon as an Update lists a backend for its
// route; it is answered 503 if that takes longer than Timeout, or at once if
// Max requests are already held.
type Hold struct {
	// Wake is called by every request that starts waiting. It must not block
	// and must tolerate many calls: it only asks for an instance.
	Wake func()
	// Timeout bounds the wait (0: the request waits until its client gives
	// up). The route's own request Timeout starts once a backend is picked.
	Timeout time.Duration
	// Max bounds the requests held at once (0: DefaultMaxHeld).
	Max int
}
