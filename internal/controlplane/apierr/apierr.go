// Package apierr holds the kinds of failure the control plane's API tells
// apart by code ("invalid", "not_found", ...), so that every subsystem of
// the control plane (the tasks, the API server) returns the same error
// values and the API server maps them with errors.Is. It holds values and
// messages only: no subsystem's logic.
package apierr

import (
	"errors"
	"fmt"
	"strings"
)

// The kinds of failure, for errors.Is and API codes.
var (
	ErrBusy       = errors.New("operation in progress")
	ErrInvalid    = errors.New("invalid request")
	ErrNotFound   = errors.New("not found")
	ErrNoRevision = errors.New("no revision to use")
)

// refusal is bad input whose message stands alone as the CLI's one-line
// reason (a spec's "FILE:LINE: FIELD: what is wrong", "web is paused: ..."),
// without ErrInvalid's words in front; it is ErrInvalid for errors.Is and
// the API's code.
type refusal struct{ err error }

func (e refusal) Error() string   { return e.err.Error() }
func (e refusal) Unwrap() []error { return []error{ErrInvalid, e.err} }

// Refuse makes err a refusal: ErrInvalid for errors.Is, with err's message
// alone.
func Refuse(err error) error { return refusal{err} }

// MissingSecrets says which secrets of service are listed but never set,
// and how to set them.
func MissingSecrets(service string, missing []string) string {
	what := "secret " + missing[0] + " is"
	if len(missing) > 1 {
		what = "secrets " + strings.Join(missing, ", ") + " are"
	}
	set := make([]string, len(missing))
	for i, k := range missing {
		set[i] = k + "=..."
	}
	return fmt.Sprintf("%s listed but never set: run `berth secret set %s %s` first", what, service, strings.Join(set, " "))
}
