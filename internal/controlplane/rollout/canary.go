package rollout

// A canary deploy (berth deploy --canary PERCENT) starts the new revision
// next to the serving one and gives it a share of the service's traffic,
// with the edge's shift machinery: an entrypoint on the service's own host
// names whose origin is the serving revision's route and whose one share is
// a route of the canary's instances. The split is sticky per client
// (cookie), a tester picks a side with "X-Berth-Origin: canary" or
// "stable", and a guard (1% errors over 30s) rolls it back by itself.
//
//	prepare ─▶ build ─▶ release ─▶ start ─▶ healthy ─▶ canary (P% of traffic)
//	                                                     │
//	           berth deploy --promote ◀──────────────────┤
//	                │                                    │ guard trips, berth rollback
//	                ▼                                    ▼
//	        switch ─▶ drain ─▶ done          rolled back (canary removed,
//	                                          previous keeps serving)
//
// While a canary runs, its revision stays "deploying" and other deploys of
// the service are refused. A daemon restart ends a canary the way it ends
// any unfinished deploy: the revision is marked failed and its containers
// removed; the serving revision keeps all traffic.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/apierr"
	"github.com/berth-dev/berth/internal/controlplane/fleet"
	"github.com/berth-dev/berth/internal/controlplane/traffic"
	"github.com/berth-dev/berth/internal/router"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/store"
)

const (
	// canaryPrefix names the entrypoints of canaries: "canary:app/service"
	// cannot collide with a user's entrypoint name.
	canaryPrefix = "canary:"
	// CanaryHeader is the request header a tester sets to "canary" or
	// "stable" to pick a side of a canary.
	CanaryHeader = "X-Berth-Origin"
)

// canary is a revision on trial next to the serving one.
type canary struct {
	rev       fleet.Revision
	instances []*fleet.Instance
	percent   float64
	since     time.Time
}

func canaryRoute(s *fleet.Service) string { return serviceKey(s) + "@canary" }
func canaryName(s *fleet.Service) string  { return canaryPrefix + serviceKey(s) }

// serviceKey is the service's route in the router: "app/service".
func serviceKey(s *fleet.Service) string { return s.App() + "/" + s.Name() }

// canaryOf is the canary of s, nil when it has none.
func (m *Manager) canaryOf(s *fleet.Service) *canary {
	m.canaryMu.Lock()
	defer m.canaryMu.Unlock()
	return m.canaries[serviceKey(s)]
}

// takeCanary ends the canary of s and returns it, nil when it had none.
func (m *Manager) takeCanary(s *fleet.Service) *canary {
	m.canaryMu.Lock()
	defer m.canaryMu.Unlock()
	c := m.canaries[serviceKey(s)]
	delete(m.canaries, serviceKey(s))
	return c
}

// startCanary brings rev up next to what serves and gives it percent of the
// service's traffic. The caller holds s busy.
func (m *Manager) startCanary(ctx context.Context, s *fleet.Service, rev fleet.Revision, percent float64, out Progress) error {
	ctx, cancel := context.WithTimeoutCause(ctx, m.cfg.DeployTimeout, fmt.Errorf("deploy timeout (%s) reached", m.cfg.DeployTimeout))
	defer cancel()
	want := rev.Spec.DesiredInstances()
	out.phase(phaseStart, "%s: starting %d instance(s) of revision %d as a canary", s.Name(), want, rev.Number)
	ins, err := m.fleet.BringUp(ctx, s.App(), rev, want)
	if err != nil {
		return err
	}
	out.phase(phaseHealthy, "%s: revision %d healthy (%d/%d instances)", s.Name(), rev.Number, len(ins), want)

	c := &canary{rev: rev, instances: ins, percent: percent, since: time.Now()}
	cur := s.Serving()
	stable, oldRev := cur.Spec, cur.Number
	m.canaryMu.Lock()
	m.canaries[serviceKey(s)] = c
	m.canaryMu.Unlock()
	if err := m.publishCanary(s, c, stable); err != nil {
		m.takeCanary(s)
		m.edge.Remove(canaryRoute(s))
		for _, in := range ins {
			m.fleet.RemoveInstance(context.WithoutCancel(ctx), in)
		}
		return err
	}
	out.phase(phaseSwitch, "%s: revision %d gets %v%% of the traffic as a canary, revision %d the rest; promote it with \"berth deploy --promote %s\"",
		s.Name(), rev.Number, percent, oldRev, s.Name())
	if err := m.setRevisionStatus(context.WithoutCancel(ctx), s, rev.Number, store.RevisionDeploying, fmt.Sprintf("canary with %v%% of the traffic", percent)); err != nil {
		m.log.Warn("record canary", "service", s.Name(), "err", err)
	}
	m.event(s.App(), s.Name(), "canary", fmt.Sprintf("revision %d is a canary with %v%% of the traffic; revision %d keeps the rest", rev.Number, percent, oldRev))
	return nil
}

