package controlplane

// The control plane's side of the autoscaler (internal/controlplane/autoscale):
// each service as an autoscale.Service (autoService), what the autoscaler
// reads of it and the actions it asks of it. Starting instances, parking
// and waking them (wake.go) stay here, with the instances they start.

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/autoscale"
)

// AutoscaleConfig tunes the autoscaler. Zero fields take the defaults
// (autoscale.Tuning).
type AutoscaleConfig = autoscale.Tuning

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

// newAutoscaler wires the autoscaler to the daemon: the router's load, the
// services, and a tick's panic to the log.
func newAutoscaler(d *Daemon) *autoscale.Autoscaler {
	return autoscale.New(autoscale.Config{
		Tuning: d.cfg.Autoscale,
		Load:   d.edge,
		Services: func() []autoscale.Service {
			ss := d.appServices("")
			as := make([]autoscale.Service, len(ss))
			for i, s := range ss {
				as[i] = autoService{d: d, s: s}
			}
			return as
		},
		Panicked: func(what string, v any) { logPanic(d.log, v, what) },
	})
}

// autoService is a service as the autoscaler sees it (autoscale.Service),
// and the actions on its instances the autoscaler and the edge set off:
// scale out (scaleOut) and in (drainAndPark), park and unpark, wake from
// zero (wake.go).
type autoService struct {
	d *Daemon
	s *service
}

var _ autoscale.Service = autoService{}

func (a autoService) Route() string { return serviceKey(a.s.app, a.s.name) }

func (a autoService) Tend(ctx context.Context, now time.Time) {
	a.tendParked(ctx, a.d.autoscaler.Tuning(), now)
}

func (a autoService) Observe(restart func(rev int) bool) (autoscale.State, bool) {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	sp, rev := s.spec, s.rev
	if sp == nil || sp.Scale == nil || sp.Port == 0 || rev == 0 {
		return autoscale.State{}, false
	}
	if restart(rev) {
		s.auto.on, s.auto.n = true, len(s.instances)+s.pending
	}
	st := autoscale.State{
		Rev: rev, Scale: *sp.Scale, Current: s.desiredCount(),
		Frozen: s.busy != "" || s.paused, WokeAt: s.auto.wokeAt,
		Instances: make([]string, 0, len(s.instances)),
	}
	for _, in := range s.instances {
		st.Instances = append(st.Instances, in.id)
		if in.state == stateHealthy {
			st.Ready++
		}
	}
	return st, true
}

func (a autoService) Record(p autoscale.Plan) {
	s := a.s
	s.mu.Lock()
	s.auto.stable, s.auto.panic, s.auto.panicking = p.Stable, p.Panic, p.Panicking
	s.mu.Unlock()
}

// Scale moves a service of revision rev from current to p.N instances: new
// ones start in the background and join when healthy; surplus ones leave
// the edge now, then drain and park. A service that moved on (a new
// revision; a deploy, rollback or pause owns it) is left alone.
func (a autoService) Scale(ctx context.Context, rev, current int, p autoscale.Plan) {
	d, s := a.d, a.s
	s.mu.Lock()
	if s.rev != rev || s.busy != "" || s.paused || s.spec == nil || s.spec.Scale == nil {
		s.mu.Unlock()
		return
	}
	s.auto.on, s.auto.n = true, p.N
	rv := revision{number: s.rev, spec: s.spec, image: s.image}
	var surplus []*instance
	if start := p.N - len(s.instances) - s.pending; start > 0 {
		s.pending += start
		for range start {
			d.bg.Add(1)
			go func() { defer d.bg.Done(); defer d.contain("scale out", "service", s.name); a.scaleOut(rv, "") }()
		}
	}
	if n := len(s.instances); p.N < n {
		surplus = slices.Clone(s.instances[p.N:])
		s.instances = s.instances[:p.N:p.N]
		d.publish(s)
	}
	s.mu.Unlock()
	d.countAutoscale(s, current, p.N)
	d.event(s.app, s.name, "autoscale", p.Why)
	if len(surplus) > 0 {
		d.bg.Add(1)
		go func() {
			defer d.bg.Done()
			defer d.contain("scale in", "service", s.name)
			a.drainAndPark(context.WithoutCancel(ctx), surplus)
		}()
	}
}

// scaleOut brings one instance of rv up for the autoscaler, thawing or
// starting a parked one when there is one, and adds it to the edge once
// healthy, unless the service moved on meanwhile. The caller counted it in
// s.pending. why, when set, is recorded as an event once it serves.
func (a autoService) scaleOut(rv revision, why string) {
	d, s := a.d, a.s
	began := time.Now()
	ctx, cancel := context.WithTimeoutCause(d.ctx, d.cfg.DeployTimeout, fmt.Errorf("deploy timeout (%s) reached", d.cfg.DeployTimeout))
	defer cancel()
	in, how := a.unpark(ctx, rv)
	var err error
	if in == nil {
		how = "new container"
		var secrets map[string]string
		if secrets, err = d.store.SecretValues(ctx, s.app, s.name); err == nil {
			in, err = d.startInstance(ctx, s.app, rv, "", secrets)
		}
	}
	if !d.admitStarted(s, rv, in, err, "autoscaled instance failed to start", func(in *instance) { a.park(context.WithoutCancel(ctx), in) }) {
		return
	}
	if why != "" {
		d.event(s.app, s.name, "autoscale", fmt.Sprintf("%s: instance %s of revision %d serves after %s (%s)", why, in.id, rv.number, time.Since(began).Round(time.Millisecond), how))
	}
}

// drainAndPark waits (up to the drain time) for the requests in flight on
// instances the edge no longer routes to, then parks them.
func (a autoService) drainAndPark(ctx context.Context, old []*instance) {
	d, s := a.d, a.s
	d.drain(ctx, s, old)
	var wg sync.WaitGroup
	for _, in := range old {
		wg.Go(func() { a.park(ctx, in) })
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
