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

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/spec"
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
	// panicThreshold is how many times the ready instances the panic
	// window must ask for to panic (Knative's 200%).
	panicThreshold = 2.0
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

// sample is one reading of a service's concurrency.
type sample struct {
	at time.Time
	c  float64
}

// scaler holds one service's windows and decides its instance count. It is
// owned by the autoscaler loop.
type scaler struct {
	cfg AutoscaleConfig
	// since is when the scaler started watching: it scales down only after
	// a full StableWindow of samples.
	since      time.Time
	samples    []sample // oldest first, within StableWindow
	lastActive time.Time
	// panicSince is when the panic window last asked for 2× (zero: calm);
	// maxPanic is the highest count decided while panicking.
	panicSince time.Time
	maxPanic   int
	// requests is each instance's request count at the last tick, to see
	// requests too short to be caught in flight by a sample.
	requests map[string]uint64
	// rev is the revision watched; a new one starts a new scaler.
	rev int
	// wants are the recent stable-window counts: a scale down goes only as
	// low as the highest of them over the panic window, so an average that
	// hovers on a boundary does not make the count flap.
	wants []sample
}

func newScaler(cfg AutoscaleConfig, now time.Time) *scaler {
	return &scaler{cfg: cfg, since: now, lastActive: now, requests: map[string]uint64{}}
}

// observe records the concurrency c seen at now; active says a request was
// seen since the last tick.
func (sc *scaler) observe(now time.Time, c float64, active bool) {
	if active || c > 0 {
		sc.lastActive = now
	}
	sc.samples = append(sc.samples, sample{at: now, c: c})
	cut := now.Add(-sc.cfg.StableWindow)
	i := 0
	for i < len(sc.samples) && !sc.samples[i].at.After(cut) {
		i++
	}
	sc.samples = slices.Delete(sc.samples, 0, i)
}

