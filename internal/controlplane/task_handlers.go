package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/store"
)

// defaultTaskList bounds `berth task ls` when no limit is asked for.
const defaultTaskList = 100

// handleTaskRun runs a task: streamed (NDJSON: the task, its output lines,
// a result with the finished task), detached (the task at once), or as an
// interactive session (Upgrade: berth-attach).
func (d *Daemon) handleTaskRun(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	var req api.TaskRunRequest
	if err := decode(r, &req); err != nil {
		fail(w, err)
		return
	}
	if isUpgrade(r) {
		d.taskSession(w, r, app, req)
		return
	}
	if req.Stdin || req.TTY {
		fail(w, fmt.Errorf("%w: an interactive task (stdin or tty) needs the attach protocol (Upgrade: %s)", ErrInvalid, "berth-attach"))
		return
	}
	ts, err := d.resolveTask(r.Context(), app, req, kindOneOff)
	if err != nil {
		fail(w, err)
		return
	}
	if req.Detach {
		run, err := d.startTask(d.ctx, ts, taskHooks{})
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, apiTask(run.record()))
		return
	}

	st := newStream(w)
	defer st.close()
	var id string
	lines := &lineSplitter{emit: func(stream, line string) {
		st.send(api.Message{Kind: api.KindLog, Source: id, Stream: stream, Text: line})
	}}
	run, err := d.startTask(d.ctx, ts, taskHooks{
		started: func(rec store.Task) {
			id = rec.ID
			t := apiTask(rec)
			st.send(api.Message{Kind: api.KindTask, Task: &t})
		},
		output: lines.write,
	})
	if err != nil {
		res := failure(err, nil)
		var se *taskStartError
		if errors.As(err, &se) {
			t := apiTask(se.rec)
			res.Task = &t
		}
		st.send(res)
		return
	}
	select {
	case <-run.done:
	case <-r.Context().Done():
		// Ctrl-C on an attached task stops the task, not only the CLI.
		if d.ctx.Err() == nil {
			d.stopTask(run, errClientGone)
		}
		return
	case <-d.ctx.Done():
		return
	}
	lines.flush()
	t := apiTask(run.record())
	st.send(api.Message{Kind: api.KindResult, Time: time.Now(), OK: true, Task: &t})
}

// findTask returns the task with this ID or unique ID prefix.
func (d *Daemon) findTask(ctx context.Context, id string) (store.Task, error) {
	t, err := d.store.GetTask(ctx, id)
	switch {
	case errors.Is(err, store.ErrAmbiguous):
		return t, fmt.Errorf("%w: task ID %q matches several tasks; give more of it", ErrInvalid, id)
	case errors.Is(err, store.ErrNotFound):
		return t, fmt.Errorf("%w: no task %q; see \"berth task ls\"", ErrNotFound, id)
	case err != nil:
		return t, err
	}
	if run := d.tasks.get(t.ID); run != nil {
		t = run.record()
	}
	return t, nil
}

func (d *Daemon) handleTaskList(w http.ResponseWriter, r *http.Request) {
	app := r.URL.Query().Get("app")
	if app != "" {
		if _, err := d.store.GetApp(r.Context(), app); err != nil {
			fail(w, fmt.Errorf("%w: no app named %q; see \"berth status\"", ErrNotFound, app))
			return
		}
	}
	ts, err := d.store.ListTasks(r.Context(), app, atoiDefault(r.URL.Query().Get("limit"), defaultTaskList))
	if err != nil {
		fail(w, err)
		return
	}
	out := []api.Task{}
	for _, t := range ts {
		if run := d.tasks.get(t.ID); run != nil {
			t = run.record()
		}
		out = append(out, apiTask(t))
	}
	writeJSON(w, http.StatusOK, out)
}

func (d *Daemon) handleTaskGet(w http.ResponseWriter, r *http.Request) {
	t, err := d.findTask(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, apiTask(t))
}

// handleTaskLogs streams a task's output: from its container while it runs
// (to its end with follow=1), from the store once it has finished.
func (d *Daemon) handleTaskLogs(w http.ResponseWriter, r *http.Request) {
	t, err := d.findTask(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	follow := r.URL.Query().Get("follow") == "1"
	st := newStream(w)
	defer st.close()
	sent := 0
	if run := d.tasks.get(t.ID); run != nil && t.Status == api.TaskRunning {
		ctx, cancel := d.followContext(r) // stream.go
		defer cancel()
		err := d.pods.Logs(ctx, t.ContainerID, "", runtime.LogOptions{Follow: follow}, func(l runtime.LogLine) {
			st.send(api.Message{Kind: api.KindLog, Time: l.Time, Source: t.ID, Stream: l.Stream, Text: l.Text})
			sent++
		})
		if ctx.Err() != nil {
			return
		}
		if err == nil && sent > 0 {
			return
		}
		// It finished, and its container went (or is going: the engine
		// then answers with no lines and no error), while this read: the
		// rest is in its record once it is done.
		if err == nil {
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
		t = run.record()
	}
	lines := lastLines(t.Output, len(t.Output)+1)
	for _, line := range lines[min(sent, len(lines)):] {
		st.send(api.Message{Kind: api.KindLog, Time: t.FinishedAt, Source: t.ID, Text: line})
	}
}

// handleTaskStop stops a running task and answers once it has ended; a
// finished task is returned as it is.
func (d *Daemon) handleTaskStop(w http.ResponseWriter, r *http.Request) {
	t, err := d.findTask(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	run := d.tasks.get(t.ID)
	if run == nil {
		writeJSON(w, http.StatusOK, apiTask(t))
		return
	}
	d.stopTask(run, errTaskStopped)
	select {
	case <-run.done:
	case <-time.After(spec.DefaultStopGrace + outputGrace):
	case <-r.Context().Done():
		return
	}
	writeJSON(w, http.StatusOK, apiTask(run.record()))
}

// taskNote says why berth ended a task, for a session's Exit frame.
func taskNote(t store.Task) string {
	switch t.Status {
	case api.TaskStopped, api.TaskTimeout, api.TaskLost:
		return fmt.Sprintf("task %s %s", t.ID, strings.TrimSpace(t.Message))
	}
	return ""
}
