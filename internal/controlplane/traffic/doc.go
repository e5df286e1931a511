// Package traffic is where berth's requests go, as the control plane
// decides it: the entrypoints and each app's internal load balancer.
//
// The entrypoints (entrypoints.go) are the edge's stable host names
// in front of switchable origins (the `edge:` section of docs/spec.md). An
// app's spec declares them; `berth edge` changes where their traffic goes.
// Both halves are stored (store entrypoints: config and state), so a switch
// or a shift survives a daemon restart, and both are installed in the
// router as one router.Entrypoint.
//
//	deploy (spec) ──▶ Plan, Apply ──▶ config ─┐
//	                                          ├──▶ router.SetEntrypoint
//	berth edge switch|shift|maintenance ──▶ state ─┘
//	guard trip (router) ──▶ GuardTrip ──▶ state (shift cleared, rollback recorded)
//
// Read it top-down in entrypoints.go: the Entrypoints and what they are
// given (Config), loading and installing (with each entrypoint's cache),
// a deploy's Plan and Apply, the verbs of `berth edge` (Switch, Shift,
// Maintenance, Invalidate), the guard's rollback and the API's views.
//
// The Entrypoints reach the data plane only through router.Router and the
// state only through the Store they are given; they know nothing of HTTP
// (the API server in package controlplane answers /v1/edge and calls
// them), of services' instances (an origin naming a service is checked with
// the ServiceSpec lookup and the router's routes) or of certificates
// (RefreshHosts). Which app may claim which host is the daemon's
// (package controlplane, hosts.go): services and entrypoints share hosts.
//
// The internal load balancers (internal.go) serve http://SERVICE.APP.internal
// to an app's own containers on its network's gateway, through the edge,
// as ECS Service Connect does. An engine that cannot tell a network's
// gateway (runtime.InternalGateway) has none.
package traffic
