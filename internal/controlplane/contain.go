package controlplane

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/contain"
)

// Panic containment (internal/controlplane/contain says why). Each
// goroutine of the control plane defers a contain (the daemon's, the
// fleet's, the rollout's); the long-lived loops are restarted by d.keep;
// API handlers answer 500. (The edge's fast path contains its own, per
// connection; net/http does for the rest.)

// contain, deferred, recovers a panic of the goroutine it is deferred in
// and logs it with its stack; what and args say which work it cut short.
// It must be deferred directly (defer d.contain(...)) for recover to see
// the panic.
func (d *Daemon) contain(what string, args ...any) {
	if v := recover(); v != nil {
		logPanic(d.log, v, what, args...)
	}
}

func logPanic(log *slog.Logger, v any, what string, args ...any) {
	contain.Log(log, v, what, args...)
}

// keepRestartDelay is the pause before a loop that panicked runs again, so
// a panic on every pass does not spin.
const keepRestartDelay = time.Second

// keep runs loop until ctx ends, running it again (after a short pause)
// when it panics.
func (d *Daemon) keep(ctx context.Context, what string, loop func(context.Context)) {
	for {
		if !d.runContained(what, func() { loop(ctx) }) {
			return // returned: ctx ended
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(keepRestartDelay):
			d.log.Warn("restarting after a panic", "loop", what)
		}
	}
}

// runContained runs fn and reports whether it panicked.
func (d *Daemon) runContained(what string, fn func()) (panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			panicked = true
			logPanic(d.log, v, what)
		}
	}()
	fn()
	return false
}

// containHandler answers 500 for a handler that panics, logging the panic
// with its stack, instead of net/http's dropped connection with no answer.
// http.ErrAbortHandler, a handler's deliberate way to abort, passes on.
func containHandler(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tw := &trackedWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			logPanic(log, v, "api", "method", r.Method, "path", r.URL.Path)
			if !tw.wrote {
				writeError(w, http.StatusInternalServerError, api.Error{Message: "internal error in berth server (logged with its stack); the daemon serves on", Code: "internal"})
			}
		}()
		next.ServeHTTP(tw, r)
	})
}

// trackedWriter notes whether the answer has begun. Unwrap keeps
// http.ResponseController (flushes, hijacks) working through it.
type trackedWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *trackedWriter) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackedWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *trackedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ErrInternal is a bug of berth's, contained: the operation it hit failed,
// the daemon serves on.
var ErrInternal = contain.ErrInternal

// containErr, deferred directly, turns a panic into *errp after logging it,
// so the operation fails instead of seeming to succeed.
func (d *Daemon) containErr(errp *error, what string, args ...any) {
	if v := recover(); v != nil {
		*errp = contain.Error(d.log, v, what, args...)
	}
}

// containEdge logs a panic of the edge's net/http handlers with its stack
// at error level (net/http's own recovery logs at the edge's debug level),
// then aborts that one connection as net/http does: the answer may be
// half-written. The fast path contains its own (edge.Server).
func containEdge(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v != http.ErrAbortHandler {
					logPanic(log, v, "edge", "host", r.Host, "path", r.URL.Path)
				}
				panic(http.ErrAbortHandler)
			}
		}()
		next.ServeHTTP(w, r)
	})
}