// average is the mean concurrency over the window ending at now.
func (sc *scaler) average(now time.Time, window time.Duration) float64 {
	cut := now.Add(-window)
	var sum float64
	n := 0
	for i := len(sc.samples) - 1; i >= 0 && sc.samples[i].at.After(cut); i-- {
		sum += sc.samples[i].c
		n++
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// decision is what the autoscaler wants, and why.
type decision struct {
	n             int
	stable, panic float64
	panicking     bool
	// why explains a change from the current count, for the event.
	why string
}

// decide returns the instance count for a service with scale sc.Scale that
// has ready healthy instances and currently wants current.
func (sc *scaler) decide(now time.Time, scale spec.Scale, ready, current int) decision {
	target := float64(scale.Concurrency)
	d := decision{stable: sc.average(now, sc.cfg.StableWindow), panic: sc.average(now, sc.cfg.PanicWindow)}
	wantStable := int(math.Ceil(d.stable / target))
	wantPanic := int(math.Ceil(d.panic / target))
	readyN := float64(max(ready, 1))

	over := d.panic/target >= panicThreshold*readyN
	switch {
	case over && sc.panicSince.IsZero():
		sc.panicSince, sc.maxPanic = now, current
	case over:
		sc.panicSince = now
	case !sc.panicSince.IsZero() && now.Sub(sc.panicSince) >= sc.cfg.StableWindow:
		sc.panicSince, sc.maxPanic = time.Time{}, 0
	}
	d.panicking = !sc.panicSince.IsZero()

	sc.wants = append(sc.wants, sample{at: now, c: float64(wantStable)})
	recent := 0
	for i := len(sc.wants) - 1; i >= 0; i-- {
		if now.Sub(sc.wants[i].at) >= sc.cfg.PanicWindow {
			sc.wants = slices.Delete(sc.wants, 0, i+1)
			break
		}
		recent = max(recent, int(sc.wants[i].c))
	}
	if d.panicking {
		d.n = max(wantPanic, sc.maxPanic, current)
		sc.maxPanic = d.n
	} else {
		d.n = wantStable
		if d.n < current {
			d.n = min(recent, current)
		}
	}
	idle := now.Sub(sc.lastActive) >= sc.cfg.StableWindow
	if d.n == 0 && !idle {
		d.n = 1 // short requests between samples still need an instance
	}
	d.n = min(max(d.n, scale.Min), scale.Max)
	if d.n < current && now.Sub(sc.since) < sc.cfg.StableWindow {
		d.n = current // not watched for a whole stable window yet
	}

	stableWin, panicWin := sc.cfg.StableWindow.String(), sc.cfg.PanicWindow.String()
	switch {
	case d.n > current && d.panicking:
		d.why = fmt.Sprintf("scale up from %d to %d: panic (the %s average asked for ≥ %.0f× the %d ready instance(s)): %s average %.1f in flight / target %d per instance = %.2f",
			current, d.n, panicWin, panicThreshold, ready, panicWin, d.panic, scale.Concurrency, d.panic/target)
	case d.n > current:
		d.why = fmt.Sprintf("scale up from %d to %d: %s average %.1f in flight / target %d per instance = %.2f", current, d.n, stableWin, d.stable, scale.Concurrency, d.stable/target)
	case d.n < current && d.n == 0:
		d.why = fmt.Sprintf("scale to zero from %d: no request for %s (%s average %.2f in flight)", current, stableWin, stableWin, d.stable)
	case d.n < current:
		d.why = fmt.Sprintf("scale down from %d to %d: %s average %.1f in flight / target %d per instance = %.2f (min %d)", current, d.n, stableWin, d.stable, scale.Concurrency, d.stable/target, scale.Min)
	}
	if d.n > current && d.n == scale.Max && (wantPanic > scale.Max || wantStable > scale.Max) {
		d.why += fmt.Sprintf(" (capped at max %d)", scale.Max)
	}
	return d
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

// autoscaleTick samples every service once and acts on its decision.
func (d *Daemon) autoscaleTick(ctx context.Context, cfg AutoscaleConfig, scalers map[*service]*scaler, now time.Time) {
	defer d.contain("autoscale")
	live := map[*service]bool{}
	for _, s := range d.appServices("") {
		live[s] = true
		d.tendParked(ctx, s, cfg, now)

		s.mu.Lock()
		sp, rev, busy, paused := s.spec, s.rev, s.busy, s.paused
		if sp == nil || sp.Scale == nil || sp.Port == 0 || rev == 0 {
			s.mu.Unlock()
			delete(scalers, s)
			continue
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
		current := s.desiredCount()
		ids := make([]string, 0, len(s.instances))
		ready := 0
		for _, in := range s.instances {
			ids = append(ids, in.id)
			if in.state == stateHealthy {
				ready++
			}
		}
		wokeAt := s.auto.wokeAt
		s.mu.Unlock()

		load := d.edge.Load(serviceKey(s.app, s.name))
		active := sc.sawRequests(d, ids) || load.Held > 0 || wokeAt.After(sc.lastActive)
		sc.observe(now, float64(load.InFlight+load.Held), active)
		if busy != "" || paused {
			continue // a deploy, rollback or pause owns the instance set
		}
		dec := sc.decide(now, *sp.Scale, ready, current)
		s.mu.Lock()
		s.auto.stable, s.auto.panic, s.auto.panicking = dec.stable, dec.panic, dec.panicking
		s.mu.Unlock()
		if dec.n != current {
			d.applyScale(ctx, s, rev, current, dec)
		}
	}
	for s := range scalers {
		if !live[s] {
			delete(scalers, s)
		}
	}
}

// sawRequests reports whether any instance answered a request since the
// last tick.
func (sc *scaler) sawRequests(d *Daemon, ids []string) bool {
	seen := false
	next := make(map[string]uint64, len(ids))
	for _, id := range ids {
		st, ok := d.edge.Stats(id)
		if !ok {
			continue
		}
		if st.Requests != sc.requests[id] {
			seen = seen || st.Requests > 0
		}
		next[id] = st.Requests
	}
	sc.requests = next
	return seen
}

// applyScale moves a service of revision rev from current to dec.n
// instances: new ones start in the background and join when healthy;
// surplus ones leave the edge now, then drain and park.
func (d *Daemon) applyScale(ctx context.Context, s *service, rev, current int, dec decision) {
	s.mu.Lock()
	if s.rev != rev || s.busy != "" || s.paused || s.spec == nil || s.spec.Scale == nil {
		s.mu.Unlock()
		return
	}
	s.auto.on, s.auto.n = true, dec.n
	rv := revision{number: s.rev, spec: s.spec, image: s.image}
	var surplus []*instance
	if start := dec.n - len(s.instances) - s.pending; start > 0 {
		s.pending += start
		for range start {
			d.bg.Add(1)
			go func() { defer d.bg.Done(); defer d.contain("scale out", "service", s.name); d.scaleOut(s, rv, "") }()
		}
	}
	if n := len(s.instances); dec.n < n {
		surplus = slices.Clone(s.instances[dec.n:])
		s.instances = s.instances[:dec.n:dec.n]
		d.publish(s)
	}
	s.mu.Unlock()
	d.countAutoscale(s, current, dec.n)
	d.event(s.app, s.name, "autoscale", dec.why)
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
