package tasks

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
	"github.com/berth-dev/berth/internal/controlplane/apierr"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/store"
)

// state is where a task is in its life (see the diagram in doc.go).
type state int

const (
	running state = iota
	succeeded
	failed
	stopped
	timedOut
	skipped
	lost
)

// String is the state as the store and the API spell it.
func (s state) String() string {
	switch s {
	case running:
		return api.TaskRunning
	case succeeded:
		return api.TaskSucceeded
	case failed:
		return api.TaskFailed
	case stopped:
		return api.TaskStopped
	case timedOut:
		return api.TaskTimeout
	case skipped:
		return api.TaskSkipped
	case lost:
		return api.TaskLost
	}
	return "unknown"
}

// kind says why a task runs. It changes what watches the task, never how
// it runs.
type kind string

const (
	kindOneOff    kind = "oneoff"
	kindRelease   kind = "release"
	kindScheduled kind = "scheduled"
)

// labelTimeout carries a task's --timeout on its pod, so a restarted
// daemon still enforces it (counted from the pod's start).
const labelTimeout = "berth.task.timeout"

// Why berth stopped a task. The first cause wins.
var (
	// ErrStopped is a task stopped by `berth task stop`.
	ErrStopped = errors.New("stopped by berth task stop")
	// ErrClientGone is a task whose client went away while attached.
	ErrClientGone = errors.New("stopped: the client that ran it disconnected")
	errTimeout    = errors.New("timed out")
)

// Errors of task requests, for errors.Is and API codes.
var (
	// ErrNotStarted is a task whose pod could not be created or started
	// (a command not found in the image, say).
	ErrNotStarted = errors.New("task could not start")
	// ErrReleaseFailed is a release command that did not exit 0.
	ErrReleaseFailed = errors.New("release command failed")
)

// outputGrace bounds the wait for a task's last output once it has exited.
const outputGrace = 10 * time.Second

// Spec is what to run: the data that makes a task a release, a one-off or
// a scheduled run. Resolve makes one from a run request.
type Spec struct {
	app, service string
	name         string // the spec's task name, "" for an ad-hoc command
	kind         kind
	command      []string
	rev          Revision
	secrets      map[string]string
	timeout      time.Duration // 0: none
	stdin, tty   bool
}

// Hooks let a caller watch a task. Started runs once the task is recorded,
// before its process starts; Output gets every piece of output in order
// ("stdout" or "stderr"; p is only valid during the call). The task waits
// for Output to return: that is how a client's pace becomes the task's,
// and how nothing is lost.
type Hooks struct {
	Started func(store.Task)
	Output  func(stream string, p []byte)
}

