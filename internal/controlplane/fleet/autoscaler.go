package fleet

// The fleet's side of the autoscaler (internal/controlplane/autoscale):
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
func (s *Service) autoDesired() (int, bool) {
	if s.spec == nil || s.spec.Scale == nil || !s.auto.on {
		return 0, false
	}
	return min(max(s.auto.n, s.spec.Scale.Min), s.spec.Scale.Max), true
}

// AutoscaleServices are the services as the autoscaler
// (internal/controlplane/autoscale) sees them, with the actions it asks of
// them.
func (f *Fleet) AutoscaleServices() []autoscale.Service {
	ss := f.Services("")
	as := make([]autoscale.Service, len(ss))
	for i, s := range ss {
		as[i] = autoService{f: f, s: s}
	}
	return as
}

// countAutoscale counts an autoscaler decision taking s from one count to
// another.
func (f *Fleet) countAutoscale(s *Service, from, to int) {
	if f.cfg.CountAutoscale != nil {
		f.cfg.CountAutoscale(s.app, s.name, from, to)
	}
}

// autoService is a service as the autoscaler sees it (autoscale.Service),
// and the actions on its instances the autoscaler and the edge set off:
// scale out (scaleOut) and in (drainAndPark), park and unpark, wake from
// zero (wake.go).
type autoService struct {
	f *Fleet
	s *Service
}

var _ autoscale.Service = autoService{}

func (a autoService) Route() string { return serviceKey(a.s.app, a.s.name) }

func (a autoService) Tend(ctx context.Context, now time.Time) {
	a.tendParked(ctx, a.f.cfg.Autoscale.WithDefaults(), now)
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
		if in.state == StateHealthy {
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
	f, s := a.f, a.s
	s.mu.Lock()
	if s.rev != rev || s.busy != "" || s.paused || s.spec == nil || s.spec.Scale == nil {
		s.mu.Unlock()
		return
	}
	s.auto.on, s.auto.n = true, p.N
	rv := Revision{Number: s.rev, Spec: s.spec, Image: s.image}
	var surplus []*Instance
	if start := p.N - len(s.instances) - s.pending; start > 0 {
		s.pending += start
		for range start {
			f.bg.Add(1)
			go func() { defer f.bg.Done(); defer f.contain("scale out", "service", s.name); a.scaleOut(rv, "") }()
		}
	}
	if n := len(s.instances); p.N < n {
		surplus = slices.Clone(s.instances[p.N:])
		s.instances = s.instances[:p.N:p.N]
		f.publish(s)
	}
	s.mu.Unlock()
	f.countAutoscale(s, current, p.N)
	f.event(s.app, s.name, "autoscale", p.Why)
	if len(surplus) > 0 {
		f.bg.Add(1)
		go func() {
			defer f.bg.Done()
			defer f.contain("scale in", "service", s.name)
			a.drainAndPark(context.WithoutCancel(ctx), surplus)
		}()
	}
}

// scaleOut brings one instance of rv up for the autoscaler, thawing or
// starting a parked one when there is one, and adds it to the edge once
// healthy, unless the service moved on meanwhile. The caller counted it in
// s.pending. why, when set, is recorded as an event once it serves.
func (a autoService) scaleOut(rv Revision, why string) {
	f, s := a.f, a.s
	began := time.Now()
	ctx, cancel := context.WithTimeoutCause(f.ctx, f.cfg.DeployTimeout, fmt.Errorf("deploy timeout (%s) reached", f.cfg.DeployTimeout))
	defer cancel()
	in, how := a.unpark(ctx, rv)
	var err error
	if in == nil {
		how = "new container"
		var secrets map[string]string
		if secrets, err = f.store.SecretValues(ctx, s.app, s.name); err == nil {
			in, err = f.startInstance(ctx, s.app, rv, "", secrets)
		}
	}
	if !f.admitStarted(s, rv, in, err, "autoscaled instance failed to start", func(in *Instance) { a.park(context.WithoutCancel(ctx), in) }) {
		return
	}
	if why != "" {
		f.event(s.app, s.name, "autoscale", fmt.Sprintf("%s: instance %s of revision %d serves after %s (%s)", why, in.id, rv.Number, time.Since(began).Round(time.Millisecond), how))
	}
}

// drainAndPark waits (up to the drain time) for the requests in flight on
// instances the edge no longer routes to, then parks them.
func (a autoService) drainAndPark(ctx context.Context, old []*Instance) {
	f, s := a.f, a.s
	f.drain(ctx, s, old)
	var wg sync.WaitGroup
	for _, in := range old {
		wg.Go(func() { a.park(ctx, in) })
	}
	wg.Wait()
}

// autoscaleStatus is the autoscaler's view for status. Call with mu held.
func (s *Service) autoscaleStatus() *api.AutoscaleStatus {
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
