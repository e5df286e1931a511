package controlplane

import (
	"errors"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/apierr"
	"github.com/berth-dev/berth/internal/controlplane/fleet"
	"github.com/berth-dev/berth/internal/controlplane/tasks"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/store"
)

// Errors of the control plane, for errors.Is and API codes: those of
// every subsystem (internal/controlplane/apierr).
var (
	ErrBusy       = apierr.ErrBusy
	ErrInvalid    = apierr.ErrInvalid
	ErrNotFound   = apierr.ErrNotFound
	ErrNoRevision = apierr.ErrNoRevision
)

// errorCode maps an error to the API's stable code.
func errorCode(err error) string {
	switch {
	case errors.Is(err, ErrBusy):
		return "deploy_in_progress"
	case errors.Is(err, ErrNotFound), errors.Is(err, store.ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrInvalid):
		return "invalid"
	case errors.Is(err, ErrNoRevision):
		return "no_revision"
	case errors.Is(err, runtime.ErrImageNotFound):
		return "image_not_found"
	case errors.Is(err, runtime.ErrPlatform):
		return "platform"
	case errors.Is(err, fleet.ErrUnhealthy):
		return "unhealthy"
	case errors.Is(err, tasks.ErrReleaseFailed):
		return "release_failed"
	case errors.Is(err, tasks.ErrNotStarted):
		return "task_not_started"
	}
	return "error"
}

// oneLine keeps an error message to one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// failure is the result of an operation that failed with err.
func failure(err error, lastLogs []string) api.Message {
	return api.Message{Kind: api.KindResult, Time: time.Now(), Error: err.Error(), Code: errorCode(err), LastLogs: lastLogs}
}
