// Package autoscale is berth's autoscaler. It keeps the in-flight requests
// per instance of every service with `scale:` near its `concurrency`, as
// Knative's KPA does:
//
//	every Tick:  c = requests in flight at the edge + requests held for a wake
//	             stable = average of c over StableWindow (60s)
//	             panic  = average of c over PanicWindow  (6s)
//
//	                      panic/target >= 2 × ready instances
//	          ┌────────┐ ─────────────────────────────────────▶ ┌──────────┐
//	          │ stable │                                        │ panicking│ desired = max(ceil(panic/target), desired)
//	          └────────┘ ◀───────────────────────────────────── └──────────┘ never scales down
//	desired = ceil(stable/target)   no panic for StableWindow
//
// then desired is clamped to [min, max]; it goes down only once the
// autoscaler has watched for a whole StableWindow, only as low as the
// highest stable count of the last PanicWindow (no flapping on a boundary),
// and to zero (min 0) only when no request arrived for a whole
// StableWindow. Instances join the edge only when healthy, leave it before
// they drain, and are parked for a fast start. Every change is an
// "autoscale" event with its numbers.
//
// Scale to zero. A service with `scale: {min: 0}` that saw no request for
// the stable window has no running instance. Its instances are parked,
// kept for a fast start:
//
//	           scale in                 ColdAfter (15m)
//	healthy ──(drain)──▶ frozen ──────────────────────▶ stopped
//	   ▲                   │ thaw: milliseconds            │ start: a container start
//	   └───────────────────┴───────────────────────────────┘
//	              a request arrives (the edge holds it and calls wake)
//
// Frozen is the engine's suspend power (runtime.Suspender; Docker's pause:
// no CPU, memory kept). An engine without it stops at once. While the
// service has no instance the edge holds its requests (bounded queue,
// bounded wait: the deploy timeout) and wakes the service, which starts
// one.
//
// A tick has three steps, decisions apart from effects:
//
//	observe (Service.Observe: the service's counts and spec; its load
//	         through the router contract, router.LoadReader, only)
//	  ──▶ scaler.decide (scaler.go: pure, the rules above, table-tested)
//	  ──▶ apply (Service.Record for status and metrics, then Service.Scale:
//	             start instances, or drain and park them)
//
// Read it top-down: autoscaler.go (the Autoscaler, what it is given, its
// loop), scaler.go (the decisions), tuning.go (the windows).
//
// The Autoscaler owns only its scalers (each service's windows). The
// services, their instances, parking and waking belong to the control
// plane, which hands each service in as a Service: what the autoscaler
// reads of it and the actions it asks of it.
package autoscale
