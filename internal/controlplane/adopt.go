package controlplane

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/store"
)

// adopt rebuilds the live state from the store and the engine's labelled
// containers after a daemon start. Running instances of the serving
// revision are taken back as they are (not restarted) and published to the
// edge at once; their monitors then verify them. Leftovers of a deploy the
// daemon died in are removed, and that revision is marked failed.
func (d *Daemon) adopt(ctx context.Context) error {
	started := time.Now()
	apps, err := d.store.ListApps(ctx)
	if err != nil {
		return err
	}
	cs, err := d.engine.List(ctx, map[string]string{runtime.LabelRole: string(runtime.RoleInstance)})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	byService := map[string][]runtime.Container{}
	for _, c := range cs {
		k := serviceKey(c.Labels[runtime.LabelApp], c.Labels[runtime.LabelService])
		byService[k] = append(byService[k], c)
	}
	for _, app := range apps {
		svcs, err := d.store.ListServices(ctx, app.Name)
		if err != nil {
			return err
		}
		d.restoreInternal(ctx, app) // internal_lb.go, before the routes carry its names
		for _, rec := range svcs {
			if err := d.adoptService(ctx, rec, byService[serviceKey(app.Name, rec.Name)]); err != nil {
				d.log.Error("adopt service", "app", app.Name, "service", rec.Name, "err", err)
			}
		}
	}
	if err := d.adoptTasks(ctx, apps); err != nil {
		return fmt.Errorf("re-adopt tasks: %w", err)
	}
	d.startScheduler(ctx, apps)
	ours := map[string]bool{}
	for _, a := range apps {
		ours[a.Name] = true
	}
	d.bg.Add(1)
	go func() { defer d.bg.Done(); d.sweepLate(ctx, started, ours) }()
	return nil
}

// lateSweeps are when, after adopt, the leftovers of the previous daemon
// are looked for again.
var lateSweeps = []time.Duration{2 * time.Second, 8 * time.Second}

// sweepLate removes what the previous daemon was still making when it
// died: the engine completes a create (or start) it was asked for even
// after the asker is gone, so such a container can appear after adopt
// listed the containers, and nothing would ever remove it. Only containers
// created before this daemon started are considered, so nothing of its own
// is touched.
func (d *Daemon) sweepLate(ctx context.Context, started time.Time, apps map[string]bool) {
	for _, wait := range lateSweeps {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		for app := range apps {
			d.sweepLeftovers(ctx, started, app)
		}
	}
}

// sweepLeftovers removes app's containers created before started that the
// state does not know: instances and sidecars of a revision neither active
// nor previous, or of the serving revision but not among its instances;
// tasks not running; task network holders neither ready nor in use.
func (d *Daemon) sweepLeftovers(ctx context.Context, started time.Time, app string) {
	cs, err := d.engine.List(ctx, map[string]string{runtime.LabelApp: app})
	if err != nil {
		return
	}
	kept := map[string]map[int]bool{} // by service: revisions active or previous
	keptOf := func(svc string) map[int]bool {
		if k, ok := kept[svc]; ok {
			return k
		}
		k := map[int]bool{}
		revs, err := d.store.ListRevisions(ctx, app, svc)
		if err != nil {
			return nil // unknown: keep everything
		}
		for _, r := range revs {
			if r.Status == store.RevisionActive || r.Status == store.RevisionPrevious {
				k[r.Number] = true
			}
		}
		kept[svc] = k
		return k
	}
	inUse, ready := map[string]bool{}, map[string]bool{}
	for _, c := range cs {
		if c.Labels[runtime.LabelRole] == string(runtime.RoleTask) {
			inUse[c.Labels[labelTaskNet]] = true
		}
	}
	d.taskNets.mu.Lock()
	for _, r := range d.taskNets.app(app).ready {
		ready[r.id] = true
	}
	d.taskNets.mu.Unlock()
	var removed []string
	for _, c := range cs {
		if c.CreatedAt.IsZero() || !c.CreatedAt.Before(started) {
			continue
		}
		l := c.Labels
		n, _ := strconv.Atoi(l[runtime.LabelRevision])
		stale := false
		switch runtime.Role(l[runtime.LabelRole]) {
		case runtime.RoleInstance, runtime.RoleSidecar:
			s := d.lookupService(app, l[runtime.LabelService])
			if s == nil {
				continue
			}
			k := keptOf(s.name)
			s.mu.Lock()
			switch {
			case s.busy != "" || k == nil:
			case !k[n]:
				stale = true
			case n == s.rev && !s.paused:
				// A replacement the dead daemon was making: the serving
				// instances are all known since adopt.
				stale = !slices.ContainsFunc(s.instances, func(in *instance) bool { return in.id == l[runtime.LabelInstance] })
			}
			s.mu.Unlock()
		case runtime.RoleTask:
			id := l[runtime.LabelTask]
			rec, err := d.store.GetTask(ctx, id) // an ID prefix may find another
			stale = errors.Is(err, store.ErrNotFound) || err == nil && (rec.ID != id || rec.Status != taskRunning.String())
		case runtime.RoleTaskNet:
			stale = !ready[c.ID] && !inUse[c.ID]
		}
		if stale {
			_ = d.engine.Remove(ctx, c.ID)
			removed = append(removed, c.Name)
		}
	}
	if len(removed) > 0 {
		d.event(app, "", "recover", fmt.Sprintf("removed %d container(s) the stopped daemon was still making: %s", len(removed), strings.Join(removed, ", ")))
	}
}

