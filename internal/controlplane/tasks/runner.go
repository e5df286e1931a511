package tasks

import (
	"context"
	"log/slog"
	"sync"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/store"
)

// Store is the state the Runner reads and writes: the tasks' records, and
// the app's deployed spec, services and secrets a task runs with.
type Store interface {
	PutTask(ctx context.Context, t store.Task) error
	GetTask(ctx context.Context, id string) (store.Task, error)
	ListTasks(ctx context.Context, app string, limit int) ([]store.Task, error)
	GetApp(ctx context.Context, name string) (store.App, error)
	ListServices(ctx context.Context, app string) ([]store.Service, error)
	SecretValues(ctx context.Context, app, service string) (map[string]string, error)
}

var _ Store = (*store.Store)(nil)

// Revision is what a revision of a service runs: its number, spec and
// image.
type Revision struct {
	Number int
	Spec   *spec.Service
	Image  string
}

// Config is what a Runner is given. Every field is required but
// CronSeconds.
type Config struct {
	Log   *slog.Logger
	Store Store
	// Pods is the engine the tasks' pods run on.
	Pods runtime.PodEngine

	// Revision loads revision n of an app's service.
	Revision func(ctx context.Context, app, service string, n int) (Revision, error)
	// Container is the container an instance of rev runs (its image, env
	// with the secrets, limits): a task runs it with its own command and
	// labels, and without a port or names on the network.
	Container func(app string, rev Revision, secrets map[string]string) runtime.ContainerSpec
	// Network is the name of an app's network, which its tasks join.
	Network func(app string) string
	// InternalNames are an app's internal names (its internal load
	// balancer's), which its tasks resolve as its services do.
	InternalNames func(app string) []string
	// Closing reports whether an app is being destroyed: a task created
	// meanwhile removes itself rather than outlive its app.
	Closing func(app string) bool

	// Event records something that happened, for `berth events`.
	Event func(app, service, kind, msg string)
	// Count counts a finished task by outcome, for the metrics.
	Count func(app, service, outcome string)

	// Ctx is the daemon's lifetime: the tasks' watches end with it (the
	// tasks go on, for the next daemon to adopt).
	Ctx context.Context
	// BG tracks the Runner's goroutines, which must end before the store
	// closes.
	BG *sync.WaitGroup

	// CronSeconds reads a schedule's five fields as second, minute, hour,
	// day of month and month, so a test sees a schedule fire within
	// seconds. The spec's syntax does not change.
	CronSeconds bool
}

// Runner runs tasks: it owns the running tasks, the apps' release locks and
// the scheduler.
type Runner struct {
	cfg Config

	mu       sync.Mutex
	running  map[string]*Run
	releases map[string]chan struct{} // by app, see lockRelease
	sched    *scheduler
}

// New returns a Runner with nothing running. Schedules run once
// StartSchedules is called.
func New(cfg Config) *Runner {
	return &Runner{cfg: cfg, running: map[string]*Run{}, releases: map[string]chan struct{}{}}
}

func (r *Runner) add(run *Run) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running[run.id] = run
}

func (r *Runner) remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.running, id)
}

// Running returns the running task with this (full) ID, or nil.
func (r *Runner) Running(id string) *Run {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running[id]
}

// runningNamed returns a running task of app with this name and kind, or nil.
func (r *Runner) runningNamed(app, name string, kind kind) *Run {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, run := range r.running {
		if run.app == app && run.name == name && run.kind == kind {
			return run
		}
	}
	return nil
}

// lockRelease takes app's release lock, waiting (and saying so through
// waiting) while another release of the app runs: two migrations must
// never race. It returns the unlock.
func (r *Runner) lockRelease(ctx context.Context, app string, waiting func()) (func(), error) {
	r.mu.Lock()
	ch, ok := r.releases[app]
	if !ok {
		ch = make(chan struct{}, 1)
		r.releases[app] = ch
	}
	r.mu.Unlock()
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

// Warm asks the engine to prepare for app's next task. A task's pod joins
// the app network, so it reaches the services by name; an engine may
// prepare for that (on Docker a network holder is kept started, which
// takes the network join out of the task's start: runtime.TaskPrewarmer).
// The daemon asks once a deploy made the app's network.
func (r *Runner) Warm(app string) {
	tw, ok := r.cfg.Pods.(runtime.TaskPrewarmer)
	if !ok || r.cfg.Ctx.Err() != nil || r.cfg.Closing(app) {
		return
	}
	tw.WarmTaskNet(r.cfg.Network(app), map[string]string{runtime.LabelApp: app}, r.cfg.InternalNames(app))
}
