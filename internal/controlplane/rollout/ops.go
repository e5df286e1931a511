package rollout

// The operations on a deployed service besides a deploy and a rollback:
// pause, resume, a fixed count (scale) and the destroy of its app. Each
// holds the services busy while it runs, as a deploy does.

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/berth-dev/berth/internal/controlplane/apierr"
	"github.com/berth-dev/berth/internal/controlplane/fleet"
	"github.com/berth-dev/berth/internal/runtime"
)

// maxInstances bounds `berth scale` on one machine.
const maxInstances = 100

// Pause stops every instance (containers kept) and makes the edge answer 503
// with a paused page.
func (m *Manager) Pause(ctx context.Context, app, name string) error {
	s, err := m.fleet.Deployed(ctx, app, name)
	if err != nil {
		return err
	}
	if err := fleet.Acquire("pause", s); err != nil {
		return err
	}
	defer fleet.Release(s)
	old, ok := m.fleet.Pause(s)
	if !ok {
		return nil
	}
	m.fleet.DrainAndStop(ctx, s, old, false)
	if err := m.fleet.SaveService(ctx, s); err != nil {
		return err
	}
	m.event(app, name, "pause", fmt.Sprintf("paused: %d instance(s) stopped", len(old)))
	return nil
}

// Resume starts a paused service's instances again (its stopped containers
// first) and puts them back in the edge once healthy.
func (m *Manager) Resume(ctx context.Context, app, name string, out Progress) error {
	s, err := m.fleet.Deployed(ctx, app, name)
	if err != nil {
		return err
	}
	if err := fleet.Acquire("resume", s); err != nil {
		return err
	}
	defer fleet.Release(s)
	rv, want, paused := s.ToResume()
	if !paused {
		return nil
	}

	out.phase(phaseStart, "%s: starting %d instance(s) of revision %d", name, want, rv.Number)
	ctx, cancel := context.WithTimeout(ctx, m.cfg.DeployTimeout)
	defer cancel()
	ins, err := m.fleet.BringUp(ctx, app, rv, want)
	if err != nil {
		return fmt.Errorf("resume of %s failed; it stays paused: %w", name, err)
	}
	m.fleet.Resume(s, ins)
	out.phase(phaseDone, "%s: resumed with %d instance(s)", name, len(ins))
	if err := m.fleet.SaveService(ctx, s); err != nil {
		return err
	}
	m.event(app, name, "resume", fmt.Sprintf("resumed with %d instance(s)", len(ins)))
	return nil
}

// Scale sets fixed instance counts and waits until they serve.
func (m *Manager) Scale(ctx context.Context, app string, counts map[string]int) error {
	names := make([]string, 0, len(counts))
	ss := make([]*fleet.Service, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := counts[n]
		if c < 1 || c > maxInstances {
			return fmt.Errorf("%w: %s=%d: instances must be 1..%d (to stop a service, use berth pause %s)", apierr.ErrInvalid, n, c, maxInstances, n)
		}
		s, err := m.fleet.Deployed(ctx, app, n)
		if err != nil {
			return err
		}
		if s.Serving().Spec.Scale != nil {
			return fmt.Errorf("%w: %s autoscales (scale: in berth.yaml); change min and max there instead", apierr.ErrInvalid, n)
		}
		ss = append(ss, s)
	}
	if err := fleet.Acquire("scale", ss...); err != nil {
		return err
	}
	defer fleet.Release(ss...)
	for _, s := range ss {
		if err := m.fleet.Resize(ctx, s, counts[s.Name()]); err != nil {
			return err
		}
	}
	return nil
}

// Destroy removes an app: its routes, containers, network and state.
// Events are kept.
func (m *Manager) Destroy(ctx context.Context, app string, out Progress) error {
	if _, err := m.store.GetApp(ctx, app); err != nil {
		return fmt.Errorf("%w: no app named %q; see \"berth status\"", apierr.ErrNotFound, app)
	}
	ss := m.fleet.Services(app)
	if err := fleet.Acquire("destroy", ss...); err != nil {
		return err
	}
	defer fleet.Release(ss...)
	m.tasks.RemoveSchedules(app)
	m.dropAppCanaries(app)
	m.entrypoints.DropApp(ctx, app) // internal/controlplane/traffic; the store drops them with the app
	for _, s := range ss {
		m.fleet.Drop(s)
	}
	m.fleet.CloseApp(app) // no task made after the listing
	pods, err := m.pods.ListPods(ctx, map[string]string{runtime.LabelApp: app})
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
		go func() { defer wg.Done(); _ = m.pods.RemovePod(ctx, p.ID) }()
	}
	wg.Wait()
	m.internal.Close(app) // internal/controlplane/traffic
	if err := m.pods.RemoveNetwork(ctx, fleet.NetworkName(app)); err != nil {
		m.log.Warn("remove network", "app", app, "err", err)
	}
	if err := m.store.DeleteApp(ctx, app); err != nil {
		return err
	}
	m.fleet.Forget(ss...)
	m.event(app, "", "destroy", fmt.Sprintf("app %s destroyed (%d services, %d containers)", app, len(ss), containers))
	return nil
}