// adoptTasks takes back the task containers a previous daemon left: a
// running one is followed to its end as if it had never been left, one that
// ended meanwhile is recorded from its exit code and logs (the same watch,
// which finds it over at once), and a task the store says runs but whose
// container is gone is recorded lost. Either way no container is orphaned.
// Only the apps of this daemon's store are touched: an engine may be shared
// (by tests, by a second data directory).
func (d *Daemon) adoptTasks(ctx context.Context, apps []store.App) error {
	ours := map[string]bool{}
	for _, a := range apps {
		ours[a.Name] = true
	}
	cs, err := d.engine.List(ctx, map[string]string{runtime.LabelRole: string(runtime.RoleTask)})
	if err != nil {
		return fmt.Errorf("list task containers: %w", err)
	}
	seen := map[string]bool{}
	netInUse := map[string]bool{} // task_net.go
	for _, c := range cs {
		if !ours[c.Labels[runtime.LabelApp]] {
			continue
		}
		id, net := c.Labels[runtime.LabelTask], c.Labels[labelTaskNet]
		rec, err := d.store.GetTask(ctx, id)
		if err != nil || rec.ID != id || rec.Status != taskRunning.String() {
			// Recorded already (the daemon stopped before removing it),
			// or never recorded (it stopped between create and record).
			_ = d.engine.Remove(ctx, c.ID)
			d.removeTaskNet(net)
			continue
		}
		seen[id] = true
		rec.ContainerID = c.ID
		if c.State == "created" {
			_ = d.engine.Remove(ctx, c.ID)
			d.removeTaskNet(net)
			rec.Status, rec.FinishedAt = taskFailed.String(), time.Now().UTC()
			rec.Message = "could not start: the daemon stopped before the task started"
			if err := d.store.PutTask(ctx, rec); err != nil {
				return err
			}
			continue
		}
		run := newTaskRun(rec)
		run.net, netInUse[net] = net, true
		var deadline time.Time
		if v := c.Labels[labelTaskTimeout]; v != "" {
			if timeout, err := time.ParseDuration(v); err == nil && timeout > 0 {
				start := c.StartedAt
				if start.IsZero() {
					start = rec.StartedAt
				}
				deadline, run.timeout = start.Add(timeout), timeout
			}
		}
		d.tasks.add(run)
		d.watchTask(run, nil, deadline)
		d.log.Info("task adopted", "task", id, "app", rec.App, "running", c.Running)
	}
	recs, err := d.store.ListTasks(ctx, "", 0)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if rec.Status != taskRunning.String() || seen[rec.ID] {
			continue
		}
		rec.Status, rec.FinishedAt = taskLost.String(), time.Now().UTC()
		rec.Message = "its container disappeared while the daemon was down"
		if err := d.store.PutTask(ctx, rec); err != nil {
			return err
		}
		d.event(rec.App, rec.Service, "task", fmt.Sprintf("task %s (%s) lost: %s", rec.ID, taskLabel(rec), rec.Message))
	}
	if err := d.adoptTaskNets(ctx, ours, netInUse); err != nil {
		return err
	}
	for app := range ours {
		d.warmTaskNet(app)
	}
	return nil
}

