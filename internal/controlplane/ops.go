package controlplane

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/controlplane/tasks"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/store"
)

// maxInstances bounds `berth scale` on one machine.
const maxInstances = 100

// deployed returns a service that has a serving revision.
func (d *Daemon) deployed(ctx context.Context, app, name string) (*service, error) {
	s, err := d.existingService(ctx, app, name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	rev := s.rev
	s.mu.Unlock()
	if rev == 0 {
		return nil, fmt.Errorf("%w: %s has no revision yet; deploy it first", ErrNoRevision, name)
	}
	return s, nil
}

// pause stops every instance (containers kept) and makes the edge answer 503
// with a paused page.
func (d *Daemon) pause(ctx context.Context, app, name string) error {
	s, err := d.deployed(ctx, app, name)
	if err != nil {
		return err
	}
	if err := acquire("pause", s); err != nil {
		return err
	}
	defer release(s)
	s.mu.Lock()
	if s.paused {
		s.mu.Unlock()
		return nil
	}
	s.paused = true
	old := s.instances
	s.instances = nil
	d.publish(s)
	s.mu.Unlock()
	d.drainAndStop(ctx, s, old, false)
	if err := d.saveService(ctx, s); err != nil {
		return err
	}
	d.event(app, name, "pause", fmt.Sprintf("paused: %d instance(s) stopped", len(old)))
	return nil
}

// resume starts a paused service's instances again (its stopped containers
// first) and puts them back in the edge once healthy.
func (d *Daemon) resume(ctx context.Context, app, name string, out progress) error {
	s, err := d.deployed(ctx, app, name)
	if err != nil {
		return err
	}
	if err := acquire("resume", s); err != nil {
		return err
	}
	defer release(s)
	s.mu.Lock()
	if !s.paused {
		s.mu.Unlock()
		return nil
	}
	rv := revision{number: s.rev, spec: s.spec, image: s.image}
	want := s.desiredCount()
	s.mu.Unlock()

	out.phase(phaseStart, "%s: starting %d instance(s) of revision %d", name, want, rv.number)
	ctx, cancel := context.WithTimeout(ctx, d.cfg.DeployTimeout)
	defer cancel()
	ins, err := d.bringUp(ctx, app, rv, want)
	if err != nil {
		return fmt.Errorf("resume of %s failed; it stays paused: %w", name, err)
	}
	s.mu.Lock()
	s.paused, s.instances = false, ins
	d.publish(s)
	s.mu.Unlock()
	for _, in := range ins {
		d.monitor(s, in)
	}
	out.phase(phaseDone, "%s: resumed with %d instance(s)", name, len(ins))
	if err := d.saveService(ctx, s); err != nil {
		return err
	}
	d.event(app, name, "resume", fmt.Sprintf("resumed with %d instance(s)", len(ins)))
	return nil
}

// scale sets fixed instance counts and waits until they serve.
func (d *Daemon) scale(ctx context.Context, app string, counts map[string]int) error {
	names := make([]string, 0, len(counts))
	ss := make([]*service, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := counts[n]
		if c < 1 || c > maxInstances {
			return fmt.Errorf("%w: %s=%d: instances must be 1..%d (to stop a service, use berth pause %s)", ErrInvalid, n, c, maxInstances, n)
		}
		s, err := d.deployed(ctx, app, n)
		if err != nil {
			return err
		}
		s.mu.Lock()
		auto := s.spec.Scale != nil
		s.mu.Unlock()
		if auto {
			return fmt.Errorf("%w: %s autoscales (scale: in berth.yaml); change min and max there instead", ErrInvalid, n)
		}
		ss = append(ss, s)
	}
	if err := acquire("scale", ss...); err != nil {
		return err
	}
	defer release(ss...)
	for _, s := range ss {
		if err := d.resize(ctx, s, counts[s.name]); err != nil {
			return err
		}
	}
	return nil
}

// resize starts or drains instances until n serve.
func (d *Daemon) resize(ctx context.Context, s *service, n int) error {
	s.mu.Lock()
	s.desired = n
	rv := revision{number: s.rev, spec: s.spec, image: s.image}
	have, paused := len(s.instances), s.paused
	var surplus []*instance
	if have > n && !paused {
		surplus = s.instances[n:]
		s.instances = s.instances[:n:n]
		d.publish(s)
	}
	s.mu.Unlock()
	if err := d.saveService(ctx, s); err != nil {
		return err
	}
	if paused {
		d.event(s.app, s.name, "scale", fmt.Sprintf("scaled to %d (paused; applies on resume)", n))
		return nil
	}
	if len(surplus) > 0 {
		d.drainAndStop(ctx, s, surplus, true)
	}
	if have < n {
		secrets, err := d.store.SecretValues(ctx, s.app, s.name)
		if err != nil {
			return err
		}
		var (
			wg    sync.WaitGroup
			first error
			mu    sync.Mutex
		)
		sctx, cancel := context.WithTimeout(ctx, d.cfg.DeployTimeout)
		defer cancel()
		for range n - have {
			wg.Add(1)
			go func() {
				defer wg.Done()
				in, err := d.startInstance(sctx, s.app, rv, "", secrets)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					first = cmpOr(first, err)
					return
				}
				s.mu.Lock()
				s.instances = append(s.instances, in)
				d.publish(s)
				s.mu.Unlock()
				d.monitor(s, in)
			}()
		}
		wg.Wait()
		if first != nil {
			return fmt.Errorf("scale of %s: %w", s.name, first)
		}
	}
	d.event(s.app, s.name, "scale", fmt.Sprintf("scaled from %d to %d instance(s)", have, n))
	return nil
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// saveService persists the paused flag and count override.
func (d *Daemon) saveService(ctx context.Context, s *service) error {
	rec, err := d.store.GetService(ctx, s.app, s.name)
	if errors.Is(err, store.ErrNotFound) {
		rec = store.Service{App: s.app, Name: s.name}
	} else if err != nil {
		return err
	}
	s.mu.Lock()
	rec.CurrentRevision, rec.Paused, rec.Instances, rec.UpdatedAt = s.rev, s.paused, s.desired, time.Now().UTC()
	s.mu.Unlock()
	return d.store.PutService(ctx, rec)
}

// destroy removes an app: its routes, containers, network and state.
// Events are kept.
func (d *Daemon) destroy(ctx context.Context, app string, out progress) error {
	if _, err := d.store.GetApp(ctx, app); err != nil {
		return fmt.Errorf("%w: no app named %q; see \"berth status\"", ErrNotFound, app)
	}
	ss := d.appServices(app)
	if err := acquire("destroy", ss...); err != nil {
		return err
	}
	defer release(ss...)
	d.tasks.RemoveSchedules(app)
	d.dropAppCanaries(app)          // canary.go
	d.entrypoints.DropApp(ctx, app) // internal/controlplane/traffic; the store drops them with the app
	for _, s := range ss {
		s.mu.Lock()
		d.edge.Remove(serviceKey(app, s.name))
		for _, in := range s.instances {
			if in.stopMonitor != nil {
				in.stopMonitor()
			}
		}
		s.instances, s.rev, s.spec = nil, 0, nil
		s.mu.Unlock()
	}
	d.closeApp(app) // closing.go: no task made after the listing
	pods, err := d.pods.ListPods(ctx, map[string]string{runtime.LabelApp: app})
	if err != nil {
		return err
	}
	containers := 0
	for _, p := range pods {
		containers += len(p.Containers)
	}
	out.phase(phaseDrain, "%s: removing %d container(s)", app, containers)
	var wg sync.WaitGroup
	for _, p := range pods {
		wg.Add(1)
		go func() { defer wg.Done(); _ = d.pods.RemovePod(ctx, p.ID) }()
	}
	wg.Wait()
	d.internal.Close(app) // internal/controlplane/traffic
	if err := d.pods.RemoveNetwork(ctx, networkName(app)); err != nil {
		d.log.Warn("remove network", "app", app, "err", err)
	}
	if err := d.store.DeleteApp(ctx, app); err != nil {
		return err
	}
	d.mu.Lock()
	for _, s := range ss {
		delete(d.services, serviceKey(app, s.name))
	}
	d.mu.Unlock()
	d.event(app, "", "destroy", fmt.Sprintf("app %s destroyed (%d services, %d containers)", app, len(ss), containers))
	return nil
}

// errorCode maps an error to the API's stable code.
func errorCode(err error) string {
	switch {
	case errors.Is(err, ErrBusy):
		return "deploy_in_progress"
	case errors.Is(err, ErrNotFound), errors.Is(err, store.ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrInvalid):
		return "invalid"
	case errors.Is(err, ErrNoRevision):
		return "no_revision"
	case errors.Is(err, runtime.ErrImageNotFound):
		return "image_not_found"
	case errors.Is(err, runtime.ErrPlatform):
		return "platform"
	case errors.Is(err, ErrUnhealthy):
		return "unhealthy"
	case errors.Is(err, tasks.ErrReleaseFailed):
		return "release_failed"
	case errors.Is(err, tasks.ErrNotStarted):
		return "task_not_started"
	}
	return "error"
}

// oneLine keeps an error message to one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
