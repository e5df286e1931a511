package controlplane

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
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/traffic"
	"github.com/berth-dev/berth/internal/router"
	"github.com/berth-dev/berth/internal/spec"
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
	rev       revision
	instances []*instance
	percent   float64
	since     time.Time
}

func canaryRoute(s *service) string { return serviceKey(s.app, s.name) + "@canary" }
func canaryName(s *service) string  { return canaryPrefix + serviceKey(s.app, s.name) }

// checkCanary refuses a canary deploy that cannot be one, before anything
// changes.
func (d *Daemon) checkCanary(ss []*service, percent float64) error {
	if percent == 0 {
		return nil
	}
	if math.IsNaN(percent) || percent < 0 || percent > 100 {
		return fmt.Errorf("%w: --canary %v: a percentage is above 0 and at most 100", ErrInvalid, percent)
	}
	for _, s := range ss {
		s.mu.Lock()
		rev, sp, paused := s.rev, s.spec, s.paused
		s.mu.Unlock()
		switch {
		case rev == 0 || sp == nil:
			return fmt.Errorf("%w: --canary: %s has no serving revision to share traffic with; deploy it without --canary first", ErrInvalid, s.name)
		case sp.Port == 0:
			return fmt.Errorf("%w: --canary: %s has no port, so it has no traffic to share; name the services to deploy as canaries", ErrInvalid, s.name)
		case paused:
			return fmt.Errorf("%w: --canary: %s is paused; resume it first", ErrInvalid, s.name)
		}
	}
	return nil
}

// refuseDuringCanary refuses to deploy a service whose canary still runs.
func refuseDuringCanary(ss []*service) error {
	for _, s := range ss {
		s.mu.Lock()
		c := s.canary
		s.mu.Unlock()
		if c != nil {
			return fmt.Errorf("%w: revision %d of %s is a canary with %v%% of the traffic: promote it with \"berth deploy --promote %s\", or roll it back with \"berth rollback %s\"",
				ErrBusy, c.rev.number, s.name, c.percent, s.name, s.name)
		}
	}
	return nil
}

// startCanary brings rev up next to what serves and gives it percent of the
// service's traffic. The caller holds s busy.
func (d *Daemon) startCanary(ctx context.Context, s *service, rev revision, percent float64, out progress) error {
	ctx, cancel := context.WithTimeoutCause(ctx, d.cfg.DeployTimeout, fmt.Errorf("deploy timeout (%s) reached", d.cfg.DeployTimeout))
	defer cancel()
	want := rev.spec.DesiredInstances()
	out.phase(phaseStart, "%s: starting %d instance(s) of revision %d as a canary", s.name, want, rev.number)
	ins, err := d.bringUp(ctx, s.app, rev, want)
	if err != nil {
		return err
	}
	out.phase(phaseHealthy, "%s: revision %d healthy (%d/%d instances)", s.name, rev.number, len(ins), want)

	c := &canary{rev: rev, instances: ins, percent: percent, since: time.Now()}
	s.mu.Lock()
	stable, oldRev := s.spec, s.rev
	s.canary = c
	s.mu.Unlock()
	if err := d.publishCanary(s, c, stable); err != nil {
		s.mu.Lock()
		s.canary = nil
		s.mu.Unlock()
		d.edge.Remove(canaryRoute(s))
		for _, in := range ins {
			d.removeInstance(context.WithoutCancel(ctx), in)
		}
		return err
	}
	out.phase(phaseSwitch, "%s: revision %d gets %v%% of the traffic as a canary, revision %d the rest; promote it with \"berth deploy --promote %s\"",
		s.name, rev.number, percent, oldRev, s.name)
	if err := d.setRevisionStatus(context.WithoutCancel(ctx), s, rev.number, "deploying", fmt.Sprintf("canary with %v%% of the traffic", percent)); err != nil {
		d.log.Warn("record canary", "service", s.name, "err", err)
	}
	d.event(s.app, s.name, "canary", fmt.Sprintf("revision %d is a canary with %v%% of the traffic; revision %d keeps the rest", rev.number, percent, oldRev))
	return nil
}

// publishCanary installs the canary's route and the entrypoint that splits
// the service's hosts between the stable and the canary routes.
func (d *Daemon) publishCanary(s *service, c *canary, stable *spec.Service) error {
	r := router.Route{Key: canaryRoute(s), Timeout: c.rev.spec.Timeout}
	for _, in := range c.instances {
		r.Backends = append(r.Backends, router.Backend{ID: in.id, Addr: in.addr})
	}
	d.edge.Update(r)
	key := serviceKey(s.app, s.name)
	ep := router.Entrypoint{
		Name:    canaryName(s),
		Label:   key,
		Hosts:   d.hosts(s.app, stable),
		Origin:  router.Origin{Name: "stable", Route: key},
		Shares:  []router.Share{{Origin: router.Origin{Name: "canary", Route: canaryRoute(s)}, Weight: router.PercentToWeight(c.percent)}},
		ShiftID: "r" + strconv.Itoa(c.rev.number),
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
		o := router.Origin{Name: pr.Service, Route: serviceKey(s.app, pr.Service)}
		ep.Routes = append(ep.Routes, router.EntrypointRoute{Prefix: pr.Path, Origin: &o})
	}
	return d.edge.SetEntrypoint(ep)
}

