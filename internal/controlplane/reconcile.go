package controlplane

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// reconcileLoop keeps every service at its desired count: engine events
// make it react at once, a periodic resync catches anything missed.
func (d *Daemon) reconcileLoop(ctx context.Context) {
	events, errs := d.pods.Events(ctx)
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
			if s := d.lookupService(ev.Labels[runtime.LabelApp], ev.Labels[runtime.LabelService]); s != nil {
				d.reconcile(ctx, s)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			d.log.Warn("engine events interrupted; resubscribing", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			events, errs = d.pods.Events(ctx)
		case s := <-d.kicks:
			d.reconcile(ctx, s)
		case <-tick.C:
			d.checkNetworks(ctx)
			for _, s := range d.appServices("") {
				d.reconcile(ctx, s)
			}
		}
	}
}

// kick asks the reconciler to look at s soon.
func (d *Daemon) kick(s *service) {
	select {
	case d.kicks <- s:
	default:
	}
}

// reconcile finds dead or unhealthy instances of s, takes them out of the
// edge, and starts replacements (with crash-loop backoff) or removes a
// surplus. It never blocks on starting containers.
func (d *Daemon) reconcile(ctx context.Context, s *service) {
	defer d.contain("reconcile", "app", s.app, "service", s.name)
	s.mu.Lock()
	rev, paused := s.rev, s.paused
	s.mu.Unlock()
	if rev == 0 || paused {
		return
	}
	listedAt := time.Now()
	pods, err := d.pods.ListPods(ctx, map[string]string{runtime.LabelApp: s.app, runtime.LabelService: s.name, runtime.LabelRole: string(runtime.RoleInstance)})
	if err != nil {
		d.log.Warn("reconcile: list instances", "service", s.name, "err", err)
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
	d.applyReconcile(s, planReconcile(s, seen, time.Now()))
}

// applyReconcile carries out a reconciler's plan for s. Call with s.mu held;
// it starts what takes time in the background and never blocks on the
// engine.
func (d *Daemon) applyReconcile(s *service, p reconcilePlan) {
	for _, m := range p.settled {
		m.restarts = 0
	}
	for _, r := range p.restarts {
		d.restartMember(s, r.in, r.m, r.why)
	}
	if len(p.dead) > 0 {
		live := s.instances[:0:0]
		for _, in := range s.instances {
			if !slices.ContainsFunc(p.dead, func(x deadInstance) bool { return x.in == in }) {
				live = append(live, in)
			}
		}
		s.instances = live
		d.publish(s)
		for _, x := range p.dead {
			in := x.in
			in.state = stateCrashed
			if x.why != "" {
				in.crashWhy = x.why
			}
			if in.stopMonitor != nil {
				in.stopMonitor()
			}
			s.crashes++
			s.lastCrash = time.Now()
			d.bg.Add(1)
			go func() {
				defer d.bg.Done()
				defer d.contain("report crash", "service", s.name)
				d.reportCrash(s, in)
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
			d.kick(s)
		})
	}
	if p.start == 0 {
		return
	}
	rv := revision{number: s.rev, spec: s.spec, image: s.image}
	s.pending += p.start
	for range p.start {
		d.bg.Add(1)
		go func() {
			defer d.bg.Done()
			defer d.contain("replace instances", "service", s.name)
			d.replace(s, rv)
		}()
	}
}

// reportCrash records why an instance died and removes its pod.
func (d *Daemon) reportCrash(s *service, in *instance) {
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
	d.event(s.app, s.name, "crash", fmt.Sprintf("instance %s %s; replacing it (crash %d, backoff %s)", in.id, why, n, backoff(n)))
	d.removeInstance(ctx, in)
}

// replace starts one instance of rv for s and adds it to the edge when it is
// healthy, unless the service moved on meanwhile.
func (d *Daemon) replace(s *service, rv revision) {
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.DeployTimeout)
	defer cancel()
	secrets, err := d.store.SecretValues(ctx, s.app, s.name)
	var in *instance
	if err == nil {
		in, err = d.startInstance(ctx, s.app, rv, "", secrets)
	}
	if !d.admitStarted(s, rv, in, err, "replacement instance failed", func(in *instance) { d.removeInstance(context.WithoutCancel(ctx), in) }) {
		return
	}
	d.event(s.app, s.name, "replaced", fmt.Sprintf("instance %s of revision %d started and healthy", in.id, rv.number))
}

