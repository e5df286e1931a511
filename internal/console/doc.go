// Package console is berth's web console: pages that show the apps,
// services, revisions, instances, traffic graphs, logs, events, tasks and
// entrypoints of a daemon, live, and steer them (rollback, pause, resume,
// scale, edge switch, task stop), served by berth server on its own
// address (--ui), never on the edge's.
//
// It owns the console's sign-in (a one-time URL that `berth ui` asks the
// daemon for, a session cookie, a CSRF token), its static assets (plain
// HTML, CSS and JavaScript embedded in the binary, no build step) and the
// live feed (server-sent events). Everything it shows or does goes through
// the daemon's own HTTP API, served in-process under /api/: the console
// decides nothing about apps itself and can do nothing the CLI cannot.
//
// It must not touch the store, the engine, the edge or the control plane's
// parts: it knows the daemon only as an http.Handler (Config.API).
package console
