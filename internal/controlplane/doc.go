// Package controlplane is berth's daemon: the API server and the wiring of
// the control plane's parts, each a package of its own:
//
//   - rollout (internal/controlplane/rollout): the life of a revision, or
//     what happens when you deploy: admission, build, release, the switch,
//     canaries, rollback, pause, resume, scale and destroy;
//   - fleet (internal/controlplane/fleet): the services' live state and
//     their instances: started, health-checked, drained, parked and woken,
//     kept at their count by the reconciler, adopted at start;
//   - tasks (internal/controlplane/tasks): one-off, release and scheduled
//     runs, and exec sessions;
//   - traffic (internal/controlplane/traffic): the edge's entrypoints,
//     shifts, guards, and the apps' internal load balancers;
//   - autoscale (internal/controlplane/autoscale): the autoscaler's
//     decisions and its loop, acting through the fleet;
//   - apierr and contain: the API's errors, and panic containment.
//
// This package keeps Run (the daemon's start and stop: state, listeners,
// certificates, the edge), the API's handlers and streams, status, logs,
// exec, the metrics and the per-revision request rates. A newcomer reads
// a deploy from handlers.go (handleDeploy) into rollout's deploy.go.
//
// The control plane owns every decision about what should run and where
// traffic goes. It reaches an engine only through the pod contract
// (internal/runtime: no package of it imports an engine's package, and a
// test says so), the data plane only through internal/router (it never
// proxies a request itself), and the state only through internal/store
// (it never writes SQL).
package controlplane
