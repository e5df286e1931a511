// Package docker is berth's engine for the local Docker Engine, through the
// Engine's own Go client. Engine implements the pod contract
// (runtime.PodEngine) with the optional powers the local engine has
// (suspend, deregister, attach, exec, build, ...). The containers it makes
// of a pod are its own business: beneath the contract it exports only
// what tools and tests need to look at them (List, Remove, Exec).
//
// It owns the pod's Docker shape (pod.go, read back by pod_inspect.go): the
// network holder whose namespace a pod's containers share, the depends_on
// start and stop order (pod_layout.go, pod_start.go, pod_stop.go), the
// supervision that stops a pod whose main container or essential sidecar
// died (pod_supervise.go), the network holders kept ready for tasks
// (pod_tasknet.go), freeze and thaw (freeze.go), taking a pod off its
// names on the app network (deregister.go), and reading the containers a
// berth from before pods made as pods, from their labels (pod_legacy.go),
// so an upgraded daemon re-adopts them.
//
// It owns the translation between runtime.ContainerSpec and Docker's create
// options, and the policy every berth container gets whatever the spec says:
// ports published on 127.0.0.1 only, tini as PID 1, no-new-privileges, never
// privileged, no Docker socket, restart policy "no" (berth's reconciler
// restarts), json-file logs capped at 3 x 10 MB.
//
// It must not pull images (a missing image is runtime.ErrImageNotFound),
// must not decide what to run (the control plane does; stopping a pod whose
// essential container died is the contract's, not a decision), and keeps
// no state the control plane relies on: everything it knows is read back
// from the engine, so a restarted daemon re-adopts pods by their labels.
// What it holds in memory only saves time (the network holders kept ready
// for tasks, which a later daemon takes back) or keeps its own calls apart
// (the pods a call is working on, which the supervisor leaves alone).
//
// It works with Docker Engine 20.10 (API 1.41) and later; the API version is
// negotiated, BuildKit is never requested.
package docker
