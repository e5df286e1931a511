package tasks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/store"
)

// Adopt takes back the task pods a previous daemon left, at a daemon's
// start: a running one is followed to its end as if it had never been
// left, one that ended meanwhile is recorded from its exit code and logs
// (the same watch, which finds it over at once), and a task the store says
// runs but whose pod is gone is recorded lost. Either way no pod is
// orphaned. Only the apps of this daemon's store are touched: an engine
// may be shared (by tests, by a second data directory).
func (r *Runner) Adopt(ctx context.Context, apps []store.App) error {
	ours := map[string]bool{}
	for _, a := range apps {
		ours[a.Name] = true
	}
	pods, err := r.cfg.Pods.ListPods(ctx, map[string]string{runtime.LabelRole: string(runtime.RoleTask)})
	if err != nil {
		return fmt.Errorf("list tasks: %w", err)
	}
	seen := map[string]bool{}
	for _, p := range pods {
		if !ours[p.Labels[runtime.LabelApp]] {
			continue
		}
		id := p.Labels[runtime.LabelTask]
		rec, err := r.cfg.Store.GetTask(ctx, id)
		if err != nil || rec.ID != id || rec.Status != running.String() {
			// Recorded already (the daemon stopped before removing it),
			// or never recorded (it stopped between create and record).
			_ = r.cfg.Pods.RemovePod(ctx, p.ID)
			continue
		}
		seen[id] = true
		rec.ContainerID = p.ID
		if p.State == runtime.PodCreated {
			_ = r.cfg.Pods.RemovePod(ctx, p.ID)
			rec.Status, rec.FinishedAt = failed.String(), time.Now().UTC()
			rec.Message = "could not start: the daemon stopped before the task started"
			if err := r.cfg.Store.PutTask(ctx, rec); err != nil {
				return err
			}
			continue
		}
		run := newRun(rec)
		var deadline time.Time
		if v := p.Labels[labelTimeout]; v != "" {
			if timeout, err := time.ParseDuration(v); err == nil && timeout > 0 {
				start := p.StartedAt
				if start.IsZero() {
					start = rec.StartedAt
				}
				deadline, run.timeout = start.Add(timeout), timeout
			}
		}
		r.add(run)
		r.watch(run, nil, deadline)
		r.cfg.Log.Info("task adopted", "task", id, "app", rec.App, "running", p.Running())
	}
	recs, err := r.cfg.Store.ListTasks(ctx, "", 0)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if rec.Status != running.String() || seen[rec.ID] {
			continue
		}
		rec.Status, rec.FinishedAt = lost.String(), time.Now().UTC()
		rec.Message = "its container disappeared while the daemon was down"
		if err := r.cfg.Store.PutTask(ctx, rec); err != nil {
			return err
		}
		r.cfg.Event(rec.App, rec.Service, "task", fmt.Sprintf("task %s (%s) lost: %s", rec.ID, label(rec), rec.Message))
	}
	for app := range ours {
		r.Warm(app)
	}
	return nil
}

// Leftover reports whether a task pod found after a daemon's start is a
// leftover of the previous daemon to remove: one whose task is not
// running (recorded as over, or never recorded).
func (r *Runner) Leftover(ctx context.Context, p runtime.Pod) bool {
	id := p.Labels[runtime.LabelTask]
	rec, err := r.cfg.Store.GetTask(ctx, id) // an ID prefix may find another
	return errors.Is(err, store.ErrNotFound) || err == nil && (rec.ID != id || rec.Status != running.String())
}
