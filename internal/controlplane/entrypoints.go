package controlplane

// The daemon's side of the edge: it creates the local edge with its
// metrics and access log, and gives the entrypoints
// (internal/controlplane/traffic) the router, the store and the services
// they look up.

import (
	"net"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/berth-dev/berth/internal/controlplane/rollout"
	"github.com/berth-dev/berth/internal/controlplane/traffic"
	"github.com/berth-dev/berth/internal/edge"
	"github.com/berth-dev/berth/internal/router"
	"github.com/berth-dev/berth/internal/spec"
)

// AccessLogFile is the edge's access log in the data directory.
const AccessLogFile = "edge-access.log"

// edgeState is the daemon's side of the edge: its metrics registry and
// access log.
type edgeState struct {
	registry  *prometheus.Registry
	accessLog *edge.LogFile // nil when Config.AccessLog is set
}

// initEdge creates the edge with its metrics and access log, the apps'
// internal load balancers and the entrypoints (internal/controlplane/traffic),
// which Run installs from the store (Load) once the fleet is there to look
// their services up. httpsPort is "" without HTTPS.
func (d *Daemon) initEdge(httpsPort string) (*edge.Edge, error) {
	edge.TuneGC()
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, err
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, err
	}
	m, err := edge.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	d.edgex.registry = reg
	w := d.cfg.AccessLog
	if w == nil {
		lf, err := edge.OpenLogFile(filepath.Join(d.cfg.DataDir, AccessLogFile), edge.DefaultLogMaxBytes, edge.DefaultLogKeep)
		if err != nil {
			return nil, err
		}
		d.edgex.accessLog, w = lf, lf
	}
	e := edge.New(edge.Options{
		Logger:        d.log.With("component", "edge"),
		Metrics:       m,
		AccessLog:     w,
		OnGuardTrip:   d.onGuardTrip,
		HTTPSPort:     httpsPort,
		OriginRootCAs: d.cfg.OriginRootCAs,
	})
	d.edge, d.edgeHTTP = e, e
	d.internal = newInternal(d)
	if d.metrics != nil {
		if err := d.registerMetrics(reg); err != nil {
			return nil, err
		}
	}
	d.entrypoints = traffic.New(traffic.Config{
		Log:          d.log,
		Store:        d.store,
		Router:       e,
		DataDir:      d.cfg.DataDir,
		HTTPPort:     d.httpPort,
		ServiceSpec:  d.serviceSpec,
		Event:        d.event,
		RefreshHosts: d.refreshCertHosts,
	})
	return e, nil
}

// serviceSpec is the deployed spec of app/service, nil when there is none.
func (d *Daemon) serviceSpec(app, name string) *spec.Service {
	return d.fleet.ServiceSpec(app, name)
}

// closeEdge closes the entrypoints' caches (their disk entries stay for the
// next start) and the access log.
func (d *Daemon) closeEdge() {
	d.entrypoints.Close()
	if d.edgex.accessLog != nil {
		_ = d.edgex.accessLog.Close()
	}
}

// onGuardTrip hands a guard's rollback to the canary it belongs to
// (internal/controlplane/rollout) or to the entrypoints.
func (d *Daemon) onGuardTrip(t router.GuardTrip) {
	if rollout.IsCanary(t) {
		d.rollout.CanaryTrip(t)
		return
	}
	d.entrypoints.GuardTrip(t)
}

// redirectHTTPS decides, for the certificate manager's plain-HTTP handler,
// whether a request for host is redirected to HTTPS: as the entrypoint that
// serves host says when its spec says (redirect_https), else for public
// (ACME) domains. It runs for every plain-HTTP request: one atomic load and
// a map lookup.
func (d *Daemon) redirectHTTPS(host string) bool {
	if v, ok := d.entrypoints.RedirectHTTPS(host); ok {
		return v
	}
	return d.certs != nil && d.certs.IsACME(host)
}

// httpsPortString is the bound HTTPS port, "" without HTTPS.
func httpsPortString(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return portOf(ln.Addr().String())
}
