package tasks

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-dev/berth/internal/controlplane/apierr"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/store"
)

// What the API reads of tasks: a running task as it stands, others as
// recorded.

// Find returns the task with this ID or unique ID prefix.
func (r *Runner) Find(ctx context.Context, id string) (store.Task, error) {
	t, err := r.cfg.Store.GetTask(ctx, id)
	switch {
	case errors.Is(err, store.ErrAmbiguous):
		return t, fmt.Errorf("%w: task ID %q matches several tasks; give more of it", apierr.ErrInvalid, id)
	case errors.Is(err, store.ErrNotFound):
		return t, fmt.Errorf("%w: no task %q; see \"berth task ls\"", apierr.ErrNotFound, id)
	case err != nil:
		return t, err
	}
	if run := r.Running(t.ID); run != nil {
		t = run.Record()
	}
	return t, nil
}

// List returns up to limit tasks of app (all apps: ""), newest first.
func (r *Runner) List(ctx context.Context, app string, limit int) ([]store.Task, error) {
	ts, err := r.cfg.Store.ListTasks(ctx, app, limit)
	if err != nil {
		return nil, err
	}
	for i, t := range ts {
		if run := r.Running(t.ID); run != nil {
			ts[i] = run.Record()
		}
	}
	return ts, nil
}

// Logs gives t's output to line: from its pod while it runs (to its end
// with follow), from its record once it has finished (those lines have
// the task's end as their time, and no stream). ctx ends it early.
func (r *Runner) Logs(ctx context.Context, t store.Task, follow bool, line func(runtime.LogLine)) {
	sent := 0
	run := r.Running(t.ID)
	if run == nil && t.Status == running.String() {
		// It ended since t was read: its record has the output now.
		if rec, err := r.cfg.Store.GetTask(ctx, t.ID); err == nil && rec.ID == t.ID {
			t = rec
		}
	}
	if run != nil && t.Status == running.String() {
		err := r.cfg.Pods.Logs(ctx, t.ContainerID, "", runtime.LogOptions{Follow: follow}, func(l runtime.LogLine) {
			line(l)
			sent++
		})
		if ctx.Err() != nil {
			return
		}
		if err == nil && sent > 0 {
			return
		}
		// It finished, and its pod went (or is going: the engine then
		// answers with no lines and no error), while this read: the rest
		// is in its record once it is done. A follow that ended without an
		// error saw the task's process end, so its record is coming; a
		// look without follow that found nothing may be a task silent so
		// far.
		if err == nil && !follow {
			select {
			case <-run.done:
			default:
				return // still running and really silent so far
			}
		}
		select {
		case <-run.done:
		case <-ctx.Done():
			return
		}
		t = run.Record()
	}
	lines := lastLines(t.Output, len(t.Output)+1)
	for _, l := range lines[min(sent, len(lines)):] {
		line(runtime.LogLine{Time: t.FinishedAt, Text: l})
	}
}
