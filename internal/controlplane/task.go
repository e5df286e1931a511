package controlplane

// A task is one run of a command in a service revision's image: `berth task
// run`, a named task of the spec, a deploy's release command or a scheduled
// run. They are one lifecycle told apart by data (taskKind, the hooks that
// watch it), never separate code paths:
//
//	          create, attach, start                 exit 0
//	(request) ─────────────────────▶ running ─────────────────────▶ succeeded
//	    │                             │ │ │ │ exit ≠ 0
//	    │ cannot start                │ │ │ └───────────────────────▶ failed
//	    └────────────▶ failed         │ │ │ berth task stop, client gone
//	                                  │ │ └─────────────────────────▶ stopped
//	(schedule due while               │ │ --timeout reached
//	 the last run goes on)            │ └───────────────────────────▶ timeout
//	    └────────────▶ skipped        │ container gone
//	                                  └─────────────────────────────▶ lost
//
// Leaving running, the container is removed; the exit code and the tail of
// the output stay in the store. A daemon that stops leaves running tasks
// alone: the next one re-adopts them (adopt.go), following a running
// container to its end and recording one that ended meanwhile the same way.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/store"
)

// taskState is where a task is in its life (see the diagram).
type taskState int

const (
	taskRunning taskState = iota
	taskSucceeded
	taskFailed
	taskStopped
	taskTimeout
	taskSkipped
	taskLost
)

// String is the state as the store and the API spell it.
func (s taskState) String() string {
	switch s {
	case taskRunning:
		return api.TaskRunning
	case taskSucceeded:
		return api.TaskSucceeded
	case taskFailed:
		return api.TaskFailed
	case taskStopped:
		return api.TaskStopped
	case taskTimeout:
		return api.TaskTimeout
	case taskSkipped:
		return api.TaskSkipped
	case taskLost:
		return api.TaskLost
	}
	return "unknown"
}

// taskKind says why a task runs. It changes what watches the task, never
// how it runs.
type taskKind string

const (
	kindOneOff    taskKind = "oneoff"
	kindRelease   taskKind = "release"
	kindScheduled taskKind = "scheduled"
)

// labelTaskTimeout carries a task's --timeout on its container, so a
// restarted daemon still enforces it (counted from the container's start).
const labelTaskTimeout = "berth.task.timeout"

// Why berth stopped a task. The first cause wins.
var (
	errTaskStopped = errors.New("stopped by berth task stop")
	errClientGone  = errors.New("stopped: the client that ran it disconnected")
	errTaskTimeout = errors.New("timed out")
)

// Errors of task requests, for errors.Is and API codes.
var (
	// ErrTaskNotStarted is a task whose container could not be created or
	// started (a command not found in the image, say).
	ErrTaskNotStarted = errors.New("task could not start")
	// ErrReleaseFailed is a release command that did not exit 0.
	ErrReleaseFailed = errors.New("release command failed")
)

// outputGrace bounds the wait for a task's last output once it has exited.
const outputGrace = 10 * time.Second

// taskSpec is what to run: the data that makes a task a release, a
// one-off or a scheduled run.
type taskSpec struct {
	app, service string
	name         string // the spec's task name, "" for an ad-hoc command
	kind         taskKind
	command      []string
	rev          revision
	secrets      map[string]string
	timeout      time.Duration // 0: none
	stdin, tty   bool
}

// taskHooks let a caller watch a task. started runs once the task is
// recorded, before its process starts; output gets every piece of output in
// order ("stdout" or "stderr"; p is only valid during the call). The task
// waits for output to return: that is how a client's pace becomes the
// task's, and how nothing is lost.
type taskHooks struct {
	started func(store.Task)
	output  func(stream string, p []byte)
}

// taskRun is a task whose container exists.
type taskRun struct {
	// What never changes, readable without mu.
	id, app, name string
	kind          taskKind
	pod           string // the task's pod

	mu      sync.Mutex
	rec     store.Task
	cause   error // why berth stopped it; nil while it runs on its own
	timeout time.Duration

	// outMu orders output: the tail and the hook see it as it came.
	outMu  sync.Mutex
	out    tailBuffer
	output func(stream string, p []byte) // nil once finished

	stdin io.WriteCloser // interactive tasks only
	tty   bool
	done  chan struct{} // closed once recorded
}

func newTaskRun(rec store.Task) *taskRun {
	return &taskRun{
		id: rec.ID, app: rec.App, name: rec.Name, kind: taskKind(rec.Kind), pod: rec.ContainerID,
		rec: rec, done: make(chan struct{}),
	}
}

// record is the task as it stands.
func (r *taskRun) record() store.Task {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rec
}

