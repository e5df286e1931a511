// Package controlplane is berth's daemon: the API server, the deploy state
// machine, the reconciler that keeps instances running, the autoscaler that
// sizes services with scale: and wakes them from zero, and the wiring of the
// store, the engine, the edge and its subsystems: the tasks (one-off,
// release and scheduled runs, exec sessions) are the subpackage tasks'
// Runner, which the task API handlers call.
//
// It owns every decision about what should run and where traffic goes. It
// must not talk to the Docker Engine except through runtime.Engine, must not
// proxy requests itself (that is the edge's job), and must not write SQL
// (that is the store's).
package controlplane
