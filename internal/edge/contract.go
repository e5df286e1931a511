package edge

import "github.com/berth-dev/berth/internal/router"

// The edge is the local router: it meets the control plane's contract
// (package router), whose value types it uses under their own names.
var (
	_ router.Router       = (*Edge)(nil)
	_ router.OriginProber = (*Edge)(nil)
)

// The contract's value types, as the edge's API has always named them.
type (
	Route           = router.Route
	Backend         = router.Backend
	PathRoute       = router.PathRoute
	Hold            = router.Hold
	RouteLoad       = router.RouteLoad
	BackendStats    = router.BackendStats
	Entrypoint      = router.Entrypoint
	Origin          = router.Origin
	Share           = router.Share
	Failover        = router.Failover
	Controls        = router.Controls
	EntrypointRoute = router.EntrypointRoute
	Guard           = router.Guard
	GuardTrip       = router.GuardTrip
)

// The contract's constants and errors, under the edge's names.
const (
	DefaultMaxHeld        = router.DefaultMaxHeld
	DefaultGuardErrorRate = router.DefaultGuardErrorRate
	DefaultGuardWindow    = router.DefaultGuardWindow
	NumLatencyBuckets     = router.NumLatencyBuckets
)

var (
	// LatencyBuckets are router.LatencyBuckets.
	LatencyBuckets = router.LatencyBuckets

	ErrInvalidEntrypoint = router.ErrInvalidEntrypoint
	ErrOriginUnreachable = router.ErrOriginUnreachable
)

// PercentToWeight converts a percentage (0-100) to basis points.
func PercentToWeight(p float64) int { return router.PercentToWeight(p) }
