// Package tasks runs berth's tasks. A task is one run of a command in a
// service revision's image: `berth task run`, a named task of the spec, a
// deploy's release command or a scheduled run. They are one lifecycle told
// apart by data (a kind, the hooks that watch it), never separate code
// paths:
//
//	          create, attach, start                 exit 0
//	(request) ─────────────────────▶ running ─────────────────────▶ succeeded
//	    │                             │ │ │ │ exit ≠ 0
//	    │ cannot start                │ │ │ └───────────────────────▶ failed
//	    └────────────▶ failed         │ │ │ berth task stop, client gone
//	                                  │ │ └─────────────────────────▶ stopped
//	(schedule due while               │ │ --timeout reached
//	 the last run goes on)            │ └───────────────────────────▶ timeout
//	    └────────────▶ skipped        │ container gone
//	                                  └─────────────────────────────▶ lost
//
// Leaving running, the task's pod is removed; the exit code and the tail of
// the output stay in the store. A daemon that stops leaves running tasks
// alone: the next one re-adopts them (adopt.go), following a running pod to
// its end and recording one that ended meanwhile the same way.
//
// Read it top-down: runner.go (the Runner and what it is given), task.go
// (start, watch, finish, stop), request.go (a run request to what to run),
// release.go (a deploy's release command), schedule.go (cron schedules),
// session.go (interactive runs and exec sessions on the attach protocol),
// adopt.go (a daemon's start), query.go (what the API reads), output.go.
//
// The Runner owns the running tasks, the apps' release locks and the
// scheduler. It reaches the engine only through runtime.PodEngine and its
// optional powers, and the state only through the Store it is given; it
// knows nothing of HTTP (the API server in package controlplane answers
// requests and hands the Runner an attach connection once upgraded), of
// services' instances or of the edge.
package tasks
