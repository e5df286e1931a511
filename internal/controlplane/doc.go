// Package controlplane is berth's daemon: the API server, the deploy state
// machine, the reconciler that keeps instances running, the instances
// themselves (started, parked and woken from zero), and the wiring of the
// store, the engine, the edge and its subsystems: the tasks (one-off,
// release and scheduled runs, exec sessions) are the subpackage tasks'
// Runner, which the task API handlers call; the autoscaler (its decisions
// and its loop) is the subpackage autoscale's Autoscaler, which scales the
// services through the actions autoscaler.go gives it.
//
// It owns every decision about what should run and where traffic goes. It
// reaches an engine only through the pod contract (internal/runtime: it
// never imports an engine's package, and a test says so), the data plane
// only through internal/router (it never proxies a request itself), and
// the state only through internal/store (it never writes SQL).
package controlplane
