// Package rollout is the life of a revision: what happens when you deploy.
// It admits a deploy (images, hosts, secrets, memory, a paused service, an
// app network another server holds), records a deploying revision, builds
// its images and pins them, runs its release command, brings its instances
// up, switches the router to them and drains the revision they replace,
// which stays the rollback target; or it starts the revision as a canary
// and later promotes it or rolls it back. Rollback, pause and resume, scale
// and destroy are here too: every operation that moves a service from one
// revision, or one state, to another.
//
// It owns the decision of what revision serves, the revisions' records in
// the store, the canaries and the hosts deploys in flight claim. The
// services' instances, and everything that keeps them running, are the
// fleet's (internal/controlplane/fleet), which it drives through the
// fleet's exported methods; the release command is a task
// (internal/controlplane/tasks); the entrypoints and internal load
// balancers are internal/controlplane/traffic's. It reaches the engine
// only through internal/runtime and the router only through
// internal/router.
//
// Reading order, as a deploy goes: deploy.go (Deploy: its phases, and
// each service's revision from build to switch), admit.go (what it checks
// before changing anything), hosts.go (who holds a host name), build.go
// (images), canary.go (a revision on trial), switch.go (bringing a
// revision up and moving the router to it), revision.go (a revision's
// life in the store); then rollback.go and ops.go (pause, resume, scale,
// destroy). The instances themselves go on in the fleet's service.go.
package rollout

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/contain"
	"github.com/berth-dev/berth/internal/controlplane/fleet"
	"github.com/berth-dev/berth/internal/controlplane/tasks"
	"github.com/berth-dev/berth/internal/controlplane/traffic"
	"github.com/berth-dev/berth/internal/router"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/store"
)

// Tasks is what a rollout needs of the tasks' Runner
// (internal/controlplane/tasks): the release command, the app's schedules,
// and its pre-warmed task pods.
type Tasks interface {
	Release(ctx context.Context, app, service string, rev tasks.Revision, out tasks.ReleaseOutput) error
	InstallSchedules(sp *spec.Spec)
	RemoveSchedules(app string)
	Warm(app string)
}

// Entrypoints is what a deploy needs of the app's entrypoints
// (internal/controlplane/traffic): the spec's checked before anything
// changes, installed once the services are up, and dropped with the app.
type Entrypoints interface {
	Plan(ctx context.Context, sp *spec.Spec, req api.DeployRequest) (*traffic.Plan, error)
	Apply(ctx context.Context, plan *traffic.Plan) error
	DropApp(ctx context.Context, app string)
}

// Internal is what a deploy needs of the apps' internal load balancers
// (internal/controlplane/traffic).
type Internal interface {
	Ensure(ctx context.Context, sp *spec.Spec)
	Close(app string)
}

// Config is what a Manager is given. Every field is required but Event.
type Config struct {
	Log   *slog.Logger
	Store *store.Store
	// Pods is the engine: images are checked and built there, and the
	// retired revisions' pods removed.
	Pods runtime.PodEngine
	// Router carries the canaries' routes and splits.
	Router      router.Router
	Fleet       *fleet.Fleet
	Tasks       Tasks
	Entrypoints Entrypoints
	Internal    Internal
	// Domain is the base domain of the services' host names, each app's
	// under its own name.
	Domain string
	// DeployTimeout bounds a revision's start until healthy.
	DeployTimeout time.Duration
	// Event records something that happened, for berth events.
	Event func(app, service, kind, msg string)
	// Code is the API's stable code of an error, for the results.
	Code func(error) string
	// Ctx is the daemon's lifetime, under which a guard's rollback runs.
	Ctx context.Context
}

// Manager rolls revisions out: deploys, canaries, rollbacks, pauses,
// resumes, scales and destroys.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	store *store.Store
	pods  runtime.PodEngine
	edge  router.Router
	fleet *fleet.Fleet
	tasks Tasks

	entrypoints Entrypoints
	internal    Internal

	// canaryMu guards canaries: the revisions on trial next to the
	// serving ones, by "app/service" (canary.go).
	canaryMu sync.Mutex
	canaries map[string]*canary
	// hosts are the hosts claimed by deploys in flight (hosts.go).
	hosts hostBook

	ctx context.Context
}

// New returns a Manager.
func New(cfg Config) *Manager {
	return &Manager{
		cfg:         cfg,
		log:         cfg.Log,
		store:       cfg.Store,
		pods:        cfg.Pods,
		edge:        cfg.Router,
		fleet:       cfg.Fleet,
		tasks:       cfg.Tasks,
		entrypoints: cfg.Entrypoints,
		internal:    cfg.Internal,
		canaries:    map[string]*canary{},
		ctx:         cfg.Ctx,
	}
}

// event records something that happened, for `berth events` and status.
func (m *Manager) event(app, svc, kind, msg string) {
	if m.cfg.Event != nil {
		m.cfg.Event(app, svc, kind, msg)
	}
}

// containErr, deferred directly, turns a panic into *errp after logging it
// (internal/controlplane/contain).
func (m *Manager) containErr(errp *error, what string, args ...any) {
	if v := recover(); v != nil {
		*errp = contain.Error(m.log, v, what, args...)
	}
}

// contain, deferred directly, recovers a panic and logs it.
func (m *Manager) contain(what string, args ...any) {
	if v := recover(); v != nil {
		contain.Log(m.log, v, what, args...)
	}
}