// publishCanary installs the canary's route and the entrypoint that splits
// the service's hosts between the stable and the canary routes.
func (m *Manager) publishCanary(s *fleet.Service, c *canary, stable *spec.Service) error {
	r := router.Route{Key: canaryRoute(s), Timeout: c.rev.Spec.Timeout}
	for _, in := range c.instances {
		r.Backends = append(r.Backends, router.Backend{ID: in.ID(), Addr: in.Addr()})
	}
	m.edge.Update(r)
	key := serviceKey(s)
	ep := router.Entrypoint{
		Name:    canaryName(s),
		Label:   key,
		Hosts:   m.fleet.Hosts(s.App(), stable),
		Origin:  router.Origin{Name: "stable", Route: key},
		Shares:  []router.Share{{Origin: router.Origin{Name: "canary", Route: canaryRoute(s)}, Weight: router.PercentToWeight(c.percent)}},
		ShiftID: "r" + strconv.Itoa(c.rev.Number),
		Sticky:  true,
		Header:  CanaryHeader,
		Guard:   router.Guard{ErrorRate: router.DefaultGuardErrorRate, Window: router.DefaultGuardWindow},
		// Entrypoints in front of the service take part in the canary too.
		Splits: key,
		// The edge's own route gives requests the stable revision's
		// timeout; so does the canary's split.
		Controls: router.Controls{Timeout: stable.Timeout},
	}
	for _, pr := range stable.Routes {
		o := router.Origin{Name: pr.Service, Route: s.App() + "/" + pr.Service}
		ep.Routes = append(ep.Routes, router.EntrypointRoute{Prefix: pr.Path, Origin: &o})
	}
	return m.edge.SetEntrypoint(ep)
}

// unpublishCanary gives the service's hosts back to its own route.
func (m *Manager) unpublishCanary(s *fleet.Service) {
	m.edge.RemoveEntrypoint(canaryName(s))
	m.edge.Remove(canaryRoute(s))
}

// promote moves all of the service's traffic to its canary, then drains and
// stops the previous revision, as a deploy's switch does. The caller holds
// s busy.
func (m *Manager) promote(ctx context.Context, s *fleet.Service, out Progress) (int, error) {
	c := m.takeCanary(s)
	if c == nil {
		return 0, fmt.Errorf("%w: %s has no canary to promote; start one with \"berth deploy --canary PERCENT %s\"", apierr.ErrInvalid, s.Name(), s.Name())
	}
	out.phase(phaseHealthy, "%s: promoting canary revision %d (%v%% of the traffic for %s)", s.Name(), c.rev.Number, c.percent, time.Since(c.since).Round(time.Second))
	// switchTo publishes the canary's instances on the service's route;
	// until the canary's split is removed both of its sides reach them.
	err := m.switchTo(ctx, s, c.rev, c.instances, true, out, func() { m.unpublishCanary(s) })
	if err != nil {
		return 0, err
	}
	return c.rev.Number, nil
}

// abortCanary removes the service's canary, if it has one, and gives all
// traffic back to the serving revision. It reports whether there was one.
func (m *Manager) abortCanary(ctx context.Context, s *fleet.Service, why string) bool {
	c := m.takeCanary(s)
	cur := s.Serving().Number
	if c == nil {
		return false
	}
	m.unpublishCanary(s)
	m.fleet.DrainAndStop(ctx, s, c.instances, true)
	if err := m.setRevisionStatus(ctx, s, c.rev.Number, store.RevisionFailed, "canary rolled back: "+why); err != nil {
		m.log.Warn("record canary rollback", "service", s.Name(), "err", err)
	}
	m.event(s.App(), s.Name(), "canary-rolled-back", fmt.Sprintf("canary revision %d rolled back: %s; revision %d keeps all traffic", c.rev.Number, why, cur))
	return true
}

// IsCanary reports whether a guard's trip is a canary's: its entrypoint
// is one of those CanaryTrip handles.
func IsCanary(t router.GuardTrip) bool { return strings.HasPrefix(t.Entrypoint, canaryPrefix) }

// CanaryTrip rolls a canary back when its guard trips (the edge already
// sends it nothing).
func (m *Manager) CanaryTrip(t router.GuardTrip) {
	app, name, ok := strings.Cut(strings.TrimPrefix(t.Entrypoint, canaryPrefix), "/")
	if !ok {
		return
	}
	s := m.fleet.Lookup(app, name)
	if s == nil {
		return
	}
	if c := m.canaryOf(s); c != nil && "r"+strconv.Itoa(c.rev.Number) == t.ID {
		m.abortCanary(m.ctx, s, "the guard saw "+traffic.GuardReason(t))
	}
}

// promoteDeploy is `berth deploy --promote [SERVICE...]`: every named
// service (or every one with a canary) takes its canary.
func (m *Manager) promoteDeploy(ctx context.Context, sp *spec.Spec, req api.DeployRequest, out Progress) api.Message {
	var ss []*fleet.Service
	if len(req.Services) > 0 {
		for _, n := range req.Services {
			s := m.fleet.Lookup(sp.App, n)
			if s == nil {
				return m.failure(fmt.Errorf("%w: app %s has no service %q", apierr.ErrNotFound, sp.App, n), nil)
			}
			ss = append(ss, s)
		}
	} else {
		for _, s := range m.fleet.Services(sp.App) {
			if m.canaryOf(s) != nil {
				ss = append(ss, s)
			}
		}
		if len(ss) == 0 {
			return m.failure(fmt.Errorf("%w: no service of %s has a canary to promote", apierr.ErrInvalid, sp.App), nil)
		}
	}
	if err := fleet.Acquire("promote", ss...); err != nil {
		return m.failure(err, nil)
	}
	defer fleet.Release(ss...)
	var deployed []api.Deploy
	for _, s := range ss {
		rev, err := m.promote(ctx, s, out)
		if err != nil {
			res := m.failure(fmt.Errorf("promote of %s failed: %w", s.Name(), err), nil)
			res.Deployed = deployed
			return res
		}
		urls := m.fleet.URLs(s.App(), s.Serving().Spec)
		deployed = append(deployed, api.Deploy{Service: s.Name(), Revision: rev, URLs: urls})
	}
	return api.Message{Kind: api.KindResult, Time: time.Now(), OK: true, Deployed: deployed}
}

// dropAppCanaries forgets the canaries of an app being destroyed.
func (m *Manager) dropAppCanaries(app string) {
	for _, s := range m.fleet.Services(app) {
		if c := m.takeCanary(s); c != nil {
			m.unpublishCanary(s)
		}
	}
}
