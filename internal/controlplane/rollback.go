package controlplane

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth/internal/api"
)

// rollback returns a service to an earlier revision (to 0: the previous
// one). The previous revision's containers are kept stopped, so this is a
// container start, a health check and an edge switch.
func (d *Daemon) rollback(ctx context.Context, app, name string, to int, out progress) api.Message {
	s, err := d.existingService(ctx, app, name)
	if err != nil {
		return failure(err, nil)
	}
	if err := acquire("rollback", s); err != nil {
		return failure(err, nil)
	}
	defer release(s)
	// A rollback during a canary ends the canary (canary.go).
	if d.abortCanary(ctx, s, "berth rollback") {
		s.mu.Lock()
		cur, sp := s.rev, s.spec
		s.mu.Unlock()
		return api.Message{Kind: api.KindResult, Time: time.Now(), OK: true, Deployed: []api.Deploy{{Service: name, Revision: cur, URLs: d.urls(app, sp)}}}
	}

	s.mu.Lock()
	cur := s.rev
	s.mu.Unlock()
	if to == 0 {
		revs, err := d.store.ListRevisions(ctx, app, name)
		if err != nil {
			return failure(err, nil)
		}
		for _, r := range revs { // newest first
			if r.Number != cur && r.Status == "previous" {
				to = r.Number
				break
			}
		}
		if to == 0 {
			for _, r := range revs {
				if r.Number < cur && r.Status != "failed" && r.Status != "deploying" {
					to = r.Number
					break
				}
			}
		}
		if to == 0 {
			return failure(fmt.Errorf("%w: %s has no earlier revision to roll back to", ErrNoRevision, name), nil)
		}
	}
	if to == cur {
		return failure(fmt.Errorf("%w: revision %d of %s already serves", ErrInvalid, to, name), nil)
	}
	rev, rec, err := d.loadRevision(ctx, app, name, to)
	if err != nil {
		return failure(err, nil)
	}
	if rec.Status == "failed" {
		return failure(fmt.Errorf("%w: revision %d of %s never deployed successfully (%s); pick another with --to", ErrInvalid, to, name, rec.Message), nil)
	}
	if _, err := d.pods.ImageID(ctx, rev.image); err != nil {
		return failure(fmt.Errorf("%w: the image of revision %d (%s) is no longer on the engine; redeploy instead", ErrNoRevision, to, rec.Image), nil)
	}
	unclaim, err := d.claimRevisionHosts(ctx, s, rev) // hosts.go
	if err != nil {
		return failure(err, nil)
	}
	defer unclaim()
	start := time.Now()
	if err := d.rollout(ctx, s, rev, false, out); err != nil {
		d.event(app, name, "rollback-failed", fmt.Sprintf("rollback to revision %d failed: %v", to, err))
		var lines []string
		if f, ok := err.(*instanceFailure); ok {
			lines = f.lastLogs
		}
		return failure(fmt.Errorf("rollback of %s to revision %d failed; revision %d keeps serving: %w", name, to, cur, err), lines)
	}
	d.event(app, name, "rollback", fmt.Sprintf("rolled back from revision %d to %d in %s", cur, to, time.Since(start).Round(time.Millisecond)))
	s.mu.Lock()
	sp := s.spec
	s.mu.Unlock()
	return api.Message{Kind: api.KindResult, Time: time.Now(), OK: true, Deployed: []api.Deploy{{Service: name, Revision: to, URLs: d.urls(app, sp)}}}
}

// existingService returns a deployed service's live state, or a not-found
// error naming what exists.
func (d *Daemon) existingService(ctx context.Context, app, name string) (*service, error) {
	if _, err := d.store.GetApp(ctx, app); err != nil {
		return nil, fmt.Errorf("%w: no app named %q; see \"berth status\"", ErrNotFound, app)
	}
	s := d.lookupService(app, name)
	if s == nil {
		var names []string
		for _, o := range d.appServices(app) {
			names = append(names, o.name)
		}
		return nil, fmt.Errorf("%w: app %s has no service %q (services: %v)", ErrNotFound, app, name, names)
	}
	return s, nil
}
