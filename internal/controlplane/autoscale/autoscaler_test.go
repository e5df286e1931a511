package autoscale

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/router"
	"github.com/berth-dev/berth/internal/spec"
)

// routerLoad is the router's load as a table: a route's load and each
// backend's request count.
type routerLoad struct {
	routes   map[string]router.RouteLoad
	requests map[string]uint64
}

func (l *routerLoad) Load(key string) router.RouteLoad { return l.routes[key] }

func (l *routerLoad) Stats(id string) (router.BackendStats, bool) {
	n, ok := l.requests[id]
	return router.BackendStats{Requests: n}, ok
}

// service records what the autoscaler asked of it.
type service struct {
	route    string
	state    State
	scaled   bool // false: no scale:, Observe says so
	restarts []int
	tends    int
	recorded []Plan
	scales   []Plan
	from     []int
	revs     []int
}

func (s *service) Route() string                       { return s.route }
func (s *service) Tend(_ context.Context, _ time.Time) { s.tends++ }
func (s *service) Record(p Plan)                       { s.recorded = append(s.recorded, p) }

func (s *service) Observe(restart func(rev int) bool) (State, bool) {
	if !s.scaled {
		return State{}, false
	}
	if restart(s.state.Rev) {
		s.restarts = append(s.restarts, s.state.Rev)
	}
	return s.state, true
}

func (s *service) Scale(_ context.Context, rev, current int, p Plan) {
	s.scales, s.from, s.revs = append(s.scales, p), append(s.from, current), append(s.revs, rev)
	s.state.Current = p.N
}

func newTestAutoscaler(load *routerLoad, ss ...Service) *Autoscaler {
	return New(Config{
		Tuning:   Tuning{Tick: time.Second, StableWindow: 60 * time.Second, PanicWindow: 6 * time.Second},
		Load:     load,
		Services: func() []Service { return ss },
		Panicked: func(string, any) {},
	})
}

// A load step on one instance panics the autoscaler into a scale up at the
// first tick; the service is asked to scale from its current count, for its
// revision, with the reason; a service without scale: is only tended.
func TestAutoscalerTickScalesThroughTheService(t *testing.T) {
	web := &service{route: "app/web", scaled: true, state: State{
		Rev: 3, Scale: spec.Scale{Min: 1, Max: 5, Concurrency: 10}, Current: 1, Ready: 1, Instances: []string{"i1"},
	}}
	worker := &service{route: "app/worker"}
	load := &routerLoad{routes: map[string]router.RouteLoad{"app/web": {InFlight: 25, Backends: 1}}, requests: map[string]uint64{"i1": 7}}
	a := newTestAutoscaler(load, web, worker)
	scalers := map[Service]*scaler{}
	now := time.Unix(1_000_000, 0)

	a.tick(context.Background(), scalers, now)
	assert.Equal(t, []int{3}, web.restarts, "a first look at revision 3 starts a watch")
	require.Len(t, web.scales, 1)
	assert.Equal(t, Up, web.scales[0].Action)
	assert.Equal(t, 3, web.scales[0].N, "ceil(25/10)")
	assert.Equal(t, []int{1}, web.from)
	assert.Equal(t, []int{3}, web.revs)
	assert.Contains(t, web.scales[0].Why, "scale up from 1 to 3: panic")
	require.Len(t, web.recorded, 1)
	assert.True(t, web.recorded[0].Panicking)
	assert.InDelta(t, 25, web.recorded[0].Panic, 0.01)
	assert.Equal(t, 1, worker.tends)
	assert.Empty(t, worker.scales)
	assert.NotContains(t, scalers, Service(worker))

	// The same load at the next tick: held at 3, recorded, no new scale.
	a.tick(context.Background(), scalers, now.Add(time.Second))
	assert.Len(t, web.scales, 1)
	assert.Len(t, web.recorded, 2)
	assert.Equal(t, []int{3}, web.restarts, "the same revision: the same watch")

	// A new revision starts a new watch.
	web.state.Rev = 4
	a.tick(context.Background(), scalers, now.Add(2*time.Second))
	assert.Equal(t, []int{3, 4}, web.restarts)
}

// A frozen service (a deploy owns it) is watched, but nothing is recorded
// or applied; a service that is gone is forgotten.
func TestAutoscalerTickLeavesFrozenAndForgetsGone(t *testing.T) {
	web := &service{route: "app/web", scaled: true, state: State{
		Rev: 1, Scale: spec.Scale{Min: 1, Max: 5, Concurrency: 10}, Current: 1, Ready: 1, Frozen: true,
	}}
	load := &routerLoad{routes: map[string]router.RouteLoad{"app/web": {InFlight: 50}}}
	ss := []Service{web}
	a := New(Config{Load: load, Services: func() []Service { return ss }, Panicked: func(string, any) {}})
	scalers := map[Service]*scaler{}
	a.tick(context.Background(), scalers, time.Unix(1_000_000, 0))
	assert.Empty(t, web.recorded)
	assert.Empty(t, web.scales)
	assert.Contains(t, scalers, Service(web))

	ss = nil
	a.tick(context.Background(), scalers, time.Unix(1_000_001, 0))
	assert.Empty(t, scalers)
}

// A tick that panics is told to Panicked, and the loop goes on.
func TestAutoscalerTickContainsAPanic(t *testing.T) {
	var told any
	a := New(Config{
		Load:     &routerLoad{},
		Services: func() []Service { panic("boom") },
		Panicked: func(what string, v any) { told = v },
	})
	assert.NotPanics(t, func() { a.tick(context.Background(), map[Service]*scaler{}, time.Now()) })
	assert.Equal(t, "boom", told)
}

// Run ticks every Tuning.Tick until its context ends.
func TestAutoscalerRunTicksUntilCancelled(t *testing.T) {
	ticked := make(chan struct{}, 1)
	a := New(Config{
		Tuning: Tuning{Tick: time.Millisecond},
		Load:   &routerLoad{},
		Services: func() []Service {
			select {
			case ticked <- struct{}{}:
			default:
			}
			return nil
		},
		Panicked: func(string, any) {},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	select {
	case <-ticked:
	case <-time.After(5 * time.Second):
		t.Fatal("no tick")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestTuningDefaults(t *testing.T) {
	d := Tuning{}.WithDefaults()
	assert.Equal(t, Tuning{Tick: DefaultTick, StableWindow: DefaultStableWindow, PanicWindow: DefaultPanicWindow, ColdAfter: DefaultColdAfter}, d)
	assert.Equal(t, 2*time.Second, Tuning{StableWindow: 2 * time.Second}.WithDefaults().PanicWindow, "no longer than the stable window")
	assert.Equal(t, -time.Second, Tuning{ColdAfter: -time.Second}.WithDefaults().ColdAfter, "negative: stop at once")
}
