package controlplane

import (
	"context"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/controlplane/traffic"
	"github.com/berth-dev/berth/internal/router"
	"github.com/berth-dev/berth/internal/spec"
)

// service is the daemon's live view of one service: the revision that
// serves, its instances, and what operation (if any) holds it.
//
// Everything is guarded by mu. Slow work (starting containers, health
// checks, draining) happens without mu held; it is re-taken to publish.
type service struct {
	app, name string

	mu sync.Mutex
	// busy names the operation in progress ("deploy", "rollback", "pause",
	// "resume", "scale", "destroy"); a second one is refused while set.
	busy      string
	busySince time.Time

	rev     int           // serving revision, 0 before the first deploy
	spec    *spec.Service // serving revision's spec
	image   string        // serving revision's image reference
	paused  bool
	desired int // `berth scale` override; 0 = the spec's count

	instances []*instance // the serving revision's live instances
	pending   int         // replacements being started by the reconciler

	// Crash-loop tracking: consecutive crashes and when the next replacement
	// may start.
	crashes     int
	lastCrash   time.Time
	nextRestart time.Time
	crashMsg    string
	// restartArmed is set while a timer will kick the reconciler when the
	// crash-loop backoff ends.
	restartArmed bool
	lastFailure  string // why the last deploy failed, for status

	// Autoscaling (autoscaler.go, internal/controlplane/autoscale) of a
	// service with scale: in its spec.
	auto autoState
	// canary is a revision on trial next to the serving one (canary.go).
	canary *canary
	// traffic is the edge's request rate and latency per revision.
	traffic trafficBook
	// claimed is when the service's app was first deployed: should two
	// routes list one host, the earlier keeps it (hosts.go).
	claimed time.Time
}

func serviceKey(app, name string) string { return app + "/" + name }

// service returns (creating if needed) the live state of app/name.
func (d *Daemon) service(app, name string) *service {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := serviceKey(app, name)
	s, ok := d.services[k]
	if !ok {
		s = &service{app: app, name: name}
		d.services[k] = s
	}
	return s
}

// lookupService returns the live state of app/name, or nil.
func (d *Daemon) lookupService(app, name string) *service {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.services[serviceKey(app, name)]
}

// appServices returns the live services of one app ("" = all), sorted.
func (d *Daemon) appServices(app string) []*service {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*service
	for _, s := range d.services {
		if app == "" || s.app == app {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].app != out[j].app {
			return out[i].app < out[j].app
		}
		return out[i].name < out[j].name
	})
	return out
}

// desiredCount is how many instances should serve. Call with mu held.
func (s *service) desiredCount() int {
	if s.desired > 0 {
		return s.desired
	}
	if s.spec == nil {
		return 0
	}
	if n, ok := s.autoDesired(); ok {
		return n
	}
	return s.spec.DesiredInstances()
}

// hosts are the host names the service answers to at the edge.
func (d *Daemon) hosts(app string, sp *spec.Service) []string {
	h := []string{fmt.Sprintf("%s.%s.%s", sp.Name, app, d.cfg.Domain)}
	return append(h, sp.Domains...)
}

// urls are the service's URLs as a user types them.
func (d *Daemon) urls(app string, sp *spec.Service) []string {
	if sp == nil || sp.Port == 0 {
		return nil
	}
	var out []string
	for _, h := range d.hosts(app, sp) {
		if d.httpPort == "80" || d.httpPort == "" {
			out = append(out, "http://"+h)
		} else {
			out = append(out, "http://"+net.JoinHostPort(h, d.httpPort))
		}
	}
	return out
}

// publish installs the service's current route in the edge: its hosts and
// its healthy instances. Call with s.mu held.
func (d *Daemon) publish(s *service) {
	d.recordInstances(s)
	if s.spec == nil || s.spec.Port == 0 {
		d.edge.Remove(serviceKey(s.app, s.name))
		return
	}
	if s.claimed.IsZero() {
		// Once per service: the app's record outlives its deploys.
		if a, err := d.store.GetApp(context.Background(), s.app); err == nil {
			s.claimed = a.CreatedAt
		}
	}
	r := router.Route{
		Key:     serviceKey(s.app, s.name),
		Claimed: s.claimed,
		Hosts:   append(d.hosts(s.app, s.spec), traffic.InternalHost(s.app, s.name)),
		Timeout: s.spec.Timeout,
		Paused:  s.paused,
		Hold:    autoService{d: d, s: s}.holdFor(),
	}
	lbControls(&r, s.spec) // internal_lb.go
	for _, in := range s.instances {
		if in.state == stateHealthy {
			r.Backends = append(r.Backends, router.Backend{ID: in.id, Addr: in.addr, Since: in.healthyAt})
		}
	}
	for _, rt := range s.spec.Routes {
		r.PathRoutes = append(r.PathRoutes, router.PathRoute{Prefix: rt.Path, Key: serviceKey(s.app, rt.Service)})
	}
	d.edge.Update(r)
	d.refreshCertHosts()
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

// acquire marks the services busy with op, all or none. It refuses when any
// of them is already busy, naming it.
func acquire(op string, ss ...*service) error {
	for i, s := range ss {
		s.mu.Lock()
		if s.busy != "" {
			busy, since := s.busy, time.Since(s.busySince).Round(time.Second)
			s.mu.Unlock()
			release(ss[:i]...)
			return fmt.Errorf("%w: a %s of %s/%s is already in progress (started %s ago); wait for it to finish", ErrBusy, busy, s.app, s.name, since)
		}
		s.busy, s.busySince = op, time.Now()
		s.mu.Unlock()
	}
	return nil
}

// release clears the busy mark taken by acquire.
func release(ss ...*service) {
	for _, s := range ss {
		s.mu.Lock()
		s.busy = ""
		s.mu.Unlock()
	}
}
