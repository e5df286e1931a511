package controlplane

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/tasks"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/store"
)

// The task API: each handler reads or refuses the request and leaves the
// task to the tasks' Runner (d.tasks).

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
	ts, err := d.tasks.Resolve(r.Context(), app, req)
	if err != nil {
		fail(w, err)
		return
	}
	if req.Detach {
		run, err := d.tasks.Start(d.ctx, ts, tasks.Hooks{})
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, apiTask(run.Record()))
		return
	}

	st := newStream(w)
	defer st.close()
	var id string
	lines := &tasks.LineSplitter{Emit: func(stream, line string) {
		st.send(api.Message{Kind: api.KindLog, Source: id, Stream: stream, Text: line})
	}}
	run, err := d.tasks.Start(d.ctx, ts, tasks.Hooks{
		Started: func(rec store.Task) {
			id = rec.ID
			t := apiTask(rec)
			st.send(api.Message{Kind: api.KindTask, Task: &t})
		},
		Output: lines.Write,
	})
	if err != nil {
		res := failure(err, nil)
		var se *tasks.StartError
		if errors.As(err, &se) {
			t := apiTask(se.Task)
			res.Task = &t
		}
		st.send(res)
		return
	}
	select {
	case <-run.Done():
	case <-r.Context().Done():
		// Ctrl-C on an attached task stops the task, not only the CLI.
		if d.ctx.Err() == nil {
			d.tasks.Stop(run, tasks.ErrClientGone)
		}
		return
	case <-d.ctx.Done():
		return
	}
	lines.Flush()
	t := apiTask(run.Record())
	st.send(api.Message{Kind: api.KindResult, Time: time.Now(), OK: true, Task: &t})
}

// taskSession runs a task attached to the client's terminal or pipes
// (Upgrade: berth-attach); the client going away stops the task.
func (d *Daemon) taskSession(w http.ResponseWriter, r *http.Request, app string, req api.TaskRunRequest) {
	if req.Detach {
		fail(w, fmt.Errorf("%w: a detached task cannot be interactive: drop --detach or -i/-t", ErrInvalid))
		return
	}
	ts, err := d.tasks.Resolve(r.Context(), app, req)
	if err != nil {
		fail(w, err)
		return
	}
	conn, err := upgrade(w)
	if err != nil {
		d.log.Warn("task session", "app", app, "err", err)
		return
	}
	defer conn.Close()
	d.tasks.Attach(conn, ts)
}

func (d *Daemon) handleTaskList(w http.ResponseWriter, r *http.Request) {
	app := r.URL.Query().Get("app")
	if app != "" {
		if _, err := d.store.GetApp(r.Context(), app); err != nil {
			fail(w, fmt.Errorf("%w: no app named %q; see \"berth status\"", ErrNotFound, app))
			return
		}
	}
	ts, err := d.tasks.List(r.Context(), app, atoiDefault(r.URL.Query().Get("limit"), defaultTaskList))
	if err != nil {
		fail(w, err)
		return
	}
	out := []api.Task{}
	for _, t := range ts {
		out = append(out, apiTask(t))
	}
	writeJSON(w, http.StatusOK, out)
}

func (d *Daemon) handleTaskGet(w http.ResponseWriter, r *http.Request) {
	t, err := d.tasks.Find(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, apiTask(t))
}

// handleTaskLogs streams a task's output: from its pod while it runs (to
// its end with follow=1), from the store once it has finished.
func (d *Daemon) handleTaskLogs(w http.ResponseWriter, r *http.Request) {
	t, err := d.tasks.Find(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	follow := r.URL.Query().Get("follow") == "1"
	st := newStream(w)
	defer st.close()
	ctx, cancel := d.followContext(r) // stream.go
	defer cancel()
	d.tasks.Logs(ctx, t, follow, func(l runtime.LogLine) {
		st.send(api.Message{Kind: api.KindLog, Time: l.Time, Source: t.ID, Stream: l.Stream, Text: l.Text})
	})
}

// handleTaskStop stops a running task and answers once it has ended; a
// finished task is returned as it is.
func (d *Daemon) handleTaskStop(w http.ResponseWriter, r *http.Request) {
	t, err := d.tasks.Find(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	run := d.tasks.Running(t.ID)
	if run == nil {
		writeJSON(w, http.StatusOK, apiTask(t))
		return
	}
	if t, err = d.tasks.StopWait(r.Context(), run); err != nil {
		return // the client went
	}
	writeJSON(w, http.StatusOK, apiTask(t))
}

// apiTask is a task as the API shows it (without its output).
func apiTask(t store.Task) api.Task {
	cmd := t.Command
	if cmd == nil {
		cmd = []string{}
	}
	return api.Task{
		ID: t.ID, App: t.App, Service: t.Service, Name: t.Name, Kind: t.Kind, Command: cmd,
		Revision: t.Revision, Status: t.Status, ExitCode: t.ExitCode,
		StartedAt: t.StartedAt, FinishedAt: t.FinishedAt, Message: t.Message,
	}
}