// unpublishCanary gives the service's hosts back to its own route.
func (d *Daemon) unpublishCanary(s *service) {
	d.edge.RemoveEntrypoint(canaryName(s))
	d.edge.Remove(canaryRoute(s))
}

// promote moves all of the service's traffic to its canary, then drains and
// stops the previous revision, as a deploy's switch does. The caller holds
// s busy.
func (d *Daemon) promote(ctx context.Context, s *service, out progress) (int, error) {
	s.mu.Lock()
	c := s.canary
	s.canary = nil
	s.mu.Unlock()
	if c == nil {
		return 0, fmt.Errorf("%w: %s has no canary to promote; start one with \"berth deploy --canary PERCENT %s\"", ErrInvalid, s.name, s.name)
	}
	out.phase(phaseHealthy, "%s: promoting canary revision %d (%v%% of the traffic for %s)", s.name, c.rev.number, c.percent, time.Since(c.since).Round(time.Second))
	// switchTo publishes the canary's instances on the service's route;
	// until the canary's split is removed both of its sides reach them.
	err := d.switchTo(ctx, s, c.rev, c.instances, true, out, func() { d.unpublishCanary(s) })
	if err != nil {
		return 0, err
	}
	return c.rev.number, nil
}

// abortCanary removes the service's canary, if it has one, and gives all
// traffic back to the serving revision. It reports whether there was one.
func (d *Daemon) abortCanary(ctx context.Context, s *service, why string) bool {
	s.mu.Lock()
	c := s.canary
	s.canary = nil
	cur := s.rev
	s.mu.Unlock()
	if c == nil {
		return false
	}
	d.unpublishCanary(s)
	d.drainAndStop(ctx, s, c.instances, true)
	if err := d.setRevisionStatus(ctx, s, c.rev.number, "failed", "canary rolled back: "+why); err != nil {
		d.log.Warn("record canary rollback", "service", s.name, "err", err)
	}
	d.event(s.app, s.name, "canary-rolled-back", fmt.Sprintf("canary revision %d rolled back: %s; revision %d keeps all traffic", c.rev.number, why, cur))
	return true
}

// onCanaryTrip rolls a canary back when its guard trips (the edge already
// sends it nothing).
func (d *Daemon) onCanaryTrip(t router.GuardTrip) {
	app, name, ok := strings.Cut(strings.TrimPrefix(t.Entrypoint, canaryPrefix), "/")
	if !ok {
		return
	}
	s := d.lookupService(app, name)
	if s == nil {
		return
	}
	s.mu.Lock()
	match := s.canary != nil && "r"+strconv.Itoa(s.canary.rev.number) == t.ID
	s.mu.Unlock()
	if match {
		d.abortCanary(d.ctx, s, "the guard saw "+traffic.GuardReason(t))
	}
}

// promoteDeploy is `berth deploy --promote [SERVICE...]`: every named
// service (or every one with a canary) takes its canary.
func (d *Daemon) promoteDeploy(ctx context.Context, sp *spec.Spec, req api.DeployRequest, out progress) api.Message {
	var ss []*service
	if len(req.Services) > 0 {
		for _, n := range req.Services {
			s := d.lookupService(sp.App, n)
			if s == nil {
				return failure(fmt.Errorf("%w: app %s has no service %q", ErrNotFound, sp.App, n), nil)
			}
			ss = append(ss, s)
		}
	} else {
		for _, s := range d.appServices(sp.App) {
			s.mu.Lock()
			has := s.canary != nil
			s.mu.Unlock()
			if has {
				ss = append(ss, s)
			}
		}
		if len(ss) == 0 {
			return failure(fmt.Errorf("%w: no service of %s has a canary to promote", ErrInvalid, sp.App), nil)
		}
	}
	if err := acquire("promote", ss...); err != nil {
		return failure(err, nil)
	}
	defer release(ss...)
	var deployed []api.Deploy
	for _, s := range ss {
		rev, err := d.promote(ctx, s, out)
		if err != nil {
			res := failure(fmt.Errorf("promote of %s failed: %w", s.name, err), nil)
			res.Deployed = deployed
			return res
		}
		s.mu.Lock()
		urls := d.urls(s.app, s.spec)
		s.mu.Unlock()
		deployed = append(deployed, api.Deploy{Service: s.name, Revision: rev, URLs: urls})
	}
	return api.Message{Kind: api.KindResult, Time: time.Now(), OK: true, Deployed: deployed}
}

// dropAppCanaries forgets the canaries of an app being destroyed.
func (d *Daemon) dropAppCanaries(app string) {
	for _, s := range d.appServices(app) {
		s.mu.Lock()
		c := s.canary
		s.canary = nil
		s.mu.Unlock()
		if c != nil {
			d.unpublishCanary(s)
		}
	}
}
