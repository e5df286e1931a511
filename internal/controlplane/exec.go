package controlplane

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/fleet"
	"github.com/berth-dev/berth/internal/controlplane/tasks"
)

// targetIn is the container of in that req names: the main one, or a
// sidecar.
func targetIn(in fleet.LiveInstance, service string, req api.ExecRequest) (tasks.ExecTarget, error) {
	if req.Container == "" || req.Container == service {
		return tasks.ExecTarget{Instance: in.ID, Pod: in.Pod}, nil
	}
	names := []string{service}
	for _, sc := range in.Sidecars {
		if sc == req.Container {
			return tasks.ExecTarget{Instance: in.ID, Pod: in.Pod, Container: sc}, nil
		}
		names = append(names, sc)
	}
	return tasks.ExecTarget{}, fmt.Errorf("%w: %s has no sidecar named %q; its containers are %s", ErrNotFound, service, req.Container, strings.Join(names, ", "))
}

// handleExec runs a command inside a running instance of a service, as an
// attach session: `berth exec`. Nothing has to be redeployed to allow it.
func (d *Daemon) handleExec(w http.ResponseWriter, r *http.Request) {
	app, svc := r.PathValue("app"), r.PathValue("svc")
	var req api.ExecRequest
	if err := decode(r, &req); err != nil {
		fail(w, err)
		return
	}
	if len(req.Command) == 0 || req.Command[0] == "" {
		fail(w, fmt.Errorf("%w: empty command: put it after --, e.g. \"berth exec %s -- sh\"", ErrInvalid, svc))
		return
	}
	if err := tasks.CheckArgs(req.Command); err != nil {
		fail(w, err)
		return
	}
	target, err := d.execTarget(r.Context(), app, svc, req)
	if err != nil {
		fail(w, err)
		return
	}
	if !isUpgrade(r) {
		fail(w, fmt.Errorf("%w: exec needs the attach protocol (Upgrade: berth-attach); use \"berth exec\"", ErrInvalid))
		return
	}
	ex, err := d.tasks.Exec(app, svc, target, req.Command, req.TTY)
	if err != nil {
		fail(w, err)
		return
	}
	defer ex.Close()
	conn, err := upgrade(w)
	if err != nil {
		d.log.Warn("exec session", "app", app, "service", svc, "err", err)
		return
	}
	defer conn.Close()
	ex.Serve(conn)
}

// execTarget picks the instance (and container) an exec runs in: the one
// asked for, else a healthy one of the serving revision.
func (d *Daemon) execTarget(ctx context.Context, app, name string, req api.ExecRequest) (tasks.ExecTarget, error) {
	s, err := d.fleet.Existing(ctx, app, name)
	if err != nil {
		return tasks.ExecTarget{}, err
	}
	var live []fleet.LiveInstance
	for _, in := range s.Live() {
		if in.State == fleet.StateHealthy || in.State == fleet.StateStarting || in.State == fleet.StateUnhealthy {
			live = append(live, in)
		}
	}
	if req.Instance != "" {
		var match []fleet.LiveInstance
		for _, in := range live {
			if in.ID == req.Instance {
				return targetIn(in, name, req)
			}
			if strings.HasPrefix(in.ID, req.Instance) {
				match = append(match, in)
			}
		}
		switch len(match) {
		case 0:
			return tasks.ExecTarget{}, fmt.Errorf("%w: %s has no running instance %q; see \"berth status\"", ErrNotFound, name, req.Instance)
		case 1:
			return targetIn(match[0], name, req)
		}
		return tasks.ExecTarget{}, fmt.Errorf("%w: instance %q matches several instances of %s; give more of its ID", ErrInvalid, req.Instance, name)
	}
	for _, in := range live {
		if in.State == fleet.StateHealthy {
			return targetIn(in, name, req)
		}
	}
	if len(live) > 0 {
		return targetIn(live[0], name, req)
	}
	switch {
	case s.Serving().Number == 0:
		return tasks.ExecTarget{}, fmt.Errorf("%w: %s has no revision yet; deploy it first (berth deploy)", ErrNoRevision, name)
	case s.Paused():
		return tasks.ExecTarget{}, fmt.Errorf("%w: %s is paused and has no running instance; resume it first (berth resume %s)", ErrNotFound, name, name)
	}
	return tasks.ExecTarget{}, fmt.Errorf("%w: %s has no running instance right now; see \"berth status\"", ErrNotFound, name)
}
