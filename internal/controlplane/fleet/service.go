package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/controlplane/apierr"
	"github.com/berth-dev/berth/internal/controlplane/traffic"
	"github.com/berth-dev/berth/internal/router"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/store"
)

// Service is the daemon's live view of one service: the revision that
// serves, its instances, and what operation (if any) holds it. The rollout
// (internal/controlplane/rollout) moves it from one revision to the next
// through the Fleet's methods; nothing outside this package reads its
// fields.
//
// Everything is guarded by mu. Slow work (starting containers, health
// checks, draining) happens without mu held; it is re-taken to publish.
type Service struct {
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

	instances []*Instance // the serving revision's live instances
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
	// claimed is when the service's app was first deployed: should two
	// routes list one host, the earlier keeps it (the router's rule).
	claimed time.Time
}

func serviceKey(app, name string) string { return app + "/" + name }

// App is the service's app.
func (s *Service) App() string { return s.app }

// Name is the service's name in its app.
func (s *Service) Name() string { return s.name }

// Service returns (creating if needed) the live state of app/name.
func (f *Fleet) Service(app, name string) *Service {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := serviceKey(app, name)
	s, ok := f.services[k]
	if !ok {
		s = &Service{app: app, name: name}
		f.services[k] = s
	}
	return s
}

// Lookup returns the live state of app/name, or nil.
func (f *Fleet) Lookup(app, name string) *Service {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.services[serviceKey(app, name)]
}

// Services returns the live services of one app ("" = all), sorted.
func (f *Fleet) Services(app string) []*Service {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*Service
	for _, s := range f.services {
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
func (s *Service) desiredCount() int {
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

// Hosts are the host names a service of app with spec sp answers to at
// the edge.
func (f *Fleet) Hosts(app string, sp *spec.Service) []string {
	h := []string{fmt.Sprintf("%s.%s.%s", sp.Name, app, f.cfg.Domain)}
	return append(h, sp.Domains...)
}

// URLs are the URLs of a service of app with spec sp, as a user types
// them; none for a service without a port.
func (f *Fleet) URLs(app string, sp *spec.Service) []string {
	if sp == nil || sp.Port == 0 {
		return nil
	}
	var out []string
	for _, h := range f.Hosts(app, sp) {
		if f.httpPort == "80" || f.httpPort == "" {
			out = append(out, "http://"+h)
		} else {
			out = append(out, "http://"+net.JoinHostPort(h, f.httpPort))
		}
	}
	return out
}

// publish installs the service's current route in the edge: its hosts and
// its healthy instances. Call with s.mu held.
func (f *Fleet) publish(s *Service) {
	f.recordInstances(s)
	if s.spec == nil || s.spec.Port == 0 {
		f.edge.Remove(serviceKey(s.app, s.name))
		return
	}
	if s.claimed.IsZero() {
		// Once per service: the app's record outlives its deploys.
		if a, err := f.store.GetApp(context.Background(), s.app); err == nil {
			s.claimed = a.CreatedAt
		}
	}
	r := router.Route{
		Key:     serviceKey(s.app, s.name),
		Claimed: s.claimed,
		Hosts:   append(f.Hosts(s.app, s.spec), traffic.InternalHost(s.app, s.name)),
		Timeout: s.spec.Timeout,
		Paused:  s.paused,
		Hold:    autoService{f: f, s: s}.holdFor(),
	}
	lbControls(&r, s.spec)
	for _, in := range s.instances {
		if in.state == StateHealthy {
			r.Backends = append(r.Backends, router.Backend{ID: in.id, Addr: in.addr, Since: in.healthyAt})
		}
	}
	for _, rt := range s.spec.Routes {
		r.PathRoutes = append(r.PathRoutes, router.PathRoute{Prefix: rt.Path, Key: serviceKey(s.app, rt.Service)})
	}
	f.edge.Update(r)
	if f.cfg.RefreshHosts != nil {
		f.cfg.RefreshHosts()
	}
}

// Acquire marks the services busy with op ("deploy", "rollback", "pause",
// "resume", "scale", "destroy", ...), all or none, until Release: the
// reconciler and the autoscaler leave a busy service's instances alone, and
// a second operation is refused. It refuses when any
// of them is already busy, naming it.
func Acquire(op string, ss ...*Service) error {
	for i, s := range ss {
		s.mu.Lock()
		if s.busy != "" {
			busy, since := s.busy, time.Since(s.busySince).Round(time.Second)
			s.mu.Unlock()
			Release(ss[:i]...)
			return fmt.Errorf("%w: a %s of %s/%s is already in progress (started %s ago); wait for it to finish", apierr.ErrBusy, busy, s.app, s.name, since)
		}
		s.busy, s.busySince = op, time.Now()
		s.mu.Unlock()
	}
	return nil
}

// Release clears the busy mark taken by Acquire.
func Release(ss ...*Service) {
	for _, s := range ss {
		s.mu.Lock()
		s.busy = ""
		s.mu.Unlock()
	}
}

// Existing returns the live state of a service of an existing app, or a
// not-found error naming what exists.
func (f *Fleet) Existing(ctx context.Context, app, name string) (*Service, error) {
	if _, err := f.store.GetApp(ctx, app); err != nil {
		return nil, fmt.Errorf("%w: no app named %q; see \"berth status\"", apierr.ErrNotFound, app)
	}
	s := f.Lookup(app, name)
	if s == nil {
		var names []string
		for _, o := range f.Services(app) {
			names = append(names, o.name)
		}
		return nil, fmt.Errorf("%w: app %s has no service %q (services: %v)", apierr.ErrNotFound, app, name, names)
	}
	return s, nil
}

// Deployed returns a service that has a serving revision.
func (f *Fleet) Deployed(ctx context.Context, app, name string) (*Service, error) {
	s, err := f.Existing(ctx, app, name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	rev := s.rev
	s.mu.Unlock()
	if rev == 0 {
		return nil, fmt.Errorf("%w: %s has no revision yet; deploy it first", apierr.ErrNoRevision, name)
	}
	return s, nil
}

// SaveService persists the serving revision, the paused flag and the
// count override.
func (f *Fleet) SaveService(ctx context.Context, s *Service) error {
	rec, err := f.store.GetService(ctx, s.app, s.name)
	if errors.Is(err, store.ErrNotFound) {
		rec = store.Service{App: s.app, Name: s.name}
	} else if err != nil {
		return err
	}
	s.mu.Lock()
	rec.CurrentRevision, rec.Paused, rec.Instances, rec.UpdatedAt = s.rev, s.paused, s.desired, time.Now().UTC()
	s.mu.Unlock()
	return f.store.PutService(ctx, rec)
}

// lbControls copies a service's load-balancer controls into its route.
func lbControls(r *router.Route, sp *spec.Service) {
	if sp.Sticky != nil {
		r.Sticky = sp.Sticky.Cookie
	}
	r.SlowStart = sp.SlowStart
	if mc := sp.MaxConcurrency; mc != nil {
		r.MaxConcurrency, r.QueueTimeout = mc.Requests, mc.Queue
	}
}
