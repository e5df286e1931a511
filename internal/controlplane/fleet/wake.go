package fleet

// Scale to zero, the instances' side (the diagram is in the package doc of
// internal/controlplane/autoscale): a scaled-in instance is parked (park:
// frozen if the engine has runtime.Suspender, else stopped), brought back
// by scaleOut (unpark: thawed or restarted), stopped after ColdAfter and
// trimmed (tendParked, trimParked). While a service with min 0 has no
// instance the edge holds its requests (holdFor) and calls wake, which
// starts one.

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/berth-dev/berth/internal/controlplane/autoscale"
	"github.com/berth-dev/berth/internal/router"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
)

// parkedInstance is a scaled-in instance kept for a fast start.
type parkedInstance struct {
	in     *Instance
	frozen bool // false: stopped
	since  time.Time
}

// maxStoppedParked bounds the stopped containers a service keeps: one saves
// the create of the next start; more would only fill the disk.
const maxStoppedParked = 1

// holdFor is the edge's hold for a service that scales to zero: its
// requests wait for wake instead of getting 503. Call with s.mu held.
func (a autoService) holdFor() *router.Hold {
	f, s := a.f, a.s
	if s.spec == nil || s.spec.Scale == nil || s.spec.Scale.Min > 0 {
		return nil
	}
	return &router.Hold{Wake: func() { a.wake() }, Timeout: f.cfg.DeployTimeout, Max: router.DefaultMaxHeld}
}

// wake is called by the edge for each request held while s has no
// instance. It starts one unless one is already on its way. It never
// blocks.
func (a autoService) wake() {
	f, s := a.f, a.s
	if f.ctx.Err() != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.spec == nil || s.spec.Scale == nil || s.rev == 0 || s.paused || s.busy != "" {
		return
	}
	s.auto.wokeAt = time.Now()
	if len(s.instances)+s.pending > 0 {
		return
	}
	s.auto.on, s.auto.n = true, max(s.auto.n, 1)
	if s.crashes > 0 && time.Now().Before(s.lastCrash.Add(backoff(s.crashes))) {
		return // the reconciler starts it when the backoff ends
	}
	s.pending++
	rv := Revision{Number: s.rev, Spec: s.spec, Image: s.image}
	f.countAutoscale(s, 0, 1)
	f.bg.Add(1)
	go func() {
		defer f.bg.Done()
		defer f.contain("wake", "service", s.name)
		a.scaleOut(rv, "woke from zero for a waiting request")
	}()
}

// park keeps an instance that no longer serves (and no longer receives
// requests) for a fast start: frozen if the engine can, else stopped;
// beyond what is worth keeping, removed.
func (a autoService) park(ctx context.Context, in *Instance) {
	f, s := a.f, a.s
	cold := f.cfg.Autoscale.WithDefaults().ColdAfter < 0
	frozen := false
	// Only a lone container freezes; a pod with sidecars is
	// stopped and started as a whole.
	if su, ok := f.pods.(runtime.Suspender); ok && !cold && in.sidecars == nil {
		if err := su.Suspend(ctx, in.podID); err == nil {
			frozen = true
		} else {
			f.log.Warn("freeze instance; stopping it instead", "instance", in.id, "err", err)
		}
	}
	if !frozen {
		f.stopInstance(ctx, in)
	}
	s.mu.Lock()
	in.state = StateStopped
	if in.stopMonitor != nil {
		in.stopMonitor()
	}
	s.auto.parked = append(s.auto.parked, &parkedInstance{in: in, frozen: frozen, since: time.Now()})
	s.mu.Unlock()
	a.trimParked(ctx)
}

