package controlplane

// The autoscaler keeps the in-flight requests per instance of every service
// with `scale:` near its `concurrency`, as Knative's KPA does:
//
//	every Tick:  c = requests in flight at the edge + requests held for a wake
//	             stable = average of c over StableWindow (60s)
//	             panic  = average of c over PanicWindow  (6s)
//
//	                      panic/target >= 2 × ready instances
//	          ┌────────┐ ─────────────────────────────────────▶ ┌──────────┐
//	          │ stable │                                        │ panicking│ desired = max(ceil(panic/target), desired)
//	          └────────┘ ◀───────────────────────────────────── └──────────┘ never scales down
//	desired = ceil(stable/target)   no panic for StableWindow
//
// then desired is clamped to [min, max]; it goes down only once the
// autoscaler has watched for a whole StableWindow, only as low as the
// highest stable count of the last PanicWindow (no flapping on a boundary),
// and to zero (min 0) only when no request arrived for a whole StableWindow. Instances join the edge
// only when healthy, leave it before they drain, and are parked (wake.go)
// for a fast start. Every change is an "autoscale" event with its numbers.
//
// A tick has three steps, decisions apart from effects:
//
//	observeScale (the service's counts; its load through the router contract only)
//	  ──▶ scaler.decide (scaler.go: pure, the rules above)
//	  ──▶ applyPlan (status, then applyScale: start, or drain and park)

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/router"
)

// AutoscaleConfig tunes the autoscaler. Zero fields take the defaults.
type AutoscaleConfig struct {
	// Tick is how often in-flight requests are sampled and decisions made
	// (default 250ms).
	Tick time.Duration
	// StableWindow is the average that scales down, and the idle time after
	// which a service with min 0 scales to zero (default 60s).
	StableWindow time.Duration
	// PanicWindow is the short average that scales up at once when it asks
	// for at least twice the ready instances (default 6s).
	PanicWindow time.Duration
	// ColdAfter is how long a scaled-in instance stays frozen (no CPU,
	// memory kept, thawed in milliseconds) before it is stopped (default
	// 15m). Negative: stop at once.
	ColdAfter time.Duration
}

// Autoscaler defaults, Knative's KPA windows.
const (
	DefaultAutoscaleTick = 250 * time.Millisecond
	DefaultStableWindow  = 60 * time.Second
	DefaultPanicWindow   = 6 * time.Second
	DefaultColdAfter     = 15 * time.Minute
)

func (c AutoscaleConfig) withDefaults() AutoscaleConfig {
	if c.Tick <= 0 {
		c.Tick = DefaultAutoscaleTick
	}
	if c.StableWindow <= 0 {
		c.StableWindow = DefaultStableWindow
	}
	if c.PanicWindow <= 0 {
		c.PanicWindow = DefaultPanicWindow
	}
	c.PanicWindow = min(c.PanicWindow, c.StableWindow)
	if c.ColdAfter == 0 {
		c.ColdAfter = DefaultColdAfter
	}
	return c
}

// autoState is a service's autoscaling state, guarded by service.mu.
type autoState struct {
	// on says n is set: until the autoscaler first decides, the service
	// runs its spec's count (scale.min, at least 1).
	on bool
	n  int
	// parked are scaled-in instances kept for a fast start (wake.go).
	parked []*parkedInstance
	// wokeAt is when a held request last asked for an instance.
	wokeAt time.Time
	// The last observation, for status and metrics.
	stable, panic float64
	panicking     bool
}

// autoDesired is the autoscaler's count for a service with scale:, clamped
// to the current spec's bounds. Call with mu held.
func (s *service) autoDesired() (int, bool) {
	if s.spec == nil || s.spec.Scale == nil || !s.auto.on {
		return 0, false
	}
	return min(max(s.auto.n, s.spec.Scale.Min), s.spec.Scale.Max), true
}

// autoscaleLoop runs the autoscaler and the traffic sampler (traffic.go)
// until ctx ends.
func (d *Daemon) autoscaleLoop(ctx context.Context) {
	cfg := d.cfg.Autoscale.withDefaults()
	tick := time.NewTicker(cfg.Tick)
	defer tick.Stop()
	sampleTick := time.NewTicker(trafficEvery)
	defer sampleTick.Stop()
	scalers := map[*service]*scaler{}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			d.autoscaleTick(ctx, cfg, scalers, now)
		case now := <-sampleTick.C:
			d.sampleTraffic(now)
		}
	}
}

// autoscaleTick observes every service with scale: once, decides its
// plan (scaler.go) and applies it.
func (d *Daemon) autoscaleTick(ctx context.Context, cfg AutoscaleConfig, scalers map[*service]*scaler, now time.Time) {
	defer d.contain("autoscale")
	live := map[*service]bool{}
	for _, s := range d.appServices("") {
		live[s] = true
		d.tendParked(ctx, s, cfg, now)
		obs, sc, rev, ok := d.observeScale(s, cfg, scalers, now)
		if !ok {
			delete(scalers, s)
			continue
		}
		d.applyPlan(ctx, s, rev, obs.current, sc.decide(obs))
	}
	for s := range scalers {
		if !live[s] {
			delete(scalers, s)
		}
	}
}

