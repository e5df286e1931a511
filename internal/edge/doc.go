// Package edge is berth's HTTP edge: the reverse proxy that sits in front of
// every service instance, the local implementation of the control plane's
// router contract (package router, whose value types it uses under their
// own names, contract.go). It owns
//
//   - routing: exact Host match (port stripped, lowercased), then an optional
//     longest path prefix that sends part of a site to another service;
//   - load balancing: least outstanding requests over a route's healthy
//     instances, with passive ejection of instances that refuse connections
//     and a retry on another instance for requests that never left the edge;
//   - draining: per-instance in-flight counters, so the control plane can stop
//     an instance only once it has finished its requests (WaitIdle);
//   - the edge's own answers (404 unknown host, 502, 503 paused / no healthy
//     instance, 504 timeout), each tagged with an X-Berth-Error header;
//   - single health probes of an instance (Check); the schedule and the
//     healthy/unhealthy thresholds belong to the control plane;
//   - entrypoints (entrypoint.go, origin.go): host names in front of
//     origins that move, a route key or an external URL; weighted shares
//     with sticky cookies, a tester's header and a guard that rolls a
//     failing share back by itself (split.go, guard.go); failover to a
//     secondary origin; per-path origin, timeout, body limit, header
//     add/remove; error and maintenance pages (respond.go); an optional
//     cache and compression (package cache) in front of the origins;
//   - request metrics for Prometheus (metrics.go) and a JSON access log
//     (accesslog.go), both cheap on the request path; per-instance request
//     counts and latency histograms and per-route load (stats.go), which the
//     control plane's autoscaler and status read;
//   - holding the requests of a route that has no instance (scale to zero)
//     while the control plane, told through the route's Wake, starts one
//     (hold.go);
//   - refusing, with 400 and a closed connection, requests whose framing is
//     ambiguous (Content-Length with Transfer-Encoding, duplicates,
//     obs-fold, malformed chunks) before net/http reads them, on every
//     HTTP/1.x connection net/http serves, HTTPS included (framing.go);
//   - the transport to instances and origins (upstream.go): GET, HEAD,
//     OPTIONS and TRACE without a body to plain HTTP go out on pooled
//     keep-alive connections in the request's own goroutine, everything
//     else through net/http's Transport.
//
// The routing table is replaced as a whole, copy-on-write, by Update and
// Remove; ServeHTTP reads it through an atomic pointer and never takes a lock.
//
// The package must not touch the store, the engine or the API: the control
// plane tells it which instances serve which hosts, and asks it about in-flight
// requests. It does not start, stop or health-check instances on its own.
package edge
