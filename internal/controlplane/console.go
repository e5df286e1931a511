package controlplane

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/console"
)

// startConsole serves the web console (internal/console) on its own
// listener, never the edge's. It reaches the daemon only through the API's
// handlers, in-process: what a browser may do is what the CLI may. Its
// requests live under ctx, so the live feeds end when the daemon stops.
func (d *Daemon) startConsole(ctx context.Context, ln net.Listener, errc chan<- error) *http.Server {
	d.console = console.New(console.Config{
		API:    d.routes(),
		Addr:   ln.Addr().String(),
		Logger: d.log.With("component", "console"),
	})
	if ap, err := netip.ParseAddrPort(ln.Addr().String()); err == nil && !ap.Addr().IsLoopback() {
		d.log.Warn("the console serves plain HTTP on a non-loopback address; prefer --ui 127.0.0.1:PORT and an SSH tunnel", "ui", ln.Addr().String())
	}
	srv := &http.Server{
		Handler:           containHandler(d.log, d.console.Handler()),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() { errc <- serveIgnoringClosed(srv.Serve(ln)) }()
	return srv
}

// handleSignIn answers `berth ui`: a one-time URL that signs a browser in
// to the console. It is authorized as every API call is (the socket's
// owner, or the TCP API's token).
func (d *Daemon) handleSignIn(w http.ResponseWriter, r *http.Request) {
	if d.console == nil {
		writeError(w, http.StatusConflict, api.Error{Code: "console_off", Message: "the console is off: start berth server with --ui ADDR (or BERTH_UI; default 127.0.0.1:8081)"})
		return
	}
	writeJSON(w, http.StatusOK, d.console.SignIn())
}