func (r *taskRun) write(stream string, p []byte) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	r.out.Write(p)
	if r.output != nil {
		r.output(stream, p)
	}
}

// closeStdin ends an interactive task's input. A terminal ends input with
// ^D: closing the attach stream would detach it instead.
func (r *taskRun) closeStdin() {
	if r.stdin == nil {
		return
	}
	if r.tty {
		_, _ = r.stdin.Write([]byte{4})
		return
	}
	_ = r.stdin.Close()
}

// taskTable is the daemon's running tasks, its release locks and its
// scheduler. The zero value is ready to use.
type taskTable struct {
	mu       sync.Mutex
	running  map[string]*taskRun
	releases map[string]chan struct{} // by app, see lockRelease
	sched    *scheduler
}

func (t *taskTable) add(r *taskRun) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.running == nil {
		t.running = map[string]*taskRun{}
	}
	t.running[r.id] = r
}

func (t *taskTable) remove(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.running, id)
}

func (t *taskTable) get(id string) *taskRun {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.running[id]
}

// runningNamed returns a running task of app with this name and kind, or nil.
func (t *taskTable) runningNamed(app, name string, kind taskKind) *taskRun {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range t.running {
		if r.app == app && r.name == name && r.kind == kind {
			return r
		}
	}
	return nil
}

