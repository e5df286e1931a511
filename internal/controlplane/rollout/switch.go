package rollout

// The switch: a revision's instances are brought up next to what serves,
// the router is moved to them in one update, and the instances they
// replace are drained and kept as the rollback target.

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/internal/controlplane/fleet"
)

// rollOut brings rev up next to what serves, switches the edge to it, drains
// and stops the old instances, and records the outcome. The caller holds s
// busy. Existing stopped containers of rev (a rollback target) are reused.
// With resetScale the spec's instance count replaces a `berth scale`
// override; otherwise the override stays.
func (m *Manager) rollOut(ctx context.Context, s *fleet.Service, rev fleet.Revision, resetScale bool, out Progress) error {
	ctx, cancel := context.WithTimeoutCause(ctx, m.cfg.DeployTimeout, fmt.Errorf("deploy timeout (%s) reached", m.cfg.DeployTimeout))
	defer cancel()

	want := s.Desired()
	if want == 0 || resetScale {
		want = rev.Spec.DesiredInstances()
	}

	out.phase(phaseStart, "%s: starting %d instance(s) of revision %d", s.Name(), want, rev.Number)
	ins, err := m.fleet.BringUp(ctx, s.App(), rev, want)
	if err != nil {
		return err
	}
	out.phase(phaseHealthy, "%s: revision %d healthy (%d/%d instances)", s.Name(), rev.Number, len(ins), want)
	return m.switchTo(ctx, s, rev, ins, resetScale, out, nil)
}

// switchTo moves all of the service's traffic to ins, healthy instances of
// rev, then drains and stops the old instances and records the outcome.
// afterPublish, if set, runs right after the edge serves ins (a promoted
// canary removes its split there). The caller holds s busy.
func (m *Manager) switchTo(ctx context.Context, s *fleet.Service, rev fleet.Revision, ins []*fleet.Instance, resetScale bool, out Progress, afterPublish func()) error {
	// switch: one atomic edge update moves all traffic.
	sw := m.fleet.Switch(s, rev, ins, resetScale)
	old, oldRev := sw.Old, sw.OldRev
	if afterPublish != nil {
		afterPublish()
	}
	for _, in := range ins {
		m.fleet.Monitor(s, in)
	}
	if rev.Spec.Port != 0 {
		out.phase(phaseSwitch, "%s: all traffic on revision %d", s.Name(), rev.Number)
	} else {
		out.phase(phaseSwitch, "%s: revision %d runs", s.Name(), rev.Number)
	}

	if err := m.recordSwitch(context.WithoutCancel(ctx), s, rev.Number, oldRev, sw.Paused, sw.Desired); err != nil {
		m.log.Error("record switch", "service", s.Name(), "err", err)
	}
	if oldRev == 0 {
		m.event(s.App(), s.Name(), "deploy", fmt.Sprintf("revision %d serves (first revision)", rev.Number))
	} else {
		m.event(s.App(), s.Name(), "deploy", fmt.Sprintf("revision %d serves (was %d)", rev.Number, oldRev))
	}

	// drain, then park the old instances: they stay as the rollback target.
	if len(old) > 0 {
		out.phase(phaseDrain, "%s: draining %d instance(s) of revision %d", s.Name(), len(old), oldRev)
		m.fleet.KeepRollbackTarget(context.WithoutCancel(ctx), s, old)
	}
	m.retireRevisions(context.WithoutCancel(ctx), s, rev.Number, oldRev)
	out.phase(phaseDone, "%s: revision %d serves", s.Name(), rev.Number)
	return nil
}