// Run is a task whose pod exists.
type Run struct {
	// What never changes, readable without mu.
	id, app, name string
	kind          kind
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

func newRun(rec store.Task) *Run {
	return &Run{
		id: rec.ID, app: rec.App, name: rec.Name, kind: kind(rec.Kind), pod: rec.ContainerID,
		rec: rec, done: make(chan struct{}),
	}
}

// Record is the task as it stands.
func (run *Run) Record() store.Task {
	run.mu.Lock()
	defer run.mu.Unlock()
	return run.rec
}

// Done is closed once the task has ended and is recorded.
func (run *Run) Done() <-chan struct{} { return run.done }

func (run *Run) write(stream string, p []byte) {
	run.outMu.Lock()
	defer run.outMu.Unlock()
	run.out.Write(p)
	if run.output != nil {
		run.output(stream, p)
	}
}

// closeStdin ends an interactive task's input. A terminal ends input with
// ^D: closing the attach stream would detach it instead.
func (run *Run) closeStdin() {
	if run.stdin == nil {
		return
	}
	if run.tty {
		_, _ = run.stdin.Write([]byte{4})
		return
	}
	_ = run.stdin.Close()
}

// StartError is a task that could not start, with its record.
type StartError struct {
	// Task is the task as recorded: failed, with a shell's exit code.
	Task store.Task
	err  error
}

func (e *StartError) Error() string { return e.err.Error() }
func (e *StartError) Unwrap() error { return e.err }

// Start creates the task's pod from its revision, attaches to it, starts
// it, and watches it to its end in the background. It returns once the
// process runs, or a *StartError (the task recorded failed).
func (r *Runner) Start(ctx context.Context, ts Spec, hooks Hooks) (*Run, error) {
	now := time.Now().UTC()
	t0 := time.Now()
	rec := store.Task{
		ID: newID(), App: ts.app, Service: ts.service, Name: ts.name, Kind: string(ts.kind),
		Command: ts.command, Revision: ts.rev.Number, Status: running.String(), StartedAt: now,
	}
	p, err := r.cfg.Pods.CreatePod(ctx, r.pod(ts, rec.ID))
	if err != nil {
		return nil, r.notStarted(rec, err)
	}
	rec.ContainerID = p.ID
	created := time.Since(t0)
	remove := func() { _ = r.cfg.Pods.RemovePod(context.WithoutCancel(ctx), p.ID) }
	// A destroy lists the app's pods once it marked the app closing: a
	// task created since would be missed, so it goes itself.
	if r.cfg.Closing(ts.app) {
		remove()
		return nil, r.notStarted(rec, fmt.Errorf("%w: app %s is being destroyed", apierr.ErrNotFound, ts.app))
	}
	if err := r.cfg.Store.PutTask(ctx, rec); err != nil {
		remove()
		return nil, fmt.Errorf("record task: %w", err)
	}
	run := newRun(rec)
	run.timeout, run.output, run.tty = ts.timeout, hooks.Output, ts.tty
	// Attach before the start, so not a byte of output is missed. An
	// engine that cannot attach is followed through its logs instead.
	var src runtime.Stream
	if a, ok := r.cfg.Pods.(runtime.PodAttacher); ok {
		if src, err = a.AttachPod(ctx, p.ID); err != nil {
			remove()
			return nil, r.notStarted(rec, err)
		}
		if ts.stdin {
			run.stdin = src.Stdin()
		}
	}
	r.add(run)
	if hooks.Started != nil {
		hooks.Started(rec)
	}
	attached := time.Since(t0)
	if _, err := r.cfg.Pods.StartPod(ctx, p.ID, runtime.StartOptions{}); err != nil {
		r.remove(rec.ID)
		if src != nil {
			src.Close()
		}
		remove()
		return nil, r.notStarted(rec, err)
	}
	r.cfg.Log.Debug("task started", "task", rec.ID, "created", created.Round(time.Millisecond),
		"attached", attached.Round(time.Millisecond), "started", time.Since(t0).Round(time.Millisecond))
	// The timeout counts from the process's start, not from the request:
	// a slow engine start must not eat into it.
	var deadline time.Time
	if ts.timeout > 0 {
		deadline = time.Now().Add(ts.timeout)
	}
	r.watch(run, src, deadline)
	return run, nil
}

// pod is the pod of a task: the revision's image, env, secrets, limits and
// app network (so it reaches the services by name and by internal name),
// but no port, no name on the network, no sidecars, and its own name and
// labels.
func (r *Runner) pod(ts Spec, id string) runtime.PodSpec {
	main := r.cfg.Container(ts.app, ts.rev, ts.secrets)
	main.Name, main.Command = ts.service, ts.command
	labels := map[string]string{
		runtime.LabelApp:      ts.app,
		runtime.LabelService:  ts.service,
		runtime.LabelRevision: strconv.Itoa(ts.rev.Number),
		runtime.LabelTask:     id,
		runtime.LabelRole:     string(runtime.RoleTask),
	}
	if ts.timeout > 0 {
		labels[labelTimeout] = ts.timeout.String()
	}
	return runtime.PodSpec{
		Name:          fmt.Sprintf("berth-%s-task-%s", ts.app, id),
		Labels:        labels,
		Network:       r.cfg.Network(ts.app),
		InternalNames: r.cfg.InternalNames(ts.app),
		Platform:      ts.rev.Spec.Platform,
		Main:          main,
		TTY:           ts.tty,
		OpenStdin:     ts.stdin,
	}
}

// notStarted records a task that could not start, with the exit code a
// shell would give (127 not found, 126 not executable, 125 otherwise).
func (r *Runner) notStarted(rec store.Task, err error) error {
	msg := startReason(err)
	if r.cfg.Ctx.Err() != nil {
		msg = "the daemon stopped while starting it"
	}
	rec.Status, rec.ExitCode, rec.FinishedAt = failed.String(), startExitCode(msg), time.Now().UTC()
	rec.Message = "could not start: " + msg
	if perr := r.cfg.Store.PutTask(context.WithoutCancel(r.cfg.Ctx), rec); perr != nil && !errors.Is(perr, store.ErrNotFound) {
		r.cfg.Log.Warn("record task", "task", rec.ID, "err", perr)
	}
	r.cfg.Count(rec.App, rec.Service, rec.Status)
	r.cfg.Event(rec.App, rec.Service, "task", fmt.Sprintf("task %s (%s) could not start: %s", rec.ID, label(rec), msg))
	return &StartError{Task: rec, err: fmt.Errorf("%w: %s", ErrNotStarted, msg)}
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

// watch follows a task whose pod exists to its end: its output (from the
// attached stream, or from the logs when src is nil: an adopted task, or
// an engine that cannot attach), its deadline, its exit. A daemon that
// stops leaves it running for the next one to adopt.
func (r *Runner) watch(run *Run, src runtime.Stream, deadline time.Time) {
	ctx := r.cfg.Ctx
	r.cfg.BG.Add(1)
	go func() {
		defer r.cfg.BG.Done()
		if !deadline.IsZero() {
			t := time.AfterFunc(time.Until(deadline), func() {
				r.Stop(run, fmt.Errorf("%w after %s", errTimeout, run.timeout))
			})
			defer t.Stop()
		}
		pumped := make(chan struct{})
		go func() {
			defer close(pumped)
			r.pump(ctx, run, src)
		}()
		code, err := r.cfg.Pods.WaitPod(ctx, run.pod)
		if ctx.Err() != nil {
			if src != nil {
				src.Close()
			}
			return
		}
		select {
		case <-pumped:
		case <-time.After(outputGrace):
			r.cfg.Log.Warn("task output did not end after its exit", "task", run.id)
		}
		if src != nil {
			src.Close()
		}
		r.finish(run, code, err)
	}()
}

// pump copies a task's output into run until it ends.
func (r *Runner) pump(ctx context.Context, run *Run, src runtime.Stream) {
	if src == nil {
		_ = r.cfg.Pods.Logs(ctx, run.pod, "", runtime.LogOptions{Follow: true}, func(l runtime.LogLine) {
			run.write(l.Stream, []byte(l.Text+"\n"))
		})
		return
	}
	var wg sync.WaitGroup
	pump := func(stream string, rd io.Reader) {
		defer wg.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := rd.Read(buf)
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

// finish records how a task ended, removes its pod and wakes whoever waits
// on it.
func (r *Runner) finish(run *Run, code int, waitErr error) {
	ctx := context.WithoutCancel(r.cfg.Ctx)
	c, inspectErr := r.cfg.Pods.InspectPod(ctx, run.pod)

	run.outMu.Lock()
	run.output = nil
	output := run.out.Bytes()
	run.outMu.Unlock()

	run.mu.Lock()
	rec := run.rec
	st, msg := succeeded, ""
	switch {
	case waitErr != nil:
		st, msg = lost, fmt.Sprintf("its container went away: %v", waitErr)
	case errors.Is(run.cause, errTimeout):
		st, msg = timedOut, run.cause.Error()
	case run.cause != nil:
		st, msg = stopped, run.cause.Error()
	case code != 0:
		st, msg = failed, fmt.Sprintf("exited with code %d", code)
	}
	if inspectErr == nil && c.OOMKilled {
		msg += " (killed: out of memory; raise memory in berth.yaml)"
	}
	rec.Status, rec.ExitCode, rec.Output, rec.Message = st.String(), code, output, strings.TrimSpace(msg)
	rec.FinishedAt = time.Now().UTC()
	run.rec = rec
	run.mu.Unlock()
	r.cfg.Count(rec.App, rec.Service, rec.Status)

	recorded := true
	if err := r.cfg.Store.PutTask(ctx, rec); err != nil {
		// The app was destroyed under the task: nothing to record it in.
		recorded = false
		if !errors.Is(err, store.ErrNotFound) {
			r.cfg.Log.Error("record task", "task", rec.ID, "err", err)
		}
	}
	r.remove(rec.ID)
	// Whoever waits learns the outcome now; the removal (tens of ms) is not
	// theirs to wait for. A daemon that dies before it removes the pod
	// removes it on its next start: the task is recorded as finished.
	close(run.done)
	if recorded {
		r.cfg.Event(rec.App, rec.Service, "task", fmt.Sprintf("task %s (%s) %s", rec.ID, label(rec), outcome(rec)))
	}
	if err := r.cfg.Pods.RemovePod(ctx, run.pod); err != nil {
		r.cfg.Log.Warn("remove task pod", "task", rec.ID, "err", err)
	}
}

// Stop stops a running task for cause (ErrStopped, ErrClientGone):
// SIGTERM, then SIGKILL after the stop grace. It returns at once; the
// task's watcher records the end.
func (r *Runner) Stop(run *Run, cause error) {
	run.mu.Lock()
	if run.cause == nil {
		run.cause = cause
	}
	finished := run.rec.Status != running.String()
	run.mu.Unlock()
	if finished {
		return
	}
	r.cfg.BG.Add(1)
	go func() {
		defer r.cfg.BG.Done()
		if err := r.cfg.Pods.StopPod(context.WithoutCancel(r.cfg.Ctx), run.pod, spec.DefaultStopGrace); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			r.cfg.Log.Warn("stop task", "task", run.id, "err", err)
		}
	}()
}

// StopWait stops a running task as `berth task stop` asks, and returns it
// once it has ended (or once the stop grace and the output grace are over:
// as it then stands). It returns ctx's error if ctx ends first.
func (r *Runner) StopWait(ctx context.Context, run *Run) (store.Task, error) {
	r.Stop(run, ErrStopped)
	select {
	case <-run.done:
	case <-time.After(spec.DefaultStopGrace + outputGrace):
	case <-ctx.Done():
		return store.Task{}, context.Cause(ctx)
	}
	return run.Record(), nil
}