// observeScale reads what the autoscaler decides on for s: its counts and
// spec, and its load, through the router contract only. It returns the
// service's scaler (a new one for a new revision, or after a daemon start)
// and its revision, and false when s is not autoscaled.
func (d *Daemon) observeScale(s *service, cfg AutoscaleConfig, scalers map[*service]*scaler, now time.Time) (observation, *scaler, int, bool) {
	s.mu.Lock()
	sp, rev, busy, paused := s.spec, s.rev, s.busy, s.paused
	if sp == nil || sp.Scale == nil || sp.Port == 0 || rev == 0 {
		s.mu.Unlock()
		return observation{}, nil, 0, false
	}
	sc := scalers[s]
	if sc == nil || sc.rev != rev {
		// A new revision (or a daemon start) starts a new watch, from
		// the instances it has: no scale down for a stable window.
		sc = newScaler(cfg, now)
		sc.rev = rev
		scalers[s] = sc
		s.auto.on, s.auto.n = true, len(s.instances)+s.pending
	}
	obs := observation{at: now, current: s.desiredCount(), scale: *sp.Scale, frozen: busy != "" || paused, wokeAt: s.auto.wokeAt}
	ids := make([]string, 0, len(s.instances))
	for _, in := range s.instances {
		ids = append(ids, in.id)
		if in.state == stateHealthy {
			obs.ready++
		}
	}
	s.mu.Unlock()
	obs.load, obs.requests = readLoad(d.edge, serviceKey(s.app, s.name), ids)
	return obs, sc, rev, true
}

// readLoad reads a route's load and its instances' request counts (those
// the router knows) from the router.
func readLoad(r router.LoadReader, key string, ids []string) (router.RouteLoad, map[string]uint64) {
	requests := make(map[string]uint64, len(ids))
	for _, id := range ids {
		if st, ok := r.Stats(id); ok {
			requests[id] = st.Requests
		}
	}
	return r.Load(key), requests
}

// applyPlan records the plan's observation for status and metrics, and
// changes the service's instance count when the plan does. A frozen
// service (a deploy, rollback or pause owns it) is left alone.
func (d *Daemon) applyPlan(ctx context.Context, s *service, rev, current int, p scalePlan) {
	if p.action == scaleWait {
		return
	}
	s.mu.Lock()
	s.auto.stable, s.auto.panic, s.auto.panicking = p.stable, p.panic, p.panicking
	s.mu.Unlock()
	if p.n != current {
		d.applyScale(ctx, s, rev, current, p)
	}
}

// applyScale moves a service of revision rev from current to p.n
// instances: new ones start in the background and join when healthy;
// surplus ones leave the edge now, then drain and park.
func (d *Daemon) applyScale(ctx context.Context, s *service, rev, current int, p scalePlan) {
	s.mu.Lock()
	if s.rev != rev || s.busy != "" || s.paused || s.spec == nil || s.spec.Scale == nil {
		s.mu.Unlock()
		return
	}
	s.auto.on, s.auto.n = true, p.n
	rv := revision{number: s.rev, spec: s.spec, image: s.image}
	var surplus []*instance
	if start := p.n - len(s.instances) - s.pending; start > 0 {
		s.pending += start
		for range start {
			d.bg.Add(1)
			go func() { defer d.bg.Done(); defer d.contain("scale out", "service", s.name); d.scaleOut(s, rv, "") }()
		}
	}
	if n := len(s.instances); p.n < n {
		surplus = slices.Clone(s.instances[p.n:])
		s.instances = s.instances[:p.n:p.n]
		d.publish(s)
	}
	s.mu.Unlock()
	d.countAutoscale(s, current, p.n)
	d.event(s.app, s.name, "autoscale", p.why)
	if len(surplus) > 0 {
		d.bg.Add(1)
		go func() {
			defer d.bg.Done()
			defer d.contain("scale in", "service", s.name)
			d.drainAndPark(context.WithoutCancel(ctx), s, surplus)
		}()
	}
}

// scaleOut brings one instance of rv up for the autoscaler, thawing or
// starting a parked one when there is one, and adds it to the edge once
// healthy, unless the service moved on meanwhile. The caller counted it in
// s.pending. why, when set, is recorded as an event once it serves.
func (d *Daemon) scaleOut(s *service, rv revision, why string) {
	began := time.Now()
	ctx, cancel := context.WithTimeoutCause(d.ctx, d.cfg.DeployTimeout, fmt.Errorf("deploy timeout (%s) reached", d.cfg.DeployTimeout))
	defer cancel()
	in, how := d.unpark(ctx, s, rv)
	var err error
	if in == nil {
		how = "new container"
		var secrets map[string]string
		if secrets, err = d.store.SecretValues(ctx, s.app, s.name); err == nil {
			in, err = d.startInstance(ctx, s.app, rv, "", secrets)
		}
	}
	if !d.admitStarted(s, rv, in, err, "autoscaled instance failed to start", func(in *instance) { d.park(context.WithoutCancel(ctx), s, in) }) {
		return
	}
	if why != "" {
		d.event(s.app, s.name, "autoscale", fmt.Sprintf("%s: instance %s of revision %d serves after %s (%s)", why, in.id, rv.number, time.Since(began).Round(time.Millisecond), how))
	}
}

// drainAndPark waits (up to the drain time) for the requests in flight on
// instances the edge no longer routes to, then parks them.
func (d *Daemon) drainAndPark(ctx context.Context, s *service, old []*instance) {
	d.drain(ctx, s, old)
	var wg sync.WaitGroup
	for _, in := range old {
		wg.Go(func() { d.park(ctx, s, in) })
	}
	wg.Wait()
}

// autoscaleStatus is the autoscaler's view for status. Call with mu held.
func (s *service) autoscaleStatus() *api.AutoscaleStatus {
	if s.spec == nil || s.spec.Scale == nil {
		return nil
	}
	sc := s.spec.Scale
	return &api.AutoscaleStatus{
		Min: sc.Min, Max: sc.Max, Concurrency: sc.Concurrency,
		StableAverage: round2(s.auto.stable), PanicAverage: round2(s.auto.panic),
		Panicking: s.auto.panicking, Parked: len(s.auto.parked),
	}
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }
