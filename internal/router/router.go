package router

import (
	"context"
	"errors"
	"net/url"
	"time"
)

// Router is what the control plane needs from a data plane: a routing table
// it replaces route by route, entrypoints, draining and load. Every method
// is safe for concurrent use; changes take effect for new requests at once,
// and requests in flight finish where they were sent.
type Router interface {
	RouteTable
	EntrypointTable
	Drainer
	LoadReader
}

// RouteTable holds a service's routes: which backends serve which hosts.
type RouteTable interface {
	// Update installs r, replacing the route with the same Key. A backend
	// r lists that the router had taken out of rotation (it refused
	// connections) is admitted again.
	Update(r Route)
	// Remove deletes the route with the given key; its hosts are served no
	// more (unless an entrypoint claims them).
	Remove(key string)
	// Routes returns the installed routes, sorted by key.
	Routes() []Route
}

// EntrypointTable holds entrypoints: stable host names in front of origins
// that move.
type EntrypointTable interface {
	// SetEntrypoint installs ep, replacing the entrypoint of the same
	// name. It returns an error wrapping ErrInvalidEntrypoint when ep
	// cannot be installed as it is.
	SetEntrypoint(ep Entrypoint) error
	// RemoveEntrypoint deletes the entrypoint; its hosts are served as if
	// it never existed.
	RemoveEntrypoint(name string)
	// Entrypoints returns the installed entrypoints, sorted by name.
	Entrypoints() []Entrypoint
}

// Drainer waits for backends to finish their requests.
type Drainer interface {
	// WaitIdle blocks until none of the backends has a request in flight,
	// or ctx ends, when it returns the context's cause. Called after the
	// Update or Remove that stopped routing to them: once it returns nil,
	// no request will reach them (unless a later Update lists them again),
	// so their instances can be stopped.
	WaitIdle(ctx context.Context, backendIDs []string) error
}

// LoadReader reports demand: per route for the autoscaler, per backend for
// request rates and latencies.
type LoadReader interface {
	// Load returns the demand on the route with the given key at this
	// instant (zero for a route that is not installed).
	Load(key string) RouteLoad
	// Stats returns a backend's cumulative counters, and false if the
	// router does not know the backend (never listed, or forgotten since).
	Stats(backendID string) (BackendStats, bool)
}

// OriginProber is the optional power to check that an external origin
// answers before traffic is switched to it.
type OriginProber interface {
	// ProbeOrigin sends one request to u and returns an error wrapping
	// ErrOriginUnreachable when no answer comes within timeout.
	ProbeOrigin(ctx context.Context, u *url.URL, timeout time.Duration) error
}

// Errors of the contract.
var (
	ErrInvalidEntrypoint = errors.New("invalid entrypoint")
	ErrOriginUnreachable = errors.New("origin unreachable")
)
