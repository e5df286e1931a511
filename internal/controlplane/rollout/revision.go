package rollout

// A revision's life, as its stored status (store.RevisionStatus) goes
// (docs/architecture.md draws the same):
//
//	              instances healthy,
//	              traffic switched            next revision active
//	  deploying ────────────────────▶ active ──────────────────────▶ previous
//	      │                             ▲                               │
//	      │ release failed, unhealthy,  │ rollback                      │ another revision
//	      │ timed out, daemon died      └───────────────────────────────┤ became previous
//	      ▼ before the switch                                           ▼
//	    failed                                                       retired
//
// A previous revision keeps its containers for an instant rollback (the
// fleet freezes or stops them: fleet.KeepRollbackTarget); a retired one
// has none left. A canary stays deploying while it shares traffic, until
// a promotion makes it active or a rollback makes it failed. At start,
// Settle puts back what a daemon that died mid-deploy left.

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/berth-dev/berth/internal/controlplane/fleet"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/store"
)

// recordSwitch persists that rev serves and oldRev is the rollback target.
func (m *Manager) recordSwitch(ctx context.Context, s *fleet.Service, rev, oldRev int, paused bool, desired int) error {
	svc, err := m.store.GetService(ctx, s.App(), s.Name())
	if errors.Is(err, store.ErrNotFound) {
		svc = store.Service{App: s.App(), Name: s.Name()}
	} else if err != nil {
		return err
	}
	svc.CurrentRevision, svc.Paused, svc.Instances, svc.UpdatedAt = rev, paused, desired, time.Now().UTC()
	if err := m.store.PutService(ctx, svc); err != nil {
		return err
	}
	if err := m.setRevisionStatus(ctx, s, rev, store.RevisionActive, ""); err != nil {
		return err
	}
	if oldRev != 0 && oldRev != rev {
		return m.setRevisionStatus(ctx, s, oldRev, store.RevisionPrevious, "")
	}
	return nil
}

// setRevisionStatus moves revision n of s to status, with msg (if any) as
// its message.
func (m *Manager) setRevisionStatus(ctx context.Context, s *fleet.Service, n int, status store.RevisionStatus, msg string) error {
	r, err := m.store.GetRevision(ctx, s.App(), s.Name(), n)
	if err != nil {
		return err
	}
	r.Status = status
	if msg != "" {
		r.Message = msg
	}
	return m.store.PutRevision(ctx, r)
}

// retireRevisions removes the containers of every revision but the serving
// one and the rollback target, and marks those revisions retired.
func (m *Manager) retireRevisions(ctx context.Context, s *fleet.Service, keep ...int) {
	pods, err := m.pods.ListPods(ctx, map[string]string{runtime.LabelApp: s.App(), runtime.LabelService: s.Name(), runtime.LabelRole: string(runtime.RoleInstance)})
	if err != nil {
		m.log.Warn("list instances to retire", "err", err)
		return
	}
	for _, p := range pods {
		n, _ := strconv.Atoi(p.Labels[runtime.LabelRevision])
		if slices.Contains(keep, n) {
			continue
		}
		if err := m.pods.RemovePod(ctx, p.ID); err != nil {
			m.log.Warn("remove retired instance", "pod", p.Name, "err", err)
		}
	}
	revs, err := m.store.ListRevisions(ctx, s.App(), s.Name())
	if err != nil {
		return
	}
	for _, r := range revs {
		if !slices.Contains(keep, r.Number) && (r.Status == store.RevisionActive || r.Status == store.RevisionPrevious) {
			r.Status = store.RevisionRetired
			_ = m.store.PutRevision(ctx, r)
		}
	}
}

// Settle decides what a service's stored revisions must be after a
// daemon start, whatever point of a deploy or rollback the last daemon died
// at: the serving one (current) active; one still deploying failed (its
// switch never happened); of the others marked active or previous, one
// stays previous, the rollback target, and the rest are retired. The kept
// one is the one the service left last: one still marked active (the
// daemon died between recording the switch and marking the old revision
// previous), else the highest numbered. It returns the changes and the
// kept revision (0: none).
func Settle(current int, revs []store.Revision) (fixes []fleet.RevisionFix, previous int) {
	var left []store.Revision // active or previous, not serving
	for _, r := range revs {
		switch {
		case r.Number == current:
			if r.Status != store.RevisionActive {
				fixes = append(fixes, fleet.RevisionFix{Rev: r, Status: store.RevisionActive, Why: "it serves: the switch was recorded"})
			}
		case r.Status == store.RevisionDeploying:
			fixes = append(fixes, fleet.RevisionFix{Rev: r, Status: store.RevisionFailed,
				Message: "the daemon stopped during this deploy", Why: "the daemon stopped before the switch"})
		case r.Status == store.RevisionActive, r.Status == store.RevisionPrevious:
			left = append(left, r)
		}
	}
	if len(left) == 0 {
		return fixes, 0
	}
	best := 0
	for i, r := range left {
		b := left[best]
		if (r.Status == store.RevisionActive) != (b.Status == store.RevisionActive) {
			if r.Status == store.RevisionActive {
				best = i
			}
			continue
		}
		if r.Number > b.Number {
			best = i
		}
	}
	for i, r := range left {
		switch {
		case i == best && r.Status != store.RevisionPrevious:
			fixes = append(fixes, fleet.RevisionFix{Rev: r, Status: store.RevisionPrevious, Why: "the service left it last"})
		case i != best:
			fixes = append(fixes, fleet.RevisionFix{Rev: r, Status: store.RevisionRetired, Why: "only one rollback target is kept"})
		}
	}
	return fixes, left[best].Number
}
