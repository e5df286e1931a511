package controlplane

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/store"
)

// cronSeconds, set only by tests (export_test.go), reads a schedule's five
// fields as second, minute, hour, day of month and month, so a test sees a
// schedule fire within seconds. The spec's syntax does not change.
var cronSeconds bool

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

func newScheduler() *scheduler {
	fields := cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor
	if cronSeconds {
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

// startScheduler installs every app's schedules from its stored spec and
// runs them until ctx ends; it then waits for the runs in flight to return
// (their tasks go on, to be re-adopted).
func (d *Daemon) startScheduler(ctx context.Context, apps []store.App) {
	d.tasks.sched = newScheduler()
	for _, a := range apps {
		sp, err := spec.Parse(a.SpecFile, []byte(a.SpecYAML))
		if err != nil {
			d.log.Error("stored spec does not parse; its schedules are not installed", "app", a.Name, "err", err)
			continue
		}
		d.installSchedules(sp)
	}
	d.tasks.sched.cron.Start()
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		<-ctx.Done()
		<-d.tasks.sched.cron.Stop().Done()
	}()
}

// installSchedules replaces the app's scheduled tasks with the spec's.
func (d *Daemon) installSchedules(sp *spec.Spec) {
	sc := d.tasks.sched
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
			d.log.Error("schedule does not parse", "app", sp.App, "task", name, "schedule", t.Schedule, "err", err)
			continue
		}
		task := *t
		id := sc.cron.Schedule(sched, cron.FuncJob(func() { d.runScheduled(sp.App, task) }))
		sc.entries[sp.App] = append(sc.entries[sp.App], id)
		d.log.Info("task scheduled", "app", sp.App, "task", name, "schedule", t.Schedule, "next", sc.cron.Entry(id).Next)
	}
}

// removeSchedules drops the app's scheduled tasks (the app is destroyed).
func (d *Daemon) removeSchedules(app string) {
	sc := d.tasks.sched
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
func (d *Daemon) runScheduled(app string, t spec.Task) {
	ctx := d.ctx
	if ctx.Err() != nil {
		return
	}
	sc := d.tasks.sched
	key := app + "/" + t.Name
	sc.mu.Lock()
	prev, busy := sc.active[key]
	if !busy {
		if r := d.tasks.runningNamed(app, t.Name, kindScheduled); r != nil {
			prev, busy = r.id, true
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
		d.recordUnrun(app, t, taskSkipped, msg)
		return
	}
	defer func() {
		sc.mu.Lock()
		delete(sc.active, key)
		sc.mu.Unlock()
	}()

	ts, err := d.resolveTask(ctx, app, api.TaskRunRequest{Name: t.Name}, kindScheduled)
	if errors.Is(err, ErrNoRevision) {
		// Due during the app's first deploy: there is nothing to run yet.
		d.recordUnrun(app, t, taskSkipped, fmt.Sprintf("skipped: service %s has no revision yet", t.Service))
		return
	}
	if err != nil {
		d.recordUnrun(app, t, taskFailed, "could not run: "+oneLine(err.Error()))
		return
	}
	run, err := d.startTask(ctx, ts, taskHooks{started: func(rec store.Task) {
		sc.mu.Lock()
		sc.active[key] = rec.ID
		sc.mu.Unlock()
	}})
	if err != nil {
		return // recorded failed by startTask
	}
	select {
	case <-run.done:
	case <-ctx.Done():
	}
}

// recordUnrun records a scheduled run that did not run.
func (d *Daemon) recordUnrun(app string, t spec.Task, state taskState, msg string) {
	now := time.Now().UTC()
	rec := store.Task{
		ID: newID(), App: app, Service: t.Service, Name: t.Name, Kind: string(kindScheduled),
		Command: t.Command, Status: state.String(), StartedAt: now, FinishedAt: now, Message: msg,
	}
	if err := d.store.PutTask(context.WithoutCancel(d.ctx), rec); err != nil {
		d.log.Warn("record scheduled task", "app", app, "task", t.Name, "err", err)
		return
	}
	d.event(app, t.Service, "task", fmt.Sprintf("scheduled task %s %s", t.Name, msg))
}
