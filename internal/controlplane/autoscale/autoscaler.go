package autoscale

import (
	"context"
	"time"

	"github.com/berth-dev/berth/internal/router"
	"github.com/berth-dev/berth/internal/spec"
)

// Service is one service as the autoscaler sees it: what it reads of it
// and the actions it asks of it. The control plane implements it; its
// values are compared (a map key), so it is a pointer or a struct of them.
type Service interface {
	// Route is the service's route at the router, whose load it reads.
	Route() string
	// Tend is called at every tick before the service is observed: it
	// stops the parked instances that have been frozen for ColdAfter and
	// lets go of those of an older revision.
	Tend(ctx context.Context, now time.Time)
	// Observe reads the service's state at one instant. It returns false
	// when the service is not autoscaled (no scale:, no port, nothing
	// deployed). Before it reads the counts it calls restart with the
	// revision: when restart says true, a new watch begins, and the
	// service's autoscaled count starts from the instances it has.
	Observe(restart func(rev int) bool) (State, bool)
	// Record keeps the plan's observation, for status and metrics.
	Record(p Plan)
	// Scale moves the service of revision rev from current to p.N
	// instances (start some, or take some off the router, drain and park
	// them), unless the service moved on meanwhile, and records the
	// change (an "autoscale" event with p.Why, the metrics). It does not
	// block on the instances.
	Scale(ctx context.Context, rev, current int, p Plan)
}

// State is what Service.Observe read of a service.
type State struct {
	// Rev is the revision it runs.
	Rev int
	// Scale is its spec's scale:.
	Scale spec.Scale
	// Current is the instances it wants now; Ready its healthy ones.
	Current, Ready int
	// Instances are the IDs of its instances, whose request counts are
	// read at the router.
	Instances []string
	// Frozen: a deploy, rollback or pause owns the instance set.
	Frozen bool
	// WokeAt is when a held request last asked for an instance.
	WokeAt time.Time
}

// Config is what an Autoscaler is given. Every field is required.
type Config struct {
	Tuning Tuning
	// Load is the router's load, the only way the autoscaler sees traffic.
	Load router.LoadReader
	// Services are the services to watch (those without scale: too:
	// Observe tells them apart).
	Services func() []Service
	// Panicked is told of a tick's panic (its value v, recovered): the
	// loop goes on at the next tick.
	Panicked func(what string, v any)
}

// Autoscaler watches the services' load and scales them.
type Autoscaler struct {
	cfg Config
}

// New returns an Autoscaler; cfg.Tuning takes its defaults.
func New(cfg Config) *Autoscaler {
	cfg.Tuning = cfg.Tuning.WithDefaults()
	return &Autoscaler{cfg: cfg}
}

// Tuning is the autoscaler's tuning, with its defaults.
func (a *Autoscaler) Tuning() Tuning { return a.cfg.Tuning }

// Run runs the autoscaler, a tick every Tuning.Tick, until ctx ends.
func (a *Autoscaler) Run(ctx context.Context) {
	tick := time.NewTicker(a.cfg.Tuning.Tick)
	defer tick.Stop()
	scalers := map[Service]*scaler{}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			a.tick(ctx, scalers, now)
		}
	}
}

// tick observes every service with scale: once, decides its plan and
// applies it. scalers are the services' windows, kept from tick to tick.
func (a *Autoscaler) tick(ctx context.Context, scalers map[Service]*scaler, now time.Time) {
	defer func() {
		if v := recover(); v != nil {
			a.cfg.Panicked("autoscale", v)
		}
	}()
	live := map[Service]bool{}
	for _, s := range a.cfg.Services() {
		live[s] = true
		s.Tend(ctx, now)
		obs, sc, rev, ok := a.observe(s, scalers, now)
		if !ok {
			delete(scalers, s)
			continue
		}
		p := sc.decide(obs)
		if p.Action == Wait {
			continue // frozen: nothing to record, nothing to apply
		}
		s.Record(p)
		if p.N != obs.current {
			s.Scale(ctx, rev, obs.current, p)
		}
	}
	for s := range scalers {
		if !live[s] {
			delete(scalers, s)
		}
	}
}

// observe reads what the autoscaler decides on for s: its counts and
// spec, and its load, through the router contract only. It returns the
// service's scaler (a new one for a new revision, or after a start) and
// its revision, and false when s is not autoscaled.
func (a *Autoscaler) observe(s Service, scalers map[Service]*scaler, now time.Time) (observation, *scaler, int, bool) {
	var sc *scaler
	st, ok := s.Observe(func(rev int) bool {
		if sc = scalers[s]; sc != nil && sc.rev == rev {
			return false
		}
		// A new revision (or a start) starts a new watch, from the
		// instances it has: no scale down for a stable window.
		sc = newScaler(a.cfg.Tuning, now)
		sc.rev = rev
		scalers[s] = sc
		return true
	})
	if !ok {
		return observation{}, nil, 0, false
	}
	obs := observation{at: now, current: st.Current, ready: st.Ready, scale: st.Scale, frozen: st.Frozen, wokeAt: st.WokeAt}
	obs.load, obs.requests = readLoad(a.cfg.Load, s.Route(), st.Instances)
	return obs, sc, st.Rev, true
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