// unpark takes the best parked instance of rv (frozen before stopped,
// newest first), brings it back and waits until it is healthy. It returns
// nil when there is none, or it failed (then its container is gone).
func (a autoService) unpark(ctx context.Context, rv Revision) (*Instance, string) {
	f, s := a.f, a.s
	s.mu.Lock()
	var p *parkedInstance
	for i := len(s.auto.parked) - 1; i >= 0; i-- {
		c := s.auto.parked[i]
		if c.in.rev != rv.Number || slices.ContainsFunc(s.instances, func(in *Instance) bool { return in.podID == c.in.podID }) {
			continue
		}
		if p == nil || (c.frozen && !p.frozen) {
			p = c
		}
	}
	if p != nil {
		s.auto.parked = slices.DeleteFunc(s.auto.parked, func(c *parkedInstance) bool { return c == p })
	}
	s.mu.Unlock()
	if p == nil {
		return nil, ""
	}
	in, err := a.resumeParked(ctx, p, rv)
	if err != nil {
		f.log.Warn("parked instance did not come back; starting a new one", "instance", p.in.id, "err", err)
		f.RemoveInstance(context.WithoutCancel(ctx), p.in)
		return nil, ""
	}
	if p.frozen {
		return in, "thawed"
	}
	return in, "restarted"
}

func (a autoService) resumeParked(ctx context.Context, p *parkedInstance, rv Revision) (*Instance, error) {
	f, app := a.f, a.s.app
	su, ok := f.pods.(runtime.Suspender)
	if !p.frozen || !ok {
		return f.startInstance(ctx, app, rv, p.in.podID, nil)
	}
	pod, err := su.Resume(ctx, p.in.podID)
	if err != nil {
		return nil, err
	}
	in := p.in
	in.addr = pod.Addr
	// After the thaw: the reconciler leaves alone instances that started
	// after its listing, which may have seen this one frozen.
	in.state, in.startedAt, in.stopMonitor = StateStarting, time.Now(), nil
	if err := f.waitHealthy(ctx, in, rv.Spec); err != nil {
		return nil, err
	}
	in.state, in.healthyAt = StateHealthy, time.Now()
	return in, nil
}

// tendParked stops frozen instances that have been idle for ColdAfter (or
// whose service was paused), and forgets those of an older revision.
func (a autoService) tendParked(ctx context.Context, cfg autoscale.Tuning, now time.Time) {
	f, s := a.f, a.s
	s.mu.Lock()
	var cool, old []*parkedInstance
	for _, p := range s.auto.parked {
		switch {
		case p.in.rev != s.rev:
			// The previous revision's containers are its rollback target:
			// the deploy keeps or removes them. Only unfreeze them.
			if p.frozen {
				old = append(old, p)
			}
		case p.frozen && (s.paused || now.Sub(p.since) >= cfg.ColdAfter):
			cool = append(cool, p)
		}
	}
	// Taken out while they stop, so no unpark picks one meanwhile.
	s.auto.parked = slices.DeleteFunc(s.auto.parked, func(p *parkedInstance) bool {
		return p.in.rev != s.rev || slices.Contains(cool, p)
	})
	s.mu.Unlock()
	if len(cool)+len(old) == 0 {
		return
	}
	f.bg.Add(1)
	go func() {
		defer f.bg.Done()
		defer f.contain("park")
		for _, p := range append(cool, old...) {
			// Stop needs no thaw: the engine kills a frozen container.
			if err := f.pods.StopPod(ctx, p.in.podID, spec.DefaultStopGrace); err != nil && !errors.Is(err, runtime.ErrNotFound) {
				f.log.Warn("stop parked instance", "instance", p.in.id, "err", err)
			}
		}
		s.mu.Lock()
		for _, p := range cool {
			if p.in.rev == s.rev {
				p.frozen = false
				s.auto.parked = append(s.auto.parked, p)
			}
		}
		s.mu.Unlock()
		a.trimParked(ctx)
	}()
}

// trimParked removes the stopped parked containers beyond
// maxStoppedParked, oldest first.
func (a autoService) trimParked(ctx context.Context) {
	f, s := a.f, a.s
	s.mu.Lock()
	var drop []*parkedInstance
	stopped := 0
	for i := len(s.auto.parked) - 1; i >= 0; i-- {
		p := s.auto.parked[i]
		if p.frozen {
			continue
		}
		if stopped++; stopped > maxStoppedParked {
			drop = append(drop, p)
		}
	}
	s.auto.parked = slices.DeleteFunc(s.auto.parked, func(p *parkedInstance) bool { return slices.Contains(drop, p) })
	s.mu.Unlock()
	for _, p := range drop {
		f.RemoveInstance(ctx, p.in)
	}
}
