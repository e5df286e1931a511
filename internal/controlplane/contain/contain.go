// Package contain is the control plane's panic containment, shared by its
// packages. The edge serves from the daemon's process, so a bug in the
// control plane (an API handler, the reconciler, the autoscaler, a deploy)
// must cost the one operation it hit, never the process and the requests
// in flight through the edge. Each goroutine of the control plane defers a
// recover that hands the panic to Log (or, for an operation that returns
// an error, to Error); each panic is logged with its stack.
//
// It owns only the logging and the error; recover itself must be called
// by the deferred function of each package (Go's rule), which then calls
// these.
package contain

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
)

// ErrInternal is a bug of berth's, contained: the operation it hit failed,
// the daemon serves on.
var ErrInternal = errors.New("internal error in berth server")

// Log logs a recovered panic v with its stack; what and args say which
// work it cut short.
func Log(log *slog.Logger, v any, what string, args ...any) {
	args = append([]any{"in", what, "panic", v}, args...)
	args = append(args, "stack", string(debug.Stack()))
	log.Error("control plane panicked; contained, serving on", args...)
}

// Error logs a recovered panic v as Log does and returns it as an
// ErrInternal, so the operation fails instead of seeming to succeed.
func Error(log *slog.Logger, v any, what string, args ...any) error {
	Log(log, v, what, args...)
	return fmt.Errorf("%w: %s panicked: %v (its stack is in the daemon's log)", ErrInternal, what, v)
}
