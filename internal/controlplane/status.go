package controlplane

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/traffic"
)

func (d *Daemon) handleStatus(w http.ResponseWriter, r *http.Request) {
	d.writeStatus(w, r.Context(), r.URL.Query().Get("app"))
}

func (d *Daemon) writeStatus(w http.ResponseWriter, ctx context.Context, app string) {
	st, err := d.status(ctx, app)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// status reports every app (or one) with its services and instances. It
// never includes env or secret values.
func (d *Daemon) status(ctx context.Context, app string) (api.Status, error) {
	apps, err := d.store.ListApps(ctx)
	if err != nil {
		return api.Status{}, err
	}
	out := api.Status{Apps: []api.AppStatus{}}
	found := false
	for _, a := range apps {
		if app != "" && a.Name != app {
			continue
		}
		found = true
		as := api.AppStatus{Name: a.Name, Services: []api.ServiceStatus{}}
		if as.Entrypoints, err = d.entrypointHosts(ctx, a.Name); err != nil {
			return out, err
		}
		svcs, err := d.store.ListServices(ctx, a.Name)
		if err != nil {
			return out, err
		}
		for _, rec := range svcs {
			st, err := d.serviceStatus(ctx, a.Name, rec.Name)
			if err != nil {
				return out, err
			}
			as.Services = append(as.Services, st)
		}
		out.Apps = append(out.Apps, as)
	}
	if app != "" && !found {
		return out, fmt.Errorf("%w: no app named %q", ErrNotFound, app)
	}
	return out, nil
}

func (d *Daemon) serviceStatus(ctx context.Context, app, name string) (api.ServiceStatus, error) {
	st := api.ServiceStatus{App: app, Name: name, Instances: []api.InstanceStatus{}}
	s := d.lookupService(app, name)
	if s == nil {
		st.State = "stopped"
		return st, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Revision, st.Image, st.Desired = s.rev, "", s.desiredCount()
	if s.spec != nil {
		st.Image = s.spec.Image
		st.URLs = d.urls(app, s.spec)
		if s.spec.Port != 0 {
			st.Hosts = d.hosts(app, s.spec)
		}
	}
	healthy := 0
	for _, in := range s.instances {
		is := api.InstanceStatus{ID: in.id, Revision: in.rev, State: in.state.String(), ContainerID: shortID(in.podID), Addr: in.addr, StartedAt: in.startedAt}
		if s.spec != nil {
			is.CPU, is.Memory, is.Pids = s.spec.CPU, s.spec.Memory, s.spec.Pids
			is.Sidecars, is.Restarts = sidecarStatus(s.spec, in)
		}
		if in.state == stateHealthy {
			healthy++
		}
		st.Instances = append(st.Instances, is)
	}
	sort.Slice(st.Instances, func(i, j int) bool { return st.Instances[i].ID < st.Instances[j].ID })
	st.Running = healthy
	switch {
	case s.busy == "deploy" || s.busy == "rollback":
		st.State = "deploying"
	case s.paused:
		st.State, st.Running = "paused", 0
	case s.rev == 0 && s.lastFailure != "":
		st.State, st.Message = "failed", s.lastFailure
	case s.rev == 0:
		st.State = "stopped"
	case s.crashes > 0 && healthy < st.Desired:
		wait := time.Until(s.lastCrash.Add(backoff(s.crashes))).Round(time.Second)
		st.State = "crash-loop"
		st.Message = fmt.Sprintf("%d crash(es); last: %s", s.crashes, s.crashMsg)
		if wait > 0 {
			st.Message += fmt.Sprintf("; next restart in %s", wait)
		}
	case healthy < st.Desired:
		st.State = "degraded"
	case st.Desired == 0 && s.spec != nil && s.spec.Scale != nil:
		st.State, st.Message = "idle", "scaled to zero; the next request starts an instance"
	default:
		st.State = "running"
	}
	if st.State == "running" && s.lastFailure != "" {
		st.Message = "last deploy failed: " + s.lastFailure
	}
	st.Limits = limitsOf(s.spec)
	st.Internal = d.internal.Status(app, name)
	st.Autoscale = s.autoscaleStatus()
	st.Traffic = s.traffic.report(s.rev)
	return st, nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// entrypointHosts lists the app's entrypoints with the hosts they hold.
func (d *Daemon) entrypointHosts(ctx context.Context, app string) ([]api.EntrypointHosts, error) {
	recs, err := d.store.ListEntrypoints(ctx, app)
	if err != nil {
		return nil, err
	}
	var out []api.EntrypointHosts
	for _, rec := range recs {
		hosts, err := traffic.Hosts(rec)
		if err != nil {
			continue
		}
		out = append(out, api.EntrypointHosts{Name: rec.Name, Hosts: hosts})
	}
	return out, nil
}
