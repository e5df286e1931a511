package fleet

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
)

// Crash-loop backoff: the first crash is replaced at once, later ones wait
// 1s, 2s, 4s ... up to maxBackoff. A service that stays healthy for
// crashReset forgets its crashes.
const (
	maxBackoff  = 60 * time.Second
	crashReset  = 60 * time.Second
	resyncEvery = 2 * time.Second
)

func backoff(crashes int) time.Duration {
	if crashes <= 1 {
		return 0
	}
	b := time.Second << min(crashes-2, 6)
	return min(b, maxBackoff)
}

// ReconcileLoop keeps every service at its desired count: engine events
// make it react at once, a periodic resync catches anything missed.
func (f *Fleet) ReconcileLoop(ctx context.Context) {
	events, errs := f.pods.Events(ctx)
	tick := time.NewTicker(resyncEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if s := f.Lookup(ev.Labels[runtime.LabelApp], ev.Labels[runtime.LabelService]); s != nil {
				f.reconcile(ctx, s)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			f.log.Warn("engine events interrupted; resubscribing", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			events, errs = f.pods.Events(ctx)
		case s := <-f.kicks:
			f.reconcile(ctx, s)
		case <-tick.C:
			f.checkNetworks(ctx)
			for _, s := range f.Services("") {
				f.reconcile(ctx, s)
			}
		}
	}
}

// kick asks the reconciler to look at s soon.
func (f *Fleet) kick(s *Service) {
	select {
	case f.kicks <- s:
	default:
	}
}

// reconcile finds dead or unhealthy instances of s, takes them out of the
// edge, and starts replacements (with crash-loop backoff) or removes a
// surplus. It never blocks on starting containers.
func (f *Fleet) reconcile(ctx context.Context, s *Service) {
	defer f.contain("reconcile", "app", s.app, "service", s.name)
	s.mu.Lock()
	rev, paused := s.rev, s.paused
	s.mu.Unlock()
	if rev == 0 || paused {
		return
	}
	listedAt := time.Now()
	pods, err := f.pods.ListPods(ctx, map[string]string{runtime.LabelApp: s.app, runtime.LabelService: s.name, runtime.LabelRole: string(runtime.RoleInstance)})
	if err != nil {
		f.log.Warn("reconcile: list instances", "service", s.name, "err", err)
		return
	}
	seen := sighting{at: listedAt, pods: make(map[string]runtime.Pod, len(pods))}
	for _, p := range pods {
		seen.pods[p.ID] = p
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rev != rev || s.paused {
		return
	}
	f.applyReconcile(s, planReconcile(s, seen, time.Now()))
}

// applyReconcile carries out a reconciler's plan for s. Call with s.mu held;
// it starts what takes time in the background and never blocks on the
// engine.
func (f *Fleet) applyReconcile(s *Service, p reconcilePlan) {
	for _, m := range p.settled {
		m.restarts = 0
	}
	for _, r := range p.restarts {
		f.restartMember(s, r.in, r.m, r.why)
	}
	// The replacements start once the crashes they replace are recorded,
	// so berth events never shows a replacement before its crash.
	var reported chan struct{}
	if len(p.dead) > 0 {
		reported = make(chan struct{})
		var recorded sync.WaitGroup
		recorded.Add(len(p.dead))
		go func() { recorded.Wait(); close(reported) }()
		live := s.instances[:0:0]
		for _, in := range s.instances {
			if !slices.ContainsFunc(p.dead, func(x deadInstance) bool { return x.in == in }) {
				live = append(live, in)
			}
		}
		s.instances = live
		f.publish(s)
		for _, x := range p.dead {
			in := x.in
			in.state = StateCrashed
			if x.why != "" {
				in.crashWhy = x.why
			}
			if in.stopMonitor != nil {
				in.stopMonitor()
			}
			s.crashes++
			s.lastCrash = time.Now()
			f.bg.Add(1)
			go func() {
				defer f.bg.Done()
				defer f.contain("report crash", "service", s.name)
				f.reportCrash(s, in, sync.OnceFunc(recorded.Done))
			}()
		}
	}
	if p.forgetCrashes {
		s.crashes, s.crashMsg = 0, ""
	}
	if !p.nextRestart.IsZero() {
		s.nextRestart = p.nextRestart
	}
	if p.armIn > 0 {
		// Come back when the backoff ends rather than at the next resync.
		s.restartArmed = true
		time.AfterFunc(p.armIn, func() {
			s.mu.Lock()
			s.restartArmed = false
			s.mu.Unlock()
			f.kick(s)
		})
	}
	if p.start == 0 {
		return
	}
	rv := Revision{Number: s.rev, Spec: s.spec, Image: s.image}
	s.pending += p.start
	for range p.start {
		f.bg.Add(1)
		go func() {
			defer f.bg.Done()
			defer f.contain("replace instances", "service", s.name)
			if reported != nil {
				<-reported
			}
			f.replace(s, rv)
		}()
	}
}

// reportCrash records why an instance died, says so (recorded, also on a
// panic), and removes its pod.
func (f *Fleet) reportCrash(s *Service, in *Instance, recorded func()) {
	defer recorded()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	why := in.crashWhy
	if why == "" {
		why = "failed its health checks"
	}
	s.mu.Lock()
	s.crashMsg = fmt.Sprintf("instance %s %s", in.id, why)
	n := s.crashes
	s.mu.Unlock()
	f.event(s.app, s.name, "crash", fmt.Sprintf("instance %s %s; replacing it (crash %d, backoff %s)", in.id, why, n, backoff(n)))
	recorded()
	f.RemoveInstance(ctx, in)
}

// replace starts one instance of rv for s and adds it to the edge when it is
// healthy, unless the service moved on meanwhile.
func (f *Fleet) replace(s *Service, rv Revision) {
	ctx, cancel := context.WithTimeout(f.ctx, f.cfg.DeployTimeout)
	defer cancel()
	secrets, err := f.store.SecretValues(ctx, s.app, s.name)
	var in *Instance
	if err == nil {
		in, err = f.startInstance(ctx, s.app, rv, "", secrets)
	}
	if !f.admitStarted(s, rv, in, err, "replacement instance failed", func(in *Instance) { f.RemoveInstance(context.WithoutCancel(ctx), in) }) {
		return
	}
	f.event(s.app, s.name, "replaced", fmt.Sprintf("instance %s of revision %d started and healthy", in.id, rv.Number))
}

// admitStarted ends a start the reconciler or the autoscaler began (it had
// counted it in s.pending). A failed start counts as a crash, reported as
// failed; an instance the service no longer wants (it moved to another
// revision, was paused, is busy or is full) goes to discard; any other joins
// the edge. It reports whether the instance now serves.
func (f *Fleet) admitStarted(s *Service, rv Revision, in *Instance, err error, failed string, discard func(*Instance)) bool {
	s.mu.Lock()
	s.pending--
	if err != nil {
		s.crashes++
		s.lastCrash = time.Now()
		s.crashMsg = err.Error()
		n := s.crashes
		s.mu.Unlock()
		if f.ctx.Err() == nil {
			f.event(s.app, s.name, "crash", fmt.Sprintf("%s: %v (crash %d, next try in %s)", failed, err, n, backoff(n+1)))
		}
		return false
	}
	if s.rev != rv.Number || s.paused || s.busy != "" || len(s.instances) >= s.desiredCount() {
		s.mu.Unlock()
		discard(in)
		return false
	}
	s.instances = append(s.instances, in)
	f.publish(s)
	s.mu.Unlock()
	f.Monitor(s, in)
	return true
}
