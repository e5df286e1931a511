package rollout

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/apierr"
	"github.com/berth-dev/berth/internal/controlplane/fleet"
	"github.com/berth-dev/berth/internal/store"
)

// Rollback returns a service to an earlier revision (to 0: the previous
// one). The previous revision's containers are kept stopped, so this is a
// container start, a health check and an edge switch.
func (m *Manager) Rollback(ctx context.Context, app, name string, to int, out Progress) api.Message {
	s, err := m.fleet.Existing(ctx, app, name)
	if err != nil {
		return m.failure(err, nil)
	}
	if err := fleet.Acquire("rollback", s); err != nil {
		return m.failure(err, nil)
	}
	defer fleet.Release(s)
	// A rollback during a canary ends the canary.
	if m.abortCanary(ctx, s, "berth rollback") {
		cur := s.Serving()
		return api.Message{Kind: api.KindResult, Time: time.Now(), OK: true, Deployed: []api.Deploy{{Service: name, Revision: cur.Number, URLs: m.fleet.URLs(app, cur.Spec)}}}
	}

	cur := s.Serving().Number
	if to == 0 {
		revs, err := m.store.ListRevisions(ctx, app, name)
		if err != nil {
			return m.failure(err, nil)
		}
		for _, r := range revs { // newest first
			if r.Number != cur && r.Status == store.RevisionPrevious {
				to = r.Number
				break
			}
		}
		if to == 0 {
			for _, r := range revs {
				if r.Number < cur && r.Status != store.RevisionFailed && r.Status != store.RevisionDeploying {
					to = r.Number
					break
				}
			}
		}
		if to == 0 {
			return m.failure(fmt.Errorf("%w: %s has no earlier revision to roll back to", apierr.ErrNoRevision, name), nil)
		}
	}
	if to == cur {
		return m.failure(fmt.Errorf("%w: revision %d of %s already serves", apierr.ErrInvalid, to, name), nil)
	}
	rev, rec, err := m.fleet.LoadRevision(ctx, app, name, to)
	if err != nil {
		return m.failure(err, nil)
	}
	if rec.Status == store.RevisionFailed {
		return m.failure(fmt.Errorf("%w: revision %d of %s never deployed successfully (%s); pick another with --to", apierr.ErrInvalid, to, name, rec.Message), nil)
	}
	if _, err := m.pods.ImageID(ctx, rev.Image); err != nil {
		return m.failure(fmt.Errorf("%w: the image of revision %d (%s) is no longer on the engine; redeploy instead", apierr.ErrNoRevision, to, rec.Image), nil)
	}
	unclaim, err := m.claimRevisionHosts(ctx, s, rev)
	if err != nil {
		return m.failure(err, nil)
	}
	defer unclaim()
	start := time.Now()
	if err := m.rollOut(ctx, s, rev, false, out); err != nil {
		m.event(app, name, "rollback-failed", fmt.Sprintf("rollback to revision %d failed: %v", to, err))
		var lines []string
		if f, ok := err.(*fleet.InstanceFailure); ok {
			lines = f.LastLogs
		}
		return m.failure(fmt.Errorf("rollback of %s to revision %d failed; revision %d keeps serving: %w", name, to, cur, err), lines)
	}
	m.event(app, name, "rollback", fmt.Sprintf("rolled back from revision %d to %d in %s", cur, to, time.Since(start).Round(time.Millisecond)))
	sp := s.Serving().Spec
	return api.Message{Kind: api.KindResult, Time: time.Now(), OK: true, Deployed: []api.Deploy{{Service: name, Revision: to, URLs: m.fleet.URLs(app, sp)}}}
}