func (d *Daemon) adoptService(ctx context.Context, rec store.Service, cs []runtime.Container) error {
	s := d.service(rec.App, rec.Name)
	revs, err := d.store.ListRevisions(ctx, rec.App, rec.Name)
	if err != nil {
		return err
	}
	fixes, prev := settleRevisions(rec.CurrentRevision, revs)
	var notes []string // what the start settled, for berth events
	for _, f := range fixes {
		r := f.rev
		r.Status = f.status
		if f.message != "" {
			r.Message = f.message
		}
		if err := d.store.PutRevision(ctx, r); err != nil {
			return err
		}
		notes = append(notes, fmt.Sprintf("revision %d %s -> %s (%s)", r.Number, f.rev.Status, f.status, f.why))
	}
	keep := map[int]bool{}
	if prev != 0 {
		keep[prev] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused, s.desired, s.rev = rec.Paused, rec.Instances, rec.CurrentRevision
	for _, f := range fixes {
		if f.status == store.RevisionFailed && f.rev.Number > s.rev {
			// berth status says how the last deploy ended, as a deploy
			// that failed while the daemon ran would.
			s.lastFailure = fmt.Sprintf("revision %d: the daemon stopped during this deploy", f.rev.Number)
		}
	}
	if s.rev != 0 {
		rv, _, err := d.loadRevision(ctx, rec.App, rec.Name, s.rev)
		if err != nil {
			return err
		}
		s.spec, s.image = rv.spec, rv.image
	}
	removed := map[int]int{} // containers of revisions neither serving nor kept
	for _, c := range cs {
		n, _ := strconv.Atoi(c.Labels[runtime.LabelRevision])
		switch {
		case n == s.rev && c.Running && !s.paused:
			s.instances = append(s.instances, &instance{
				id: c.Labels[runtime.LabelInstance], containerID: c.ID, rev: n,
				addr: c.HostAddr, state: stateHealthy, startedAt: c.StartedAt,
			})
		case keep[n] && c.State == "paused":
			// A rollback target frozen for its warm window: the window's
			// timer died with the old daemon, so stop it now.
			d.cleanUpLater(ctx, "stop", c, func(ctx context.Context) error { return d.engine.Stop(ctx, c.ID, 0) })
		case n == s.rev && s.paused, keep[n] && !c.Running:
			// Stopped and kept: the resume or rollback target.
		case keep[n]:
			d.cleanUpLater(ctx, "stop", c, func(ctx context.Context) error { return d.engine.Stop(ctx, c.ID, 0) })
		default:
			// Crashed while the daemon was away, or left by an unfinished
			// deploy or by a revision retired above: the reconciler starts
			// fresh instances of the serving one.
			if n != s.rev {
				removed[n]++
			}
			d.cleanUpLater(ctx, "remove", c, func(ctx context.Context) error { return d.engine.Remove(ctx, c.ID) })
		}
	}
	for _, n := range slices.Sorted(maps.Keys(removed)) {
		notes = append(notes, fmt.Sprintf("removed %d container(s) of revision %d", removed[n], n))
	}
	d.adoptGroups(ctx, s, cs, keep) // sidecars and network holders (group.go)
	d.publish(s)
	ins := s.instances
	d.log.Info("adopted", "app", rec.App, "service", rec.Name, "revision", s.rev, "instances", len(ins), "paused", s.paused)
	s.mu.Unlock()
	if len(notes) > 0 {
		msg := fmt.Sprintf("start-up after an unclean stop: revision %d serves", rec.CurrentRevision)
		if prev != 0 {
			msg += fmt.Sprintf(", revision %d is the rollback target", prev)
		}
		d.event(rec.App, rec.Name, "recover", msg+"; "+strings.Join(notes, "; "))
	}
	for _, in := range ins {
		d.monitor(s, in)
	}
	s.mu.Lock()
	return nil
}

// revisionFix is a stored revision's status corrected at start-up.
type revisionFix struct {
	rev     store.Revision // as stored
	status  store.RevisionStatus
	message string // "": keep the stored one
	why     string
}

// settleRevisions decides what a service's stored revisions must be after a
// daemon start, whatever point of a deploy or rollback the last daemon died
// at: the serving one (current) active; one still deploying failed (its
// switch never happened); of the others marked active or previous, one
// stays previous, the rollback target, and the rest are retired. The kept
// one is the one the service left last: one still marked active (the
// daemon died between recording the switch and marking the old revision
// previous), else the highest numbered. It returns the changes and the
// kept revision (0: none).
func settleRevisions(current int, revs []store.Revision) (fixes []revisionFix, previous int) {
	var left []store.Revision // active or previous, not serving
	for _, r := range revs {
		switch {
		case r.Number == current:
			if r.Status != store.RevisionActive {
				fixes = append(fixes, revisionFix{rev: r, status: store.RevisionActive, why: "it serves: the switch was recorded"})
			}
		case r.Status == store.RevisionDeploying:
			fixes = append(fixes, revisionFix{rev: r, status: store.RevisionFailed,
				message: "the daemon stopped during this deploy", why: "the daemon stopped before the switch"})
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
			fixes = append(fixes, revisionFix{rev: r, status: store.RevisionPrevious, why: "the service left it last"})
		case i != best:
			fixes = append(fixes, revisionFix{rev: r, status: store.RevisionRetired, why: "only one rollback target is kept"})
		}
	}
	return fixes, left[best].Number
}
