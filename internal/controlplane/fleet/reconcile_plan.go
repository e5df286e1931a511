package fleet

// The reconciler's decisions, apart from their effects. planReconcile looks
// at a service's live state and one sighting of its pods on the engine and
// says what to do: which instances are dead and why, which non-essential
// sidecars to restart alone, how many replacements to start, or how long
// the crash-loop backoff still holds them back. It changes nothing and
// calls nothing; reconcile (reconcile.go) applies the plan.

import (
	"fmt"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
)

// sighting is one listing of a service's pods on the engine.
type sighting struct {
	// at is when the listing began: an instance started later is not in
	// it, and is left be.
	at time.Time
	// pods are the service's instance pods by ID, in any state.
	pods map[string]runtime.Pod
}

// deadInstance is an instance the reconciler takes out, and why.
type deadInstance struct {
	in  *Instance
	why string
}

// sidecarRestart is a non-essential sidecar that exited, to start again
// alone after the crash-loop backoff of its restarts.
type sidecarRestart struct {
	in  *Instance
	m   *member
	why string
}

// reconcilePlan is what one pass of the reconciler does to a service.
type reconcilePlan struct {
	dead     []deadInstance
	restarts []sidecarRestart
	// settled are sidecars that ran long enough to forget their restarts.
	settled []*member
	// forgetCrashes: the service stayed healthy for crashReset.
	forgetCrashes bool
	// start is how many replacements to start now.
	start int
	// nextRestart is when the backoff lets replacements start, when it
	// holds them back; armIn > 0 asks to come back then (no timer is armed
	// yet).
	nextRestart time.Time
	armIn       time.Duration
}

// planReconcile decides one pass of the reconciler over s (its mu held)
// from seen, at now. A paused service, one with no revision, or one a
// deploy, rollback or scale owns (busy) gets no replacements; its dead
// instances are still taken out.
func planReconcile(s *Service, seen sighting, now time.Time) reconcilePlan {
	var p reconcilePlan
	if s.rev == 0 || s.paused {
		return p
	}
	for _, in := range s.instances {
		if why, dead := judgeInstance(s.spec, in, seen, now, &p); dead {
			p.dead = append(p.dead, deadInstance{in: in, why: why})
		}
	}
	crashes, lastCrash := s.crashes, s.lastCrash
	if len(p.dead) > 0 {
		crashes += len(p.dead)
		lastCrash = now
	}
	live := len(s.instances) - len(p.dead)
	if crashes > 0 && now.Sub(lastCrash) > crashReset && live >= s.desiredCount() {
		p.forgetCrashes, crashes = true, 0
	}
	if s.busy != "" {
		return p
	}
	missing := s.desiredCount() - live - s.pending
	if missing <= 0 {
		return p
	}
	next := s.nextRestart
	if crashes > 0 {
		next = lastCrash.Add(backoff(crashes))
	}
	p.nextRestart = next
	if wait := next.Sub(now); wait > 0 {
		if !s.restartArmed {
			p.armIn = wait
		}
		return p
	}
	p.start = missing
	return p
}

// judgeInstance says whether in is dead in seen, and why: it failed its
// health checks (unhealthy), its pod no longer runs (the service's own
// container or an essential sidecar ended, or it is gone), or it lost its
// network. A non-essential sidecar that exited goes into p.restarts
// instead, and one that has run for crashReset into p.settled.
func judgeInstance(sp *spec.Service, in *Instance, seen sighting, now time.Time, p *reconcilePlan) (string, bool) {
	if in.state == StateUnhealthy {
		why := in.crashWhy
		if why == "" {
			why = "failed its health checks"
		}
		return why, true
	}
	if in.startedAt.After(seen.at) {
		return "", false // not in the listing
	}
	pod, found := seen.pods[in.podID]
	if !found || !pod.Running() || pod.Broken != "" {
		return deathOf(sp, pod, found), true
	}
	var restarts []sidecarRestart
	for _, m := range in.sidecars {
		c, ok := pod.Container(m.name)
		if ok && c.Running {
			if m.restarts > 0 && now.Sub(m.startedAt) > crashReset {
				p.settled = append(p.settled, m)
			}
			continue
		}
		if m.once || m.restarting || m.startedAt.After(seen.at) {
			continue
		}
		why := exitWhy(c, ok)
		if m.essential {
			return fmt.Sprintf("lost its essential sidecar %s, which %s", m.name, why), true
		}
		restarts = append(restarts, sidecarRestart{in: in, m: m, why: why})
	}
	p.restarts = append(p.restarts, restarts...)
	return "", false
}
