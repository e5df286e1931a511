// Package fleet is the services' live state and their instances: which
// revision of each service serves, its instances (pods) and what holds it
// busy; starting an instance and waiting for its health check, watching it
// while it serves, draining and stopping it, keeping the previous
// revision's for a rollback; parking and waking instances for the
// autoscaler and scale to zero; the reconciler that keeps each service at
// its count; and adoption of what runs when the daemon starts.
//
// It publishes each service's healthy instances to the router and records
// them in the store. It does not decide what revision should serve: the
// rollout of a revision (internal/controlplane/rollout) does, and moves a
// service from one revision to the next with Fleet's exported methods. It
// reaches the engine only through the pod contract (internal/runtime).
//
// Reading order, as a deploy goes on from the rollout: service.go (a
// service's live state, published to the router), switch.go (the
// transitions the rollout asks for), instance.go (an instance's life,
// from start to healthy), sidecars.go (the pod's other containers),
// podspec.go (the pod the engine is asked for), monitor.go (health while
// it serves), drain.go (taking instances out, keeping the rollback
// target); then what keeps them running: reconcile_plan.go and
// reconcile.go, network.go, adopt.go, wake.go and autoscaler.go (the
// autoscaler's actions), scale.go, record.go and status.go.
package fleet

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/autoscale"
	"github.com/berth-dev/berth/internal/controlplane/contain"
	"github.com/berth-dev/berth/internal/router"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/store"
)

// Internal is what the fleet needs of the apps' internal load balancers
// (internal/controlplane/traffic): the names the pods resolve, making them
// again on a re-created app network, and their status.
type Internal interface {
	Names(app string) []string
	Status(app, service string) *api.InternalTraffic
	Restore(ctx context.Context, app store.App)
	Close(app string)
}

// Tasks is what the fleet needs of the tasks' Runner
// (internal/controlplane/tasks): adoption of the tasks at start, and their
// pods around an app network that was made again.
type Tasks interface {
	Adopt(ctx context.Context, apps []store.App) error
	StartSchedules(ctx context.Context, apps []store.App)
	Leftover(ctx context.Context, p runtime.Pod) bool
	Warm(app string)
}

// Config is what a Fleet is given. Every field is required but the hooks
// Event, CountAutoscale and RefreshHosts, which may be nil.
type Config struct {
	Log   *slog.Logger
	Store *store.Store
	// Pods is the engine that runs the instances.
	Pods runtime.PodEngine
	// Router is where the healthy instances are published.
	Router   router.Router
	Internal Internal
	Tasks    Tasks
	// Domain is the base domain of the services' host names; HTTPPort the
	// edge's bound HTTP port, for their URLs.
	Domain   string
	HTTPPort string
	// DeployTimeout bounds an instance's start; Drain the requests in
	// flight on one leaving; RollbackWarm how long a previous revision
	// stays frozen (controlplane.Config says more).
	DeployTimeout time.Duration
	Drain         time.Duration
	RollbackWarm  time.Duration
	// Autoscale tunes scale to zero (ColdAfter).
	Autoscale autoscale.Tuning
	// Settle decides, at start, what a service's stored revisions must be
	// whatever point of a deploy the last daemon died at, and which one is
	// the rollback target (rollout.Settle).
	Settle func(current int, revs []store.Revision) ([]RevisionFix, int)
	// Event records something that happened, for berth events.
	Event func(app, service, kind, msg string)
	// CountAutoscale counts an autoscaler decision taking a service from
	// one count to another.
	CountAutoscale func(app, service string, from, to int)
	// RefreshHosts is told when the hosts the router serves may have
	// changed.
	RefreshHosts func()
	// Ctx is the daemon's lifetime; BG tracks the goroutines that must end
	// before the store closes.
	Ctx context.Context
	BG  *sync.WaitGroup
}

// Fleet is the live state of every service and its instances.
type Fleet struct {
	cfg      Config
	log      *slog.Logger
	store    *store.Store
	pods     runtime.PodEngine
	edge     router.Router
	internal Internal
	tasks    Tasks
	httpPort string

	mu       sync.Mutex
	services map[string]*Service // by "app/service"
	// closing are the apps being destroyed (closing.go).
	closing map[string]bool
	// netMu serialises app network creation.
	netMu sync.Mutex
	// kicks asks the reconciler to look at one service now.
	kicks chan *Service
	// instRec mirrors live instances into the store.
	instRec *instanceRecorder

	bg  *sync.WaitGroup
	ctx context.Context
}

// New returns a Fleet with no service yet; Adopt fills it from the store
// and the engine.
func New(cfg Config) *Fleet {
	return &Fleet{
		cfg:      cfg,
		log:      cfg.Log,
		store:    cfg.Store,
		pods:     cfg.Pods,
		edge:     cfg.Router,
		internal: cfg.Internal,
		tasks:    cfg.Tasks,
		httpPort: cfg.HTTPPort,
		services: map[string]*Service{},
		kicks:    make(chan *Service, 64),
		instRec:  newInstanceRecorder(),
		bg:       cfg.BG,
		ctx:      cfg.Ctx,
	}
}

// event records something that happened, for `berth events` and status.
func (f *Fleet) event(app, svc, kind, msg string) {
	if f.cfg.Event != nil {
		f.cfg.Event(app, svc, kind, msg)
	}
}

// contain, deferred directly, recovers a panic of the goroutine it is
// deferred in and logs it with its stack (internal/controlplane/contain).
func (f *Fleet) contain(what string, args ...any) {
	if v := recover(); v != nil {
		contain.Log(f.log, v, what, args...)
	}
}

// containErr, deferred directly, turns a panic into *errp after logging it.
func (f *Fleet) containErr(errp *error, what string, args ...any) {
	if v := recover(); v != nil {
		*errp = contain.Error(f.log, v, what, args...)
	}
}