// admitStarted ends a start the reconciler or the autoscaler began (it had
// counted it in s.pending). A failed start counts as a crash, reported as
// failed; an instance the service no longer wants (it moved to another
// revision, was paused, is busy or is full) goes to discard; any other joins
// the edge. It reports whether the instance now serves.
func (d *Daemon) admitStarted(s *service, rv revision, in *instance, err error, failed string, discard func(*instance)) bool {
	s.mu.Lock()
	s.pending--
	if err != nil {
		s.crashes++
		s.lastCrash = time.Now()
		s.crashMsg = err.Error()
		n := s.crashes
		s.mu.Unlock()
		if d.ctx.Err() == nil {
			d.event(s.app, s.name, "crash", fmt.Sprintf("%s: %v (crash %d, next try in %s)", failed, err, n, backoff(n+1)))
		}
		return false
	}
	if s.rev != rv.number || s.paused || s.busy != "" || len(s.instances) >= s.desiredCount() {
		s.mu.Unlock()
		discard(in)
		return false
	}
	s.instances = append(s.instances, in)
	d.publish(s)
	s.mu.Unlock()
	d.monitor(s, in)
	return true
}

// checkNetworks re-creates the network of an app that lost it behind
// berth's back (docker network rm): the containers that were on it can no
// longer be reached, and new ones could not be created, so without this the
// service would crash-loop until the next deploy.
func (d *Daemon) checkNetworks(ctx context.Context) {
	na, ok := d.pods.(runtime.InternalGateway)
	if !ok {
		return
	}
	byApp := map[string][]*service{}
	for _, s := range d.appServices("") {
		s.mu.Lock()
		rev := s.rev
		s.mu.Unlock()
		if rev != 0 {
			byApp[s.app] = append(byApp[s.app], s)
		}
	}
	for app, ss := range byApp {
		if _, _, err := na.NetworkAddrs(ctx, networkName(app)); errors.Is(err, runtime.ErrNetworkNotFound) && !d.appClosing(app) {
			d.restoreNetwork(ctx, app, ss)
		}
	}
}

// restoreNetwork makes app's network again, with what depends on it: the
// internal load balancer (on the new network's gateway), the ready task
// network holders, and the instances, which are replaced at once (a lost
// network is no crash of theirs, so no backoff).
func (d *Daemon) restoreNetwork(ctx context.Context, app string, ss []*service) {
	name := networkName(app)
	if err := d.ensureNetwork(ctx, app); err != nil {
		d.log.Warn("re-create a removed app network", "app", app, "network", name, "err", err)
		return
	}
	d.internal.Close(app)
	if a, err := d.store.GetApp(ctx, app); err == nil {
		d.internal.Restore(ctx, a)
	}
	d.tasks.Warm(app)
	lost := 0
	for _, s := range ss {
		s.mu.Lock()
		gone := s.instances
		s.instances = nil
		s.crashes, s.crashMsg, s.nextRestart = 0, "", time.Time{}
		d.publish(s)
		s.mu.Unlock()
		for _, in := range gone {
			if in.stopMonitor != nil {
				in.stopMonitor()
			}
			d.bg.Add(1)
			go func() {
				defer d.bg.Done()
				d.removeInstance(context.WithoutCancel(ctx), in)
			}()
		}
		lost += len(gone)
		d.kick(s)
	}
	d.event(app, "", "network", fmt.Sprintf("network %s was removed outside berth: re-created it; replacing the %d instance(s) that were on it", name, lost))
}
