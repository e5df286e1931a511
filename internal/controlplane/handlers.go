package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/rollout"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/store"
)

// maxRequestBody bounds API request bodies (a spec is a few KiB).
const maxRequestBody = 4 << 20

// routes is the API, as listed in package api's doc comment.
func (d *Daemon) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/apps", d.handleApps)
	mux.HandleFunc("POST /v1/deploy", d.handleDeploy)
	mux.HandleFunc("GET /v1/status", d.handleStatus)
	mux.HandleFunc("GET /v1/apps/{app}/services/{svc}/revisions", d.handleRevisions)
	mux.HandleFunc("POST /v1/apps/{app}/services/{svc}/rollback", d.handleRollback)
	mux.HandleFunc("GET /v1/apps/{app}/services/{svc}/logs", d.handleLogs)
	mux.HandleFunc("GET /v1/apps/{app}/services/{svc}/history", d.handleHistory)
	mux.HandleFunc("POST /v1/apps/{app}/scale", d.handleScale)
	mux.HandleFunc("POST /v1/apps/{app}/services/{svc}/pause", d.handlePause)
	mux.HandleFunc("POST /v1/apps/{app}/services/{svc}/resume", d.handleResume)
	mux.HandleFunc("DELETE /v1/apps/{app}", d.handleDestroy)
	mux.HandleFunc("GET /v1/apps/{app}/services/{svc}/secrets", d.handleSecretList)
	mux.HandleFunc("PUT /v1/apps/{app}/services/{svc}/secrets", d.handleSecretSet)
	mux.HandleFunc("DELETE /v1/apps/{app}/services/{svc}/secrets/{key}", d.handleSecretDelete)
	mux.HandleFunc("GET /v1/events", d.handleEvents)
	mux.HandleFunc("POST /v1/apps/{app}/tasks", d.handleTaskRun)
	mux.HandleFunc("GET /v1/tasks", d.handleTaskList)
	mux.HandleFunc("GET /v1/tasks/{id}", d.handleTaskGet)
	mux.HandleFunc("GET /v1/tasks/{id}/logs", d.handleTaskLogs)
	mux.HandleFunc("POST /v1/tasks/{id}/stop", d.handleTaskStop)
	mux.HandleFunc("POST /v1/apps/{app}/services/{svc}/exec", d.handleExec)
	mux.HandleFunc("GET /v1/ca", d.handleCA)
	mux.HandleFunc("POST /v1/ui/signin", d.handleSignIn)
	d.envRoutes(mux)  // envs.go: /v1/apps/{app}/envs/{env}/...
	d.edgeRoutes(mux) // edge_handlers.go: /v1/edge..., /metrics
	return containHandler(d.log, http.MaxBytesHandler(mux, maxRequestBody))
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: request body: %v", ErrInvalid, err)
	}
	return nil
}

func (d *Daemon) handleApps(w http.ResponseWriter, r *http.Request) {
	apps, err := d.store.ListApps(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	out := []api.AppSummary{}
	for _, a := range apps {
		sum := api.AppSummary{Name: a.Name, Services: []string{}}
		svcs, err := d.store.ListServices(r.Context(), a.Name)
		if err != nil {
			fail(w, err)
			return
		}
		for _, s := range svcs {
			sum.Services = append(sum.Services, s.Name)
		}
		if sp, err := spec.Parse(a.SpecFile, []byte(a.SpecYAML)); err == nil {
			for _, name := range sp.EnvironmentOrder {
				if e := sp.Environments[name]; e != nil {
					sum.Environments = append(sum.Environments, api.EnvironmentSummary{Name: name, Engine: e.Engine, Region: e.Region})
				}
			}
		}
		out = append(out, sum)
	}
	writeJSON(w, http.StatusOK, out)
}

func (d *Daemon) handleDeploy(w http.ResponseWriter, r *http.Request) {
	var req api.DeployRequest
	if err := decode(r, &req); err != nil {
		fail(w, err)
		return
	}
	if req.File == "" {
		req.File = "berth.yaml"
	}
	req.By = callerOf(r.Context()) // never the client's word
	d.runStreamed(w, r, func(out rollout.Progress) api.Message {
		return d.rollout.Deploy(d.ctx, req, out)
	})
}

func (d *Daemon) handleRollback(w http.ResponseWriter, r *http.Request) {
	var req api.RollbackRequest
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			fail(w, err)
			return
		}
	}
	app, svc := r.PathValue("app"), r.PathValue("svc")
	d.runStreamed(w, r, func(out rollout.Progress) api.Message {
		return d.rollout.Rollback(d.ctx, app, svc, req.To, out)
	})
}

func (d *Daemon) handleRevisions(w http.ResponseWriter, r *http.Request) {
	app, name := r.PathValue("app"), r.PathValue("svc")
	if _, err := d.fleet.Existing(r.Context(), app, name); err != nil {
		fail(w, err)
		return
	}
	revs, err := d.store.ListRevisions(r.Context(), app, name)
	if err != nil {
		fail(w, err)
		return
	}
	out := []api.Revision{}
	for _, rv := range revs {
		out = append(out, api.Revision{Number: rv.Number, Image: rv.Image, ImageID: rv.ImageID, Status: string(rv.Status), CreatedAt: rv.CreatedAt, Message: rv.Message, By: rv.By})
	}
	writeJSON(w, http.StatusOK, out)
}

