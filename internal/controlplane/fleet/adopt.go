package fleet

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/store"
)

// Adopt rebuilds the live state from the store and the engine's labelled
// containers after a daemon start. Running instances of the serving
// revision are taken back as they are (not restarted) and published to the
// edge at once; their monitors then verify them. Leftovers of a deploy the
// daemon died in are removed, and that revision is marked failed.
func (f *Fleet) Adopt(ctx context.Context) error {
	started := time.Now()
	apps, err := f.store.ListApps(ctx)
	if err != nil {
		return err
	}
	pods, err := f.pods.ListPods(ctx, map[string]string{runtime.LabelRole: string(runtime.RoleInstance)})
	if err != nil {
		return fmt.Errorf("list instances: %w", err)
	}
	byService := map[string][]runtime.Pod{}
	for _, p := range pods {
		k := serviceKey(p.Labels[runtime.LabelApp], p.Labels[runtime.LabelService])
		byService[k] = append(byService[k], p)
	}
	for _, app := range apps {
		svcs, err := f.store.ListServices(ctx, app.Name)
		if err != nil {
			return err
		}
		f.internal.Restore(ctx, app) // internal/controlplane/traffic, before the routes carry its names
		for _, rec := range svcs {
			if err := f.adoptService(ctx, rec, byService[serviceKey(app.Name, rec.Name)]); err != nil {
				f.log.Error("adopt service", "app", app.Name, "service", rec.Name, "err", err)
			}
		}
	}
	if err := f.tasks.Adopt(ctx, apps); err != nil {
		return fmt.Errorf("re-adopt tasks: %w", err)
	}
	f.tasks.StartSchedules(ctx, apps)
	ours := map[string]bool{}
	for _, a := range apps {
		ours[a.Name] = true
	}
	f.bg.Add(1)
	go func() { defer f.bg.Done(); f.sweepLate(ctx, started, ours) }()
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
func (f *Fleet) sweepLate(ctx context.Context, started time.Time, apps map[string]bool) {
	for _, wait := range lateSweeps {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		for app := range apps {
			f.sweepLeftovers(ctx, started, app)
		}
	}
}

// sweepLeftovers removes app's containers created before started that the
// state does not know: instances and sidecars of a revision neither active
// nor previous, or of the serving revision but not among its instances;
// tasks not running; task network holders neither ready nor in use.
func (f *Fleet) sweepLeftovers(ctx context.Context, started time.Time, app string) {
	pods, err := f.pods.ListPods(ctx, map[string]string{runtime.LabelApp: app})
	if err != nil {
		return
	}
	kept := map[string]map[int]bool{} // by service: revisions active or previous
	keptOf := func(svc string) map[int]bool {
		if k, ok := kept[svc]; ok {
			return k
		}
		k := map[int]bool{}
		revs, err := f.store.ListRevisions(ctx, app, svc)
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
	var removed []string
	for _, p := range pods {
		if p.CreatedAt.IsZero() || !p.CreatedAt.Before(started) {
			continue
		}
		l := p.Labels
		n, _ := strconv.Atoi(l[runtime.LabelRevision])
		stale := false
		switch runtime.Role(l[runtime.LabelRole]) {
		case runtime.RoleInstance:
			s := f.Lookup(app, l[runtime.LabelService])
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
				stale = !slices.ContainsFunc(s.instances, func(in *Instance) bool { return in.id == l[runtime.LabelInstance] })
			}
			s.mu.Unlock()
		case runtime.RoleTask:
			stale = f.tasks.Leftover(ctx, p)
		}
		if stale {
			_ = f.pods.RemovePod(ctx, p.ID)
			removed = append(removed, p.Name)
		}
	}
	if len(removed) > 0 {
		f.event(app, "", "recover", fmt.Sprintf("removed %d container(s) the stopped daemon was still making: %s", len(removed), strings.Join(removed, ", ")))
	}
}

func (f *Fleet) adoptService(ctx context.Context, rec store.Service, pods []runtime.Pod) error {
	s := f.Service(rec.App, rec.Name)
	revs, err := f.store.ListRevisions(ctx, rec.App, rec.Name)
	if err != nil {
		return err
	}
	fixes, prev := f.cfg.Settle(rec.CurrentRevision, revs)
	var notes []string // what the start settled, for berth events
	for _, fx := range fixes {
		r := fx.Rev
		r.Status = fx.Status
		if fx.Message != "" {
			r.Message = fx.Message
		}
		if err := f.store.PutRevision(ctx, r); err != nil {
			return err
		}
		notes = append(notes, fmt.Sprintf("revision %d %s -> %s (%s)", r.Number, fx.Rev.Status, fx.Status, fx.Why))
	}
	keep := map[int]bool{}
	if prev != 0 {
		keep[prev] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused, s.desired, s.rev = rec.Paused, rec.Instances, rec.CurrentRevision
	for _, fx := range fixes {
		if fx.Status == store.RevisionFailed && fx.Rev.Number > s.rev {
			// berth status says how the last deploy ended, as a deploy
			// that failed while the daemon ran would.
			s.lastFailure = fmt.Sprintf("revision %d: the daemon stopped during this deploy", fx.Rev.Number)
		}
	}
	if s.rev != 0 {
		rv, _, err := f.LoadRevision(ctx, rec.App, rec.Name, s.rev)
		if err != nil {
			return err
		}
		s.spec, s.image = rv.Spec, rv.Image
	}
	removed := map[int]int{} // pods of revisions neither serving nor kept
	for _, p := range pods {
		n, _ := strconv.Atoi(p.Labels[runtime.LabelRevision])
		// A pod whose main container stopped but a sidecar runs is
		// stopped whole; one with a container missing cannot run again.
		partlyUp := !p.Running() && slices.ContainsFunc(p.Containers, func(c runtime.ContainerStatus) bool { return c.Running })
		switch {
		case n == s.rev && p.Running() && !s.paused:
			in := &Instance{
				id: p.Labels[runtime.LabelInstance], podID: p.ID, rev: n,
				addr: p.Addr, state: StateHealthy, startedAt: p.StartedAt, sidecars: members(s.spec, p),
			}
			if why := adoptedDamage(s.spec, p); why != "" {
				in.state, in.crashWhy = StateUnhealthy, why+" while the daemon was down"
			}
			s.instances = append(s.instances, in)
		case keep[n] && p.State == runtime.PodSuspended:
			// A rollback target frozen for its warm window: the window's
			// timer died with the old daemon, so stop it now.
			f.cleanUpLater(ctx, "stop", p, func(ctx context.Context) error { return f.pods.StopPod(ctx, p.ID, 0) })
		case (n == s.rev && s.paused || keep[n]) && !p.Running() && !partlyUp:
			// Stopped and kept: the resume or rollback target.
		case keep[n] || n == s.rev && s.paused:
			f.cleanUpLater(ctx, "stop", p, func(ctx context.Context) error { return f.pods.StopPod(ctx, p.ID, 0) })
		default:
			// Crashed while the daemon was away, or left by an unfinished
			// deploy or by a revision retired above: the reconciler starts
			// fresh instances of the serving one.
			if n != s.rev {
				removed[n]++
			}
			f.cleanUpLater(ctx, "remove", p, func(ctx context.Context) error { return f.pods.RemovePod(ctx, p.ID) })
		}
	}
	for _, n := range slices.Sorted(maps.Keys(removed)) {
		notes = append(notes, fmt.Sprintf("removed %d instance(s) of revision %d", removed[n], n))
	}
	f.publish(s)
	ins := s.instances
	f.log.Info("adopted", "app", rec.App, "service", rec.Name, "revision", s.rev, "instances", len(ins), "paused", s.paused)
	s.mu.Unlock()
	if len(notes) > 0 {
		msg := fmt.Sprintf("start-up after an unclean stop: revision %d serves", rec.CurrentRevision)
		if prev != 0 {
			msg += fmt.Sprintf(", revision %d is the rollback target", prev)
		}
		f.event(rec.App, rec.Name, "recover", msg+"; "+strings.Join(notes, "; "))
	}
	for _, in := range ins {
		f.Monitor(s, in)
	}
	s.mu.Lock()
	return nil
}

// adoptedDamage says what a running pod found at start lacks to serve: its
// network, or an essential sidecar; "" when it is whole.
func adoptedDamage(sp *spec.Service, p runtime.Pod) string {
	if p.Broken != "" {
		return lostNetwork(p)
	}
	if sp == nil {
		return ""
	}
	vital := vitalSidecars(sp)
	for _, name := range SidecarNames(sp) {
		if !vital[name] {
			continue
		}
		if c, ok := p.Container(name); !ok || !c.Running {
			return "lost its essential sidecar " + name
		}
	}
	return ""
}

// RevisionFix is a stored revision's status corrected at start-up, which
// Config.Settle decides and Adopt records.
type RevisionFix struct {
	Rev     store.Revision // as stored
	Status  store.RevisionStatus
	Message string // "": keep the stored one
	Why     string
}

// cleanUpTimeout bounds a stop or removal that adopt leaves running.
const cleanUpTimeout = 30 * time.Second

// cleanUpLater stops or removes (call) a pod that adopt does not keep,
// without holding up the start. f.bg tracks it, since the store closes
// only once such work is over (Config.BG). The daemon stopping does not
// cancel it (a half-done removal is wasted work), but cleanUpTimeout
// bounds it, so a stuck engine cannot hold up the shutdown.
func (f *Fleet) cleanUpLater(ctx context.Context, what string, p runtime.Pod, call func(context.Context) error) {
	f.bg.Add(1)
	go func() {
		defer f.bg.Done()
		defer f.contain("adopt: "+what, "pod", p.Name)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanUpTimeout)
		defer cancel()
		if err := call(ctx); err != nil {
			f.log.Warn("adopt: "+what+" a pod it does not keep", "pod", p.Name, "err", err)
		}
	}()
}
