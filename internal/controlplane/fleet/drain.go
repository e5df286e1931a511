package fleet

// Taking instances out of service: off the router, their requests in
// flight finished (drain), off their name on the app network
// (deregister), then stopped, removed, or, for the previous revision of a
// lone HTTP service, frozen for RollbackWarm as the rollback target.

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
)

// DrainAndStop drains old instances, which the edge no longer routes to
// (see drain: their requests through the edge, then those by name); then
// it stops their containers (kept for a rollback or resume) or, with
// remove, removes them.
func (f *Fleet) DrainAndStop(ctx context.Context, s *Service, old []*Instance, remove bool) {
	f.drain(ctx, s, old)
	var wg sync.WaitGroup
	for _, in := range old {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer f.contain("stop instance", "instance", in.id)
			if remove {
				f.RemoveInstance(ctx, in)
			} else {
				f.stopInstance(ctx, in)
			}
		}()
	}
	wg.Wait()
	s.mu.Lock()
	for _, in := range old {
		in.state = StateStopped
	}
	s.mu.Unlock()
}

// drain takes instances out of service and waits for their in-flight
// requests: those through the edge, which no longer routes to them (up to
// the drain time), then those of the app's containers that call them by
// name (deregister). Only then may they stop.
func (f *Fleet) drain(ctx context.Context, s *Service, old []*Instance) {
	ids := make([]string, len(old))
	s.mu.Lock()
	for i, in := range old {
		ids[i] = in.id
		in.state = StateDraining
		if in.stopMonitor != nil {
			in.stopMonitor()
		}
	}
	s.mu.Unlock()
	f.waitDrained(ctx, s, ids)
	f.deregister(ctx, s, old)
}

// deregisterDelay is how long an instance taken off its name keeps
// serving before it stops. The app's containers call each other by name
// (http://api:8080): stopped while the name still gave its address, an
// instance would leave a caller's connection unanswered until the
// caller's timeout (the engine takes the name away only after the
// container's network is gone). Off its name first, it is called no more,
// and what was on its way to it arrives within the delay: a request that
// looked the name up just before, and a connection attempt the engine's
// reconnect (on Docker, see its engine's Deregister) made wait the SYN's one-second
// retransmission timeout. Requests still running after it are the app's
// own shutdown's to finish (SIGTERM).
const deregisterDelay = 1500 * time.Millisecond

// deregister takes instances that no longer receive edge traffic off
// their name on the app network, then waits deregisterDelay. It comes after
// the edge's drain: leaving the name takes the published port away, and
// with it what is still in flight through the edge past the drain time.
func (f *Fleet) deregister(ctx context.Context, s *Service, old []*Instance) {
	dr, ok := f.pods.(runtime.Deregisterer)
	if !ok || len(old) == 0 {
		return
	}
	var (
		wg     sync.WaitGroup
		listed atomic.Bool
	)
	for _, in := range old {
		wg.Go(func() {
			was, err := dr.Deregister(ctx, in.podID)
			if err != nil && !errors.Is(err, runtime.ErrNotFound) {
				f.log.Warn("take an instance off its name", "service", s.name, "instance", in.id, "err", err)
			}
			if was {
				listed.Store(true)
			}
		})
	}
	wg.Wait()
	if !listed.Load() {
		return
	}
	t := time.NewTimer(deregisterDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (f *Fleet) waitDrained(ctx context.Context, s *Service, ids []string) {
	dctx, cancel := context.WithTimeoutCause(ctx, f.drainTime(s), errors.New("drain time reached"))
	defer cancel()
	if err := f.edge.WaitIdle(dctx, ids); err != nil {
		f.log.Warn("drain ended with requests in flight", "service", s.name, "err", err)
	}
}

// KeepRollbackTarget drains the instances a deploy or rollback replaced and keeps
// them as the rollback target. For RollbackWarm after the switch a lone HTTP
// container is frozen (cgroup freezer: no CPU, nothing served, memory kept,
// off the app network), so a rollback in that window is a thaw instead of a
// container start; then, or at once for workers and sidecar groups, it is
// stopped. Workers are never frozen: a background job frozen mid-work could
// hold locks. Nor is a service of an app with others: one of them calling it
// by name may hold kept-alive connections to it, which a stop closes (the
// app shuts down) but a freeze would leave hanging.
func (f *Fleet) KeepRollbackTarget(ctx context.Context, s *Service, old []*Instance) {
	su, canFreeze := f.pods.(runtime.Suspender)
	warm := f.cfg.RollbackWarm
	lone := len(f.Services(s.app)) == 1
	var freeze, stop []*Instance
	for _, in := range old {
		if canFreeze && warm > 0 && lone && in.sidecars == nil && s.spec != nil && s.spec.Port != 0 {
			freeze = append(freeze, in)
		} else {
			stop = append(stop, in)
		}
	}
	if len(stop) > 0 {
		f.DrainAndStop(ctx, s, stop, false)
	}
	if len(freeze) == 0 {
		return
	}
	f.drain(ctx, s, freeze)
	for _, in := range freeze {
		if err := su.Suspend(ctx, in.podID); err != nil {
			f.log.Warn("freeze the previous revision; stopping it instead", "instance", in.id, "err", err)
			f.stopInstance(ctx, in)
			continue
		}
		time.AfterFunc(warm, func() { f.coolRollbackTarget(s, in) })
	}
	s.mu.Lock()
	for _, in := range freeze {
		in.state = StateStopped
	}
	s.mu.Unlock()
}

// coolRollbackTarget stops a frozen rollback target once its warm window
// has passed, unless a rollback brought it back to serve meanwhile.
func (f *Fleet) coolRollbackTarget(s *Service, in *Instance) {
	s.mu.Lock()
	serving := slices.ContainsFunc(s.instances, func(o *Instance) bool { return o.podID == in.podID })
	s.mu.Unlock()
	if serving || f.ctx.Err() != nil {
		return
	}
	p, err := f.pods.InspectPod(f.ctx, in.podID)
	if err != nil || p.State != runtime.PodSuspended {
		return
	}
	if err := f.pods.StopPod(f.ctx, in.podID, spec.DefaultStopGrace); err != nil && !errors.Is(err, runtime.ErrNotFound) {
		f.log.Warn("stop the previous revision", "instance", in.id, "err", err)
	}
}

// drainTime is how long a service's old instances may finish their
// requests: the spec's drain, else the daemon's.
func (f *Fleet) drainTime(s *Service) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.spec != nil && s.spec.Drain > 0 {
		return s.spec.Drain
	}
	return f.cfg.Drain
}
