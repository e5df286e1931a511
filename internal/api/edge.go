package api

import "time"

// Edge endpoints (entrypoints are named globally, not per app):
//
//	GET  /v1/edge                                  -> []Entrypoint
//	GET  /v1/edge/{name}                           -> Entrypoint
//	POST /v1/edge/{name}/switch       SwitchRequest -> Entrypoint
//	POST /v1/edge/{name}/shift         ShiftRequest -> Entrypoint
//	POST /v1/edge/{name}/maintenance MaintenanceRequest -> Entrypoint
//	POST /v1/edge/{name}/invalidate InvalidateRequest -> InvalidateResult
//	GET  /metrics                                  -> Prometheus text format

// Entrypoint is an edge entrypoint: its hosts, where its traffic goes now,
// and its settings.
type Entrypoint struct {
	Name  string   `json:"name"`
	App   string   `json:"app"`
	Hosts []string `json:"hosts"`
	URLs  []string `json:"urls,omitempty"`
	// Origin receives all traffic the shares leave: a service ("web",
	// "app/web") or a URL.
	Origin string `json:"origin"`
	// SpecOrigin is the origin berth.yaml names; Origin differs after a
	// `berth edge switch`, until the spec's origin changes.
	SpecOrigin string  `json:"spec_origin"`
	Shares     []Share `json:"shares,omitempty"`
	// Sticky is "cookie" or "none".
	Sticky string `json:"sticky,omitempty"`
	// Header is the request header testers set to an origin to reach it.
	Header      string           `json:"header,omitempty"`
	Guard       *Guard           `json:"guard,omitempty"`
	Failover    *Failover        `json:"failover,omitempty"`
	Maintenance bool             `json:"maintenance"`
	Cache       *EntrypointCache `json:"cache,omitempty"`
	Routes      []EdgeRoute      `json:"routes,omitempty"`
	// Rollback is the last automatic rollback of a shift by its guard.
	Rollback  *GuardRollback `json:"rollback,omitempty"`
	UpdatedAt time.Time      `json:"updated_at"`
}

// Share is a weighted share of an entrypoint's traffic.
type Share struct {
	Origin  string  `json:"origin"`
	Percent float64 `json:"percent"`
}

// Guard is the automatic rollback of a shift: when the shared origins'
// error rate passes ErrorRate (a percentage) over Window.
type Guard struct {
	ErrorRate float64 `json:"error_rate"`
	Window    string  `json:"window"`
}

// Failover is the origin an entrypoint falls back to, and the statuses that
// send idempotent requests there (connection failures always do).
type Failover struct {
	Origin string `json:"origin"`
	On     []int  `json:"on"`
}

// EntrypointCache is an entrypoint's cache: its settings and counters.
type EntrypointCache struct {
	DefaultTTL string `json:"default_ttl"`
	Hits       int64  `json:"hits"`
	Misses     int64  `json:"misses"`
	Objects    int64  `json:"objects"`
	Bytes      int64  `json:"bytes"`
}

// EdgeRoute is a path prefix of an entrypoint with its own origin or
// controls.
type EdgeRoute struct {
	Path    string `json:"path"`
	Origin  string `json:"origin,omitempty"`
	Timeout string `json:"timeout,omitempty"`
	MaxBody int64  `json:"max_body,omitempty"`
}

// GuardRollback records a guard rolling a shift back.
type GuardRollback struct {
	Time   time.Time `json:"time"`
	Reason string    `json:"reason"`
}

// SwitchRequest moves all of an entrypoint's traffic to Origin. An external
// origin that does not answer is refused unless Force.
type SwitchRequest struct {
	Origin string `json:"origin"`
	Force  bool   `json:"force,omitempty"`
}

// ShiftRequest sends shares of an entrypoint's traffic to other origins;
// the active origin keeps the rest. It replaces the previous shift.
type ShiftRequest struct {
	// Shares maps an origin to its percentage (0-100; 0 keeps the origin
	// reachable by Header only).
	Shares map[string]float64 `json:"shares"`
	// Sticky is "cookie" (each client stays on the origin it got first) or
	// "none" (the default).
	Sticky string `json:"sticky,omitempty"`
	// Header names a request header whose value picks an origin.
	Header string `json:"header,omitempty"`
	// GuardErrorRate is the error percentage that rolls the shift back
	// (default 1); GuardWindow the span it is measured over (default 30s).
	GuardErrorRate *float64 `json:"guard_error_rate,omitempty"`
	GuardWindow    string   `json:"guard_window,omitempty"`
	// NoGuard turns the automatic rollback off.
	NoGuard bool `json:"no_guard,omitempty"`
	// Force skips the reachability check of the origins.
	Force bool `json:"force,omitempty"`
}

// MaintenanceRequest turns an entrypoint's maintenance page on or off.
type MaintenanceRequest struct {
	On bool `json:"on"`
}

// InvalidateRequest drops cached responses whose path matches Pattern: an
// exact path, or a prefix ending in "*".
type InvalidateRequest struct {
	Pattern string `json:"pattern"`
}

// InvalidateResult says how many cached responses were dropped.
type InvalidateResult struct {
	Removed int `json:"removed"`
}
