// Package edge is berth's HTTP edge: the reverse proxy that sits in front of
// every service instance. It is the local implementation of the control
// plane's router contract (package router), whose value types it uses under
// their own names.
//
// Read it in this order:
//
//   - the contract (contract.go): routes, entrypoints, drain and load, as
//     package router declares them;
//   - the routing table (edge.go, lookup.go, serves.go): Update, Remove and
//     SetEntrypoint replace it as a whole, copy-on-write; requests read it
//     through an atomic pointer and never take a lock. Exact Host match
//     (port stripped, lowercased), then an optional longest path prefix
//     that sends part of a site to another service;
//   - the balancer (balancer.go, sticky.go, slowstart.go, limit.go,
//     hold.go): least outstanding requests over a route's healthy
//     instances, passive ejection of instances that refuse connections,
//     sticky cookies, slow start, a concurrency cap with a queue, and
//     holding the requests of a route with no instance (scale to zero)
//     while the control plane, told through the route's Wake, starts one;
//     per-instance in-flight counters for draining (WaitIdle) and request
//     counts and latency histograms for load (stats.go);
//   - the ways a request is proxied: the HTTP/1.1 fast path, over plain
//     HTTP and TLS (fast.go routes it, and answers an entrypoint's cache
//     hits from memory on it; package h1 parses, proxies and hands over,
//     behind framing checks that refuse ambiguous framing before net/http
//     reads a request), HTTP/2 on the edge's own server (package h2,
//     which serves the edge as an http.Handler), with a direct path for
//     GET and HEAD on a service's host (direct.go), and net/http with
//     httputil.ReverseProxy (proxy.go), with a retry on another instance
//     for requests that never left the edge; all share one transport
//     (h1.Transport) and behave the same;
//   - entrypoints (entrypoint.go, origin.go, split.go, guard.go,
//     respond.go): host names in front of origins that move, a route key
//     or an external URL; weighted shares with sticky cookies, a tester's
//     header and a guard that rolls a failing share back by itself;
//     failover to a secondary origin; per-path origin, timeout, body limit,
//     header add/remove; error and maintenance pages;
//   - the edge's own answers (errors.go): 404 unknown host, 502, 503
//     paused / no healthy instance, 504 timeout, each tagged with an
//     X-Berth-Error header;
//   - what it reports (metrics.go, accesslog.go): request metrics for
//     Prometheus and a JSON access log, both cheap on the request path;
//   - single health probes of an instance (health_check.go, Check); the
//     schedule and the healthy/unhealthy thresholds belong to the control
//     plane;
//   - the cache and compression in front of an entrypoint's origins
//     (package cache).
//
// The package must not touch the store, the engine or the API: the control
// plane tells it which instances serve which hosts, and asks it about in-flight
// requests. It does not start, stop or health-check instances on its own.
package edge
