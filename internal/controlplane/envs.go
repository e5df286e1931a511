package controlplane

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/rollout"
	"github.com/berth-dev/berth/internal/spec"
)

// Environments reaches the environments of an app's berth.yaml that are
// not this daemon's engine (engine: aws), for the console's environment
// picker: /v1/apps/{app}/envs/{env}/.... The control plane knows them only
// by this contract, so it imports no cloud SDK; berth server gives it the
// AWS implementation (internal/aws/awsdaemon).
type Environments interface {
	// Open connects to environment env of sp, the app's deployed spec.
	Open(ctx context.Context, sp *spec.Spec, env string) (Environment, error)
}

// Environment is one app in one remote environment: the verbs the console
// shows and steers. Errors wrap apierr's kinds (ErrInvalid, ErrNotFound,
// ErrBusy) when they are one, and say in one line what to do.
type Environment interface {
	Status(ctx context.Context) (api.Status, error)
	Revisions(ctx context.Context, service string) ([]api.Revision, error)
	// Events are the newest limit events at or after since (zero time:
	// from the first), oldest first.
	Events(ctx context.Context, since time.Time, limit int) ([]api.Event, error)
	Rollback(ctx context.Context, service string, to int, out func(api.Message)) api.Message
	Scale(ctx context.Context, counts map[string]int) (api.Status, error)
	Pause(ctx context.Context, service string) (api.ServiceStatus, error)
	Resume(ctx context.Context, service string, out func(api.Message)) api.Message
}

// envRoutes serves an app's remote environments, read from its deployed
// berth.yaml.
func (d *Daemon) envRoutes(mux *http.ServeMux) {
	const p = "/v1/apps/{app}/envs/{env}"
	mux.HandleFunc("GET "+p+"/status", d.withEnv(func(w http.ResponseWriter, r *http.Request, e Environment) {
		st, err := e.Status(r.Context())
		answer(w, st, err)
	}))
	mux.HandleFunc("GET "+p+"/services/{svc}/revisions", d.withEnv(func(w http.ResponseWriter, r *http.Request, e Environment) {
		revs, err := e.Revisions(r.Context(), r.PathValue("svc"))
		if revs == nil {
			revs = []api.Revision{}
		}
		answer(w, revs, err)
	}))
	mux.HandleFunc("GET "+p+"/events", d.withEnv(func(w http.ResponseWriter, r *http.Request, e Environment) {
		var since time.Time
		if s := r.URL.Query().Get("since"); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				fail(w, fmt.Errorf("%w: since=%s: give an RFC 3339 time", ErrInvalid, s))
				return
			}
			since = t
		}
		limit := 100
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				fail(w, fmt.Errorf("%w: limit=%s: give a positive number", ErrInvalid, s))
				return
			}
			limit = n
		}
		evs, err := e.Events(r.Context(), since, limit)
		if evs == nil {
			evs = []api.Event{}
		}
		answer(w, evs, err)
	}))
	mux.HandleFunc("POST "+p+"/services/{svc}/rollback", d.withEnv(func(w http.ResponseWriter, r *http.Request, e Environment) {
		var req api.RollbackRequest
		if r.ContentLength != 0 {
			if err := decode(r, &req); err != nil {
				fail(w, err)
				return
			}
		}
		svc := r.PathValue("svc")
		d.runStreamed(w, r, func(out rollout.Progress) api.Message { return e.Rollback(d.ctx, svc, req.To, out) })
	}))
	mux.HandleFunc("POST "+p+"/scale", d.withEnv(func(w http.ResponseWriter, r *http.Request, e Environment) {
		var req api.ScaleRequest
		if err := decode(r, &req); err != nil {
			fail(w, err)
			return
		}
		st, err := e.Scale(r.Context(), req.Counts)
		answer(w, st, err)
	}))
	mux.HandleFunc("POST "+p+"/services/{svc}/pause", d.withEnv(func(w http.ResponseWriter, r *http.Request, e Environment) {
		st, err := e.Pause(r.Context(), r.PathValue("svc"))
		answer(w, st, err)
	}))
	mux.HandleFunc("POST "+p+"/services/{svc}/resume", d.withEnv(func(w http.ResponseWriter, r *http.Request, e Environment) {
		svc := r.PathValue("svc")
		d.runStreamed(w, r, func(out rollout.Progress) api.Message { return e.Resume(d.ctx, svc, out) })
	}))
}

// answer writes v, or err as the API's error.
func answer(w http.ResponseWriter, v any, err error) {
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// withEnv opens the request's environment from the app's deployed spec
// before h.
func (d *Daemon) withEnv(h func(http.ResponseWriter, *http.Request, Environment)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		app, env := r.PathValue("app"), r.PathValue("env")
		a, err := d.store.GetApp(r.Context(), app)
		if err != nil {
			writeError(w, http.StatusNotFound, api.Error{Code: "not_found", Message: fmt.Sprintf("app %s is not deployed to this server, so it knows none of its environments: run berth --env %s from the app's directory", app, env)})
			return
		}
		sp, err := spec.Parse(a.SpecFile, []byte(a.SpecYAML))
		if err != nil {
			fail(w, fmt.Errorf("app %s's deployed spec: %w", app, err))
			return
		}
		if _, ok := sp.Environments[env]; !ok || env == "local" {
			writeError(w, http.StatusNotFound, api.Error{Code: "not_found", Message: fmt.Sprintf("app %s's deployed berth.yaml names no environment %q besides this server's", app, env)})
			return
		}
		if d.cfg.Environments == nil {
			writeError(w, http.StatusNotImplemented, api.Error{Code: "no_environments", Message: "this berth server does not reach remote environments; run berth --env " + env + " from the app's directory"})
			return
		}
		e, err := d.cfg.Environments.Open(r.Context(), sp, env)
		if err != nil {
			fail(w, err)
			return
		}
		h(w, r, e)
	}
}
