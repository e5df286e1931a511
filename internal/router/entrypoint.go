package router

import (
	"net/http"
	"net/url"
	"time"
)

// Entrypoint is a stable set of host names in front of origins that can
// move: a berth service (a route key) or an external URL. The control plane
// installs it with SetEntrypoint.
type Entrypoint struct {
	// Name identifies the entrypoint, e.g. "www".
	Name string
	// Label names the entrypoint in metrics and the access log; "" means
	// Name.
	Label string
	// Hosts are exact host names without port. An entrypoint's host wins
	// over a route that lists the same host.
	Hosts []string
	// Origin receives every request the shares leave.
	Origin Origin
	// Shares send a weighted share of the requests to other origins.
	Shares []Share
	// ShiftID names the current shift: a GuardTrip reports it, and a new ID
	// arms a new guard.
	ShiftID string
	// Sticky keeps each client on the origin it was first sent to, with a
	// cookie named "berth_" + Name.
	Sticky bool
	// Header names a request header a tester sets to an origin's Name to
	// reach that origin, whatever the shares say.
	Header string
	// Guard rolls the shares back when their origins fail.
	Guard Guard
	// Failover is where requests go when the chosen origin fails.
	Failover *Failover
	// Maintenance answers every request 503 with the maintenance page (the
	// 503 error page when there is one).
	Maintenance bool
	// RedirectHTTPS answers plain HTTP requests with a 308 to HTTPS (only
	// when the router has an HTTPS port).
	RedirectHTTPS bool
	// HSTS, when positive, sets Strict-Transport-Security on HTTPS answers.
	HSTS time.Duration
	// Controls apply to every path that no route overrides.
	Controls Controls
	// Routes send path prefixes to other origins, or with other controls.
	Routes []EntrypointRoute
	// ErrorPages replace the body of answers with these statuses, whether
	// the origin or the router wrote them. The pages are served as HTML.
	ErrorPages map[int][]byte
	// Cache, when set, caches the entrypoint's responses (shared by all its
	// routes and origins).
	Cache Cache
	// Compress encodes compressible responses (brotli, gzip) by
	// Accept-Encoding.
	Compress bool
	// Splits, a route key, makes the shares apply also to requests other
	// entrypoints send to that route: a canary of a service splits the
	// traffic of its own hosts and of every entrypoint in front of it. Its
	// Origin must be that route.
	Splits string
}

// Cache is a response cache the control plane made for an entrypoint: the
// local edge puts its Handler in front of the entrypoint's origins. (An AWS
// router has CloudFront cache behaviours instead, configured from the same
// spec; it ignores the handler.)
type Cache interface {
	Handler(next http.Handler) http.Handler
}

// Origin is where an entrypoint sends requests: a route ("app/service") or
// an external URL.
type Origin struct {
	// Name is how users call the origin ("web", "shop/web",
	// "https://xyz.awsapprunner.com"); a tester's header names it so.
	Name string
	// Route is the key of a service's route. The path is passed on as is.
	Route string
	// URL is an external origin. Its host replaces the Host header (and is
	// the TLS server name); a path in it prefixes the request path.
	URL *url.URL
}

// Share sends Weight basis points (see PercentToWeight) of an entrypoint's
// requests to Origin.
type Share struct {
	Origin Origin
	Weight int
}

// AllTraffic is the weight of all requests: weights are in basis points, so
// percentages such as 0.5% or 12.25% are exact.
const AllTraffic = 10000

// PercentToWeight converts a percentage (0-100) to basis points.
func PercentToWeight(p float64) int { return int(p*100 + 0.5) }

// Failover names a secondary origin. A request that never reached the
// chosen origin (no connection, no healthy instance) goes to it whatever its
// method; one that did is sent again only when idempotent, on a connection
// failure or one of Codes.
type Failover struct {
	Origin Origin
	Codes  []int
}

// Controls are per-route limits and response changes.
type Controls struct {
	// Timeout bounds a request from arrival to the end of its response;
	// 504 when no answer came in time. Zero: no limit.
	Timeout time.Duration
	// MaxBody is the largest request body accepted (413 above); zero: no
	// limit.
	MaxBody int64
	// AddHeaders are set on every response (replacing the origin's).
	AddHeaders map[string]string
	// RemoveHeaders are deleted from every response.
	RemoveHeaders []string
}

// EntrypointRoute is a path prefix of an entrypoint with its own origin or
// controls. Zero Timeout and MaxBody inherit the entrypoint's; headers add
// to the entrypoint's.
type EntrypointRoute struct {
	Prefix string
	// Origin, when set, receives the prefix's requests instead of the
	// entrypoint's shares.
	Origin   *Origin
	Controls Controls
}

// Guard configures the automatic rollback of a shift or canary: when the
// origins its shares send traffic to fail too often, the router sends
// everything back to the entrypoint's Origin by itself and reports a
// GuardTrip.
type Guard struct {
	// ErrorRate is the fraction of failed requests (0.01 = 1%) above which
	// the shift is rolled back. A request fails when its origin answers
	// 5xx or cannot be reached or does not answer in time.
	ErrorRate float64
	// Window is how far back requests count. Zero means DefaultGuardWindow.
	Window time.Duration
	// Off disables the guard.
	Off bool
}

// Guard defaults, as the README's edge section states them (`berth edge
// shift`: rolled back above 1% errors over 30s).
const (
	DefaultGuardErrorRate = 0.01
	DefaultGuardWindow    = 30 * time.Second
)

// GuardTrip tells the control plane that a guard rolled a shift back.
type GuardTrip struct {
	// Entrypoint is the entrypoint whose shift was rolled back, or "" for
	// a canary.
	Entrypoint string
	// Route is the route key ("app/service") whose canary was rolled back,
	// or "" for an entrypoint.
	Route string
	// ID is the ShiftID of the entrypoint, or the canary's Name: the
	// control plane ignores a trip of a shift it has already replaced.
	ID string
	// Origins are the guarded origins (or the canary's name).
	Origins []string
	// Errors and Requests are what the window held when the guard tripped.
	Errors, Requests int64
	Window           time.Duration
	Threshold        float64
}
