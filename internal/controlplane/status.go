package controlplane

import (
	"context"
	"fmt"
	"net/http"

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
			as.Services = append(as.Services, d.serviceStatus(a.Name, rec.Name))
		}
		out.Apps = append(out.Apps, as)
	}
	if app != "" && !found {
		return out, fmt.Errorf("%w: no app named %q", ErrNotFound, app)
	}
	return out, nil
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

// serviceStatus is the fleet's status of app/name with its traffic.
func (d *Daemon) serviceStatus(app, name string) api.ServiceStatus {
	st := d.fleet.Status(app, name)
	st.Traffic = d.trafficReport(app, name, st.Revision)
	return st
}
