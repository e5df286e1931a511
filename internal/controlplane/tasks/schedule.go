package tasks

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/apierr"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/store"
)

// scheduler runs the spec's scheduled tasks on time (UTC) while the daemon
// runs. Each app's entries are replaced when it is deployed, installed from
// the stored spec when the daemon starts, and removed when it is destroyed.
type scheduler struct {
	cron   *cron.Cron
	parser cron.Parser

	mu      sync.Mutex                // guards entries and active
	entries map[string][]cron.EntryID // by app
	active  map[string]string         // "app/task" -> the running task's ID ("" while it starts)
}

func newScheduler(seconds bool) *scheduler {
	fields := cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor
	if seconds {
		fields = cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Descriptor
	}
	p := cron.NewParser(fields)
	return &scheduler{
		cron:    cron.New(cron.WithLocation(time.UTC), cron.WithParser(p)),
		parser:  p,
		entries: map[string][]cron.EntryID{},
		active:  map[string]string{},
	}
}

// StartSchedules installs every app's schedules from its stored spec and
// runs them until ctx ends; it then waits for the runs in flight to return
// (their tasks go on, to be re-adopted).
func (r *Runner) StartSchedules(ctx context.Context, apps []store.App) {
	sc := newScheduler(r.cfg.CronSeconds)
	r.mu.Lock()
	r.sched = sc
	r.mu.Unlock()
	for _, a := range apps {
		sp, err := spec.Parse(a.SpecFile, []byte(a.SpecYAML))
		if err != nil {
			r.cfg.Log.Error("stored spec does not parse; its schedules are not installed", "app", a.Name, "err", err)
			continue
		}
		r.InstallSchedules(sp)
	}
	sc.cron.Start()
	r.cfg.BG.Add(1)
	go func() {
		defer r.cfg.BG.Done()
		<-ctx.Done()
		<-sc.cron.Stop().Done()
	}()
}

// schedules returns the scheduler, nil before StartSchedules.
func (r *Runner) schedules() *scheduler {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sched
}

// InstallSchedules replaces the app's scheduled tasks with the spec's (a
// deploy).
func (r *Runner) InstallSchedules(sp *spec.Spec) {
	sc := r.schedules()
	if sc == nil {
		return
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, id := range sc.entries[sp.App] {
		sc.cron.Remove(id)
	}
	delete(sc.entries, sp.App)
	for _, name := range sp.TaskOrder {
		t := sp.Tasks[name]
		if t == nil || t.Schedule == "" {
			continue
		}
		sched, err := sc.parser.Parse(t.Schedule)
		if err != nil {
			// The spec's validation accepted it: this is a bug, not input.
			r.cfg.Log.Error("schedule does not parse", "app", sp.App, "task", name, "schedule", t.Schedule, "err", err)
			continue
		}
		task := *t
		id := sc.cron.Schedule(sched, cron.FuncJob(func() { r.runScheduled(sc, sp.App, task) }))
		sc.entries[sp.App] = append(sc.entries[sp.App], id)
		r.cfg.Log.Info("task scheduled", "app", sp.App, "task", name, "schedule", t.Schedule, "next", sc.cron.Entry(id).Next)
	}
}

// RemoveSchedules drops the app's scheduled tasks (the app is destroyed).
func (r *Runner) RemoveSchedules(app string) {
	sc := r.schedules()
	if sc == nil {
		return
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, id := range sc.entries[app] {
		sc.cron.Remove(id)
	}
	delete(sc.entries, app)
}

// runScheduled is one due run of a scheduled task. A run still going when
// the next is due makes that one skipped, and recorded as such.
func (r *Runner) runScheduled(sc *scheduler, app string, t spec.Task) {
	ctx := r.cfg.Ctx
	if ctx.Err() != nil {
		return
	}
	key := app + "/" + t.Name
	sc.mu.Lock()
	prev, busy := sc.active[key]
	if !busy {
		if run := r.runningNamed(app, t.Name, kindScheduled); run != nil {
			prev, busy = run.id, true
		}
	}
	if !busy {
		sc.active[key] = ""
	}
	sc.mu.Unlock()
	if busy {
		msg := "skipped: the previous run was still going"
		if prev != "" {
			msg = fmt.Sprintf("skipped: the previous run (task %s) was still going", prev)
		}
		r.recordUnrun(app, t, skipped, msg)
		return
	}
	defer func() {
		sc.mu.Lock()
		delete(sc.active, key)
		sc.mu.Unlock()
	}()

	ts, err := r.resolve(ctx, app, api.TaskRunRequest{Name: t.Name}, kindScheduled)
	if errors.Is(err, apierr.ErrNoRevision) {
		// Due during the app's first deploy: there is nothing to run yet.
		r.recordUnrun(app, t, skipped, fmt.Sprintf("skipped: service %s has no revision yet", t.Service))
		return
	}
	if err != nil {
		r.recordUnrun(app, t, failed, "could not run: "+oneLine(err.Error()))
		return
	}
	run, err := r.Start(ctx, ts, Hooks{Started: func(rec store.Task) {
		sc.mu.Lock()
		sc.active[key] = rec.ID
		sc.mu.Unlock()
	}})
	if err != nil {
		return // recorded failed by Start
	}
	select {
	case <-run.done:
	case <-ctx.Done():
	}
}

// recordUnrun records a scheduled run that did not run.
func (r *Runner) recordUnrun(app string, t spec.Task, st state, msg string) {
	now := time.Now().UTC()
	rec := store.Task{
		ID: newID(), App: app, Service: t.Service, Name: t.Name, Kind: string(kindScheduled),
		Command: t.Command, Status: st.String(), StartedAt: now, FinishedAt: now, Message: msg,
	}
	if err := r.cfg.Store.PutTask(context.WithoutCancel(r.cfg.Ctx), rec); err != nil {
		r.cfg.Log.Warn("record scheduled task", "app", app, "task", t.Name, "err", err)
		return
	}
	r.cfg.Event(app, t.Service, "task", fmt.Sprintf("scheduled task %s %s", t.Name, msg))
}
