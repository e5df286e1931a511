package controlplane

// The wiring of the control plane's parts: the fleet (the services'
// instances), the rollout (their revisions) and the autoscaler, each given
// what it needs of the daemon: the store, the engine, the router, the
// tasks, the entrypoints and internal load balancers, events and metrics,
// and the daemon's lifetime.

import (
	"context"
	"time"

	"github.com/berth-dev/berth/internal/controlplane/autoscale"
	"github.com/berth-dev/berth/internal/controlplane/fleet"
	"github.com/berth-dev/berth/internal/controlplane/rollout"
	"github.com/berth-dev/berth/internal/controlplane/traffic"
	"github.com/berth-dev/berth/internal/store"
)

// AutoscaleConfig tunes the autoscaler. Zero fields take the defaults
// (autoscale.Tuning).
type AutoscaleConfig = autoscale.Tuning

// newFleet wires the services' live state and instances
// (internal/controlplane/fleet) to the daemon.
func newFleet(d *Daemon) *fleet.Fleet {
	return fleet.New(fleet.Config{
		Log:            d.log,
		Store:          d.store,
		Pods:           d.pods,
		Router:         d.edge,
		Internal:       d.internal,
		Tasks:          d.tasks,
		Domain:         d.cfg.Domain,
		HTTPPort:       d.httpPort,
		DeployTimeout:  d.cfg.DeployTimeout,
		Drain:          d.cfg.Drain,
		RollbackWarm:   d.cfg.RollbackWarm,
		Autoscale:      d.cfg.Autoscale,
		Settle:         rollout.Settle,
		Event:          d.event,
		CountAutoscale: d.countAutoscale,
		RefreshHosts:   d.refreshCertHosts,
		Ctx:            d.ctx,
		BG:             &d.bg,
	})
}

// newRollout wires the rollout of revisions
// (internal/controlplane/rollout) to the daemon.
func newRollout(d *Daemon) *rollout.Manager {
	return rollout.New(rollout.Config{
		Log:           d.log,
		Store:         d.store,
		Pods:          d.pods,
		Router:        d.edge,
		Fleet:         d.fleet,
		Tasks:         d.tasks,
		Entrypoints:   d.entrypoints,
		Internal:      d.internal,
		Domain:        d.cfg.Domain,
		DeployTimeout: d.cfg.DeployTimeout,
		Event:         d.event,
		Code:          errorCode,
		Ctx:           d.ctx,
	})
}

// newAutoscaler wires the autoscaler to the daemon: the router's load, the
// fleet's services, and a tick's panic to the log.
func newAutoscaler(d *Daemon) *autoscale.Autoscaler {
	return autoscale.New(autoscale.Config{
		Tuning:   d.cfg.Autoscale,
		Load:     d.edge,
		Services: d.fleet.AutoscaleServices,
		Panicked: func(what string, v any) { logPanic(d.log, v, what) },
	})
}

// event records something that happened, for `berth events` and status.
func (d *Daemon) event(app, svc, kind, msg string) {
	if _, err := d.store.AddEvent(context.Background(), store.Event{Time: time.Now().UTC(), App: app, Service: svc, Kind: kind, Message: msg}); err != nil {
		d.log.Warn("record event", "err", err)
	}
	d.log.Info(msg, "app", app, "service", svc, "event", kind)
	d.metrics.event(app, svc, kind)
}

// refreshCertHosts tells the certificate manager every host the edge
// serves, so public domains get ACME certificates (in the background).
func (d *Daemon) refreshCertHosts() {
	if d.certs == nil {
		return
	}
	var hosts []string
	for _, r := range d.edge.Routes() {
		for _, h := range r.Hosts {
			if !traffic.IsInternalHost(h) { // served to the app's containers only
				hosts = append(hosts, h)
			}
		}
	}
	for _, ep := range d.edge.Entrypoints() { // internal/controlplane/traffic
		hosts = append(hosts, ep.Hosts...)
	}
	if err := d.certs.SetHosts(d.ctx, hosts); err != nil {
		d.log.Warn("certificates: hosts not accepted", "err", err)
	}
}