// lockRelease takes app's release lock, waiting (and saying so through
// waiting) while another release of the app runs: two migrations must
// never race. It returns the unlock.
func (t *taskTable) lockRelease(ctx context.Context, app string, waiting func()) (func(), error) {
	t.mu.Lock()
	if t.releases == nil {
		t.releases = map[string]chan struct{}{}
	}
	ch, ok := t.releases[app]
	if !ok {
		ch = make(chan struct{}, 1)
		t.releases[app] = ch
	}
	t.mu.Unlock()
	unlock := func() { <-ch }
	select {
	case ch <- struct{}{}:
		return unlock, nil
	default:
	}
	waiting()
	select {
	case ch <- struct{}{}:
		return unlock, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// taskStartError is a task that could not start, with its record.
type taskStartError struct {
	rec store.Task
	err error
}

func (e *taskStartError) Error() string { return e.err.Error() }
func (e *taskStartError) Unwrap() error { return e.err }

// startTask creates the task's pod from its revision, attaches to it,
// starts it, and watches it to its end in the background. It returns once
// the process runs, or a *taskStartError (the task recorded failed).
func (d *Daemon) startTask(ctx context.Context, ts taskSpec, hooks taskHooks) (*taskRun, error) {
	now := time.Now().UTC()
	t0 := time.Now()
	rec := store.Task{
		ID: newID(), App: ts.app, Service: ts.service, Name: ts.name, Kind: string(ts.kind),
		Command: ts.command, Revision: ts.rev.number, Status: taskRunning.String(), StartedAt: now,
	}
	p, err := d.pods.CreatePod(ctx, d.taskPod(ts, rec.ID))
	if err != nil {
		return nil, d.taskNotStarted(rec, err)
	}
	rec.ContainerID = p.ID
	created := time.Since(t0)
	remove := func() { _ = d.pods.RemovePod(context.WithoutCancel(ctx), p.ID) }
	// A destroy lists the app's pods once it marked the app closing: a
	// task created since would be missed, so it goes itself.
	if d.appClosing(ts.app) {
		remove()
		return nil, d.taskNotStarted(rec, fmt.Errorf("%w: app %s is being destroyed", ErrNotFound, ts.app))
	}
	if err := d.store.PutTask(ctx, rec); err != nil {
		remove()
		return nil, fmt.Errorf("record task: %w", err)
	}
	run := newTaskRun(rec)
	run.timeout, run.output, run.tty = ts.timeout, hooks.output, ts.tty
	// Attach before the start, so not a byte of output is missed. An
	// engine that cannot attach is followed through its logs instead.
	var src runtime.Stream
	if a, ok := d.pods.(runtime.PodAttacher); ok {
		if src, err = a.AttachPod(ctx, p.ID); err != nil {
			remove()
			return nil, d.taskNotStarted(rec, err)
		}
		if ts.stdin {
			run.stdin = src.Stdin()
		}
	}
	d.tasks.add(run)
	if hooks.started != nil {
		hooks.started(rec)
	}
	attached := time.Since(t0)
	if _, err := d.pods.StartPod(ctx, p.ID, runtime.StartOptions{}); err != nil {
		d.tasks.remove(rec.ID)
		if src != nil {
			src.Close()
		}
		remove()
		return nil, d.taskNotStarted(rec, err)
	}
	d.log.Debug("task started", "task", rec.ID, "created", created.Round(time.Millisecond),
		"attached", attached.Round(time.Millisecond), "started", time.Since(t0).Round(time.Millisecond))
	// The timeout counts from the process's start, not from the request:
	// a slow engine start must not eat into it.
	var deadline time.Time
	if ts.timeout > 0 {
		deadline = time.Now().Add(ts.timeout)
	}
	d.watchTask(run, src, deadline)
	return run, nil
}

// taskPod is the pod of a task: the revision's image, env, secrets, limits
// and app network (so it reaches the services by name and by internal
// name), but no port, no name on the network, no sidecars, and its own
// name and labels.
func (d *Daemon) taskPod(ts taskSpec, id string) runtime.PodSpec {
	main := d.containerSpec(ts.app, ts.rev, id, ts.secrets)
	main.Name, main.Command = ts.service, ts.command
	main.Labels, main.Network, main.Aliases, main.ExtraHosts = nil, "", nil, nil
	main.Port, main.HostPort, main.Platform = 0, 0, ""
	labels := map[string]string{
		runtime.LabelApp:      ts.app,
		runtime.LabelService:  ts.service,
		runtime.LabelRevision: strconv.Itoa(ts.rev.number),
		runtime.LabelTask:     id,
		runtime.LabelRole:     string(runtime.RoleTask),
	}
	if ts.timeout > 0 {
		labels[labelTaskTimeout] = ts.timeout.String()
	}
	return runtime.PodSpec{
		Name:          fmt.Sprintf("berth-%s-task-%s", ts.app, id),
		Labels:        labels,
		Network:       networkName(ts.app),
		InternalNames: d.internalNames(ts.app),
		Platform:      ts.rev.spec.Platform,
		Main:          main,
		TTY:           ts.tty,
		OpenStdin:     ts.stdin,
	}
}

// taskNotStarted records a task that could not start, with the exit code a
// shell would give (127 not found, 126 not executable, 125 otherwise).
func (d *Daemon) taskNotStarted(rec store.Task, err error) error {
	msg := startReason(err)
	if d.ctx.Err() != nil {
		msg = "the daemon stopped while starting it"
	}
	rec.Status, rec.ExitCode, rec.FinishedAt = taskFailed.String(), startExitCode(msg), time.Now().UTC()
	rec.Message = "could not start: " + msg
	if perr := d.store.PutTask(context.WithoutCancel(d.ctx), rec); perr != nil && !errors.Is(perr, store.ErrNotFound) {
		d.log.Warn("record task", "task", rec.ID, "err", perr)
	}
	d.countTask(rec.App, rec.Service, rec.Status)
	d.event(rec.App, rec.Service, "task", fmt.Sprintf("task %s (%s) could not start: %s", rec.ID, taskLabel(rec), msg))
	return &taskStartError{rec: rec, err: fmt.Errorf("%w: %s", ErrTaskNotStarted, msg)}
}

// startReason cuts the engine's layers of context ("OCI runtime create
// failed: runc create failed: ...") down to the part a user can act on.
func startReason(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, "unable to start container process: "); i >= 0 {
		s = s[i+len("unable to start container process: "):]
	}
	s = strings.TrimSuffix(s, ": unknown")
	return oneLine(s)
}

func startExitCode(msg string) int {
	switch {
	case strings.Contains(msg, "not found"), strings.Contains(msg, "no such file"):
		return 127
	case strings.Contains(msg, "permission denied"):
		return 126
	}
	return 125
}

// watchTask follows a task whose container exists to its end: its output
// (from the attached stream, or from the logs when src is nil: an adopted
// task, or an engine that cannot attach), its deadline, its exit. A daemon
// that stops leaves it running for the next one to adopt.
func (d *Daemon) watchTask(run *taskRun, src runtime.Stream, deadline time.Time) {
	ctx := d.ctx
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		if !deadline.IsZero() {
			t := time.AfterFunc(time.Until(deadline), func() {
				d.stopTask(run, fmt.Errorf("%w after %s", errTaskTimeout, run.timeout))
			})
			defer t.Stop()
		}
		pumped := make(chan struct{})
		go func() {
			defer close(pumped)
			d.pumpTask(ctx, run, src)
		}()
		code, err := d.pods.WaitPod(ctx, run.pod)
		if ctx.Err() != nil {
			if src != nil {
				src.Close()
			}
			return
		}
		select {
		case <-pumped:
		case <-time.After(outputGrace):
			d.log.Warn("task output did not end after its exit", "task", run.id)
		}
		if src != nil {
			src.Close()
		}
		d.finishTask(run, code, err)
	}()
}

