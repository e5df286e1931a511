package controlplane

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
)

// sighting is one listing of a service's pods on the engine.
type sighting struct {
	// at is when the listing of the instances' own containers began: an
	// instance started later is not in it, and is left be.
	at time.Time
	// running holds the pod IDs (main containers) that run.
	running map[string]bool
	// members are the holders and sidecars by container ID, listed from
	// membersAt on; nil when that listing failed (no pod is judged by its
	// sidecars then).
	members   map[string]runtime.Container
	membersAt time.Time
}

// deadInstance is an instance the reconciler takes out, and why when the
// sighting knows (a sidecar or the holder); "" leaves the reason to the
// crash report, which inspects the instance.
type deadInstance struct {
	in  *instance
	why string
}

// sidecarRestart is a non-essential sidecar that exited, to start again
// alone after the crash-loop backoff of its restarts.
type sidecarRestart struct {
	in  *instance
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
func planReconcile(s *service, seen sighting, now time.Time) reconcilePlan {
	var p reconcilePlan
	if s.rev == 0 || s.paused {
		return p
	}
	for _, in := range s.instances {
		if why, dead := judgeInstance(in, seen, now, &p); dead {
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

// judgeInstance says whether in is dead in seen, and why when its pod
// says: it failed its health checks (unhealthy), its main container is
// not running, or it lost its holder or an essential sidecar. A
// non-essential sidecar that exited goes into p.restarts instead, and one
// that has run for crashReset into p.settled.
func judgeInstance(in *instance, seen sighting, now time.Time, p *reconcilePlan) (string, bool) {
	if in.state == stateUnhealthy {
		return in.crashWhy, true
	}
	if !seen.running[in.containerID] && in.startedAt.Before(seen.at) {
		return "", true
	}
	g := in.group
	if g == nil || seen.members == nil || in.startedAt.After(seen.membersAt) {
		return "", false
	}
	if c, ok := seen.members[g.holderID]; !ok || !c.Running {
		return "lost its network holder (" + exitWhy(c, ok) + ")", true
	}
	var restarts []sidecarRestart
	for _, m := range g.members {
		c, ok := seen.members[m.containerID]
		if ok && c.Running {
			if m.restarts > 0 && now.Sub(m.startedAt) > crashReset {
				p.settled = append(p.settled, m)
			}
			continue
		}
		if m.once || m.restarting || m.startedAt.After(seen.membersAt) {
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