func (d *Daemon) handleScale(w http.ResponseWriter, r *http.Request) {
	var req api.ScaleRequest
	if err := decode(r, &req); err != nil {
		fail(w, err)
		return
	}
	if len(req.Counts) == 0 {
		fail(w, fmt.Errorf("%w: nothing to scale: pass SERVICE=N", ErrInvalid))
		return
	}
	app := r.PathValue("app")
	if err := d.rollout.Scale(r.Context(), app, req.Counts); err != nil {
		fail(w, err)
		return
	}
	d.writeStatus(w, r.Context(), app)
}

func (d *Daemon) handlePause(w http.ResponseWriter, r *http.Request) {
	app, name := r.PathValue("app"), r.PathValue("svc")
	if err := d.rollout.Pause(context.WithoutCancel(r.Context()), app, name); err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d.serviceStatus(app, name))
}

func (d *Daemon) handleResume(w http.ResponseWriter, r *http.Request) {
	app, name := r.PathValue("app"), r.PathValue("svc")
	d.runStreamed(w, r, func(out rollout.Progress) api.Message {
		return result(d.rollout.Resume(d.ctx, app, name, out))
	})
}

func (d *Daemon) handleDestroy(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	d.runStreamed(w, r, func(out rollout.Progress) api.Message {
		return result(d.rollout.Destroy(d.ctx, app, out))
	})
}

// envName is a valid environment variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (d *Daemon) handleSecretSet(w http.ResponseWriter, r *http.Request) {
	app, name := r.PathValue("app"), r.PathValue("svc")
	var req api.SecretSetRequest
	if err := decode(r, &req); err != nil {
		fail(w, err)
		return
	}
	if len(req.Values) == 0 {
		fail(w, fmt.Errorf("%w: no secrets given: pass KEY=VALUE", ErrInvalid))
		return
	}
	for k := range req.Values {
		if !envName.MatchString(k) {
			fail(w, fmt.Errorf("%w: secret name %q is not a valid environment variable name (letters, digits and _, not starting with a digit)", ErrInvalid, k))
			return
		}
		// The value becomes a variable of the container's process, where a
		// NUL would end it: refused here, not at the next deploy's start.
		if strings.ContainsRune(req.Values[k], 0) {
			fail(w, fmt.Errorf("%w: secret %s contains a NUL byte (\\0), which a process cannot receive in a variable; remove it", ErrInvalid, k))
			return
		}
	}
	if err := d.requireApp(r.Context(), app); err != nil {
		fail(w, err)
		return
	}
	if err := d.store.SetSecrets(r.Context(), app, name, req.Values, time.Now().UTC()); err != nil {
		fail(w, err)
		return
	}
	keys := make([]string, 0, len(req.Values))
	for k := range req.Values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	d.event(app, name, "secret", fmt.Sprintf("secrets set: %v (applied on the next deploy)", keys))
	d.handleSecretList(w, r)
}

func (d *Daemon) handleSecretList(w http.ResponseWriter, r *http.Request) {
	app, name := r.PathValue("app"), r.PathValue("svc")
	if err := d.requireApp(r.Context(), app); err != nil {
		fail(w, err)
		return
	}
	keys, err := d.store.ListSecrets(r.Context(), app, name)
	if err != nil {
		fail(w, err)
		return
	}
	out := []api.SecretKey{}
	for _, k := range keys {
		out = append(out, api.SecretKey{Key: k.Key, UpdatedAt: k.UpdatedAt})
	}
	writeJSON(w, http.StatusOK, out)
}

func (d *Daemon) handleSecretDelete(w http.ResponseWriter, r *http.Request) {
	app, name, key := r.PathValue("app"), r.PathValue("svc"), r.PathValue("key")
	err := d.store.DeleteSecret(r.Context(), app, name, key)
	if errors.Is(err, store.ErrNotFound) {
		fail(w, fmt.Errorf("%w: %s has no secret %q; see \"berth secret ls %s\"", ErrNotFound, name, key, name))
		return
	}
	if err != nil {
		fail(w, err)
		return
	}
	d.event(app, name, "secret", fmt.Sprintf("secret %s removed (applied on the next deploy)", key))
	w.WriteHeader(http.StatusNoContent)
}

// requireApp accepts secrets for an app that exists, or one about to be
// deployed for the first time (secrets are set before the first deploy).
func (d *Daemon) requireApp(ctx context.Context, app string) error {
	if !appName.MatchString(app) {
		return fmt.Errorf("%w: %q is not a valid app name", ErrInvalid, app)
	}
	return nil
}

var appName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

func (d *Daemon) handleEvents(w http.ResponseWriter, r *http.Request) {
	app := r.URL.Query().Get("app")
	follow := r.URL.Query().Get("follow") == "1"
	evs, err := d.store.ListEvents(r.Context(), app, 0, 0)
	if err != nil {
		fail(w, err)
		return
	}
	if len(evs) > 200 {
		evs = evs[len(evs)-200:]
	}
	st := newStream(w)
	defer st.close()
	var last int64
	emit := func(evs []store.Event) {
		for _, e := range evs {
			st.send(api.Message{Kind: api.KindEvent, Time: e.Time, Event: &api.Event{ID: e.ID, Time: e.Time, App: e.App, Service: e.Service, Kind: e.Kind, Message: e.Message}})
			last = e.ID
		}
	}
	emit(evs)
	if !follow {
		return
	}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-d.ctx.Done():
			return
		case <-t.C:
			evs, err := d.store.ListEvents(r.Context(), app, last, 500)
			if err != nil {
				return
			}
			emit(evs)
		}
	}
}

func atoiDefault(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return def
}

// handleCA returns the root of berth's local CA (PEM), for trust stores.
func (d *Daemon) handleCA(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, _ = w.Write(d.certs.CARootPEM())
}