// pumpTask copies a task's output into run until it ends.
func (d *Daemon) pumpTask(ctx context.Context, run *taskRun, src runtime.Stream) {
	if src == nil {
		_ = d.pods.Logs(ctx, run.pod, "", runtime.LogOptions{Follow: true}, func(l runtime.LogLine) {
			run.write(l.Stream, []byte(l.Text+"\n"))
		})
		return
	}
	var wg sync.WaitGroup
	pump := func(stream string, r io.Reader) {
		defer wg.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				run.write(stream, buf[:n])
			}
			if err != nil {
				return
			}
		}
	}
	wg.Add(2)
	go pump("stdout", src.Stdout())
	go pump("stderr", src.Stderr())
	wg.Wait()
}

// finishTask records how a task ended, removes its pod and wakes whoever
// waits on it.
func (d *Daemon) finishTask(run *taskRun, code int, waitErr error) {
	ctx := context.WithoutCancel(d.ctx)
	c, inspectErr := d.pods.InspectPod(ctx, run.pod)

	run.outMu.Lock()
	run.output = nil
	output := run.out.Bytes()
	run.outMu.Unlock()

	run.mu.Lock()
	rec := run.rec
	state, msg := taskSucceeded, ""
	switch {
	case waitErr != nil:
		state, msg = taskLost, fmt.Sprintf("its container went away: %v", waitErr)
	case errors.Is(run.cause, errTaskTimeout):
		state, msg = taskTimeout, run.cause.Error()
	case run.cause != nil:
		state, msg = taskStopped, run.cause.Error()
	case code != 0:
		state, msg = taskFailed, fmt.Sprintf("exited with code %d", code)
	}
	if inspectErr == nil && c.OOMKilled {
		msg += " (killed: out of memory; raise memory in berth.yaml)"
	}
	rec.Status, rec.ExitCode, rec.Output, rec.Message = state.String(), code, output, strings.TrimSpace(msg)
	rec.FinishedAt = time.Now().UTC()
	run.rec = rec
	run.mu.Unlock()
	d.countTask(rec.App, rec.Service, rec.Status)

	recorded := true
	if err := d.store.PutTask(ctx, rec); err != nil {
		// The app was destroyed under the task: nothing to record it in.
		recorded = false
		if !errors.Is(err, store.ErrNotFound) {
			d.log.Error("record task", "task", rec.ID, "err", err)
		}
	}
	d.tasks.remove(rec.ID)
	// Whoever waits learns the outcome now; the removal (tens of ms) is not
	// theirs to wait for. A daemon that dies before it removes the
	// container on its next start: the task is recorded as finished.
	close(run.done)
	if recorded {
		d.event(rec.App, rec.Service, "task", fmt.Sprintf("task %s (%s) %s", rec.ID, taskLabel(rec), taskOutcome(rec)))
	}
	if err := d.pods.RemovePod(ctx, run.pod); err != nil {
		d.log.Warn("remove task pod", "task", rec.ID, "err", err)
	}
}

// stopTask stops a running task: SIGTERM, then SIGKILL after the stop
// grace. It returns at once; the task's watcher records the end.
func (d *Daemon) stopTask(run *taskRun, cause error) {
	run.mu.Lock()
	if run.cause == nil {
		run.cause = cause
	}
	finished := run.rec.Status != taskRunning.String()
	run.mu.Unlock()
	if finished {
		return
	}
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		if err := d.pods.StopPod(context.WithoutCancel(d.ctx), run.pod, spec.DefaultStopGrace); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			d.log.Warn("stop task", "task", run.id, "err", err)
		}
	}()
}

// taskLabel names a task for messages: its spec name, else its command.
func taskLabel(t store.Task) string {
	if t.Name != "" {
		return t.Name
	}
	return quoteCommand(t.Command)
}

// taskOutcome says how a finished task ended, for messages.
func taskOutcome(t store.Task) string {
	switch t.Status {
	case api.TaskSucceeded:
		return "exited with code 0"
	case api.TaskFailed:
		if strings.HasPrefix(t.Message, "could not start") {
			return t.Message
		}
		return fmt.Sprintf("exited with code %d", t.ExitCode)
	case api.TaskStopped, api.TaskTimeout:
		return fmt.Sprintf("%s (exit code %d)", t.Message, t.ExitCode)
	}
	return t.Status + ": " + t.Message
}

// quoteCommand renders argv as a shell would read it back.
func quoteCommand(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`;&|<>*?()[]{}#~") {
			parts[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		} else {
			parts[i] = a
		}
	}
	return strings.Join(parts, " ")
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
