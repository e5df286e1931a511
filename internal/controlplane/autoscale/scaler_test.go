package autoscale

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/router"
	"github.com/berth-dev/berth/internal/spec"
)

// scalerRun feeds a scaler observations at 1s ticks, as the autoscaler
// loop does; ready and current follow its plans, as they do once the
// daemon applies them.
type scalerRun struct {
	t     *testing.T
	sc    *scaler
	scale spec.Scale
	now   time.Time
	n     int
	// served counts the requests the service's instance answered, for the
	// router's per-instance counters.
	served uint64
	// ready, when not negative, is the healthy instances instead of n.
	ready int
}

func newScalerRun(t *testing.T, scale spec.Scale, start int) *scalerRun {
	t.Helper()
	now := time.Unix(1_000_000, 0)
	cfg := Tuning{Tick: time.Second, StableWindow: 60 * time.Second, PanicWindow: 6 * time.Second}.WithDefaults()
	return &scalerRun{t: t, sc: newScaler(cfg, now), scale: scale, now: now, n: start, ready: -1}
}

// load is what the router and the service show at each tick of a phase.
type load struct {
	inFlight, held int
	// requests: the instance answered requests too short to be seen in
	// flight; woke: a held request asked for an instance.
	requests, woke bool
	// frozen: a deploy, rollback or pause owns the instance set.
	frozen bool
}

// tick makes one observation and returns its plan.
func (r *scalerRun) tick(l load) Plan {
	r.now = r.now.Add(time.Second)
	if l.requests || l.inFlight > 0 {
		r.served++
	}
	obs := observation{
		at: r.now, load: router.RouteLoad{InFlight: l.inFlight, Held: l.held, Backends: r.n},
		requests: map[string]uint64{"i1": r.served}, ready: r.n, current: r.n, scale: r.scale, frozen: l.frozen,
	}
	if r.ready >= 0 {
		obs.ready = r.ready
	}
	if l.woke {
		obs.wokeAt = r.now
	}
	p := r.sc.decide(obs)
	r.n = p.N
	return p
}

// feed applies l for dur and returns the last plan, with the action and
// reason of the last change in it.
func (r *scalerRun) feed(l load, dur time.Duration) Plan {
	var p Plan
	change := Plan{Action: Hold}
	for end := r.now.Add(dur); r.now.Before(end); {
		if p = r.tick(l); p.Action != Hold && p.Action != Wait {
			change = p
		}
	}
	p.Action, p.Why = change.Action, change.Why
	return p
}

// inFlight is a load of n requests in flight at every tick.
func inFlight(n int) load { return load{inFlight: n} }

// TestScalerRules checks each rule of scaler.plan and scaler.decide on its
// own: phases of load, then the count and the last change they led to.
func TestScalerRules(t *testing.T) {
	type phase struct {
		load load
		dur  time.Duration
	}
	tests := []struct {
		name   string
		scale  spec.Scale
		start  int
		ready  int // -1: the current count
		phases []phase
		// what the last phase ends with
		n         int
		action    Action // of the last change; Hold: none
		why       string // in the last change's reason
		panicking bool
	}{
		{
			name: "stable average scales up", scale: spec.Scale{Min: 1, Max: 10, Concurrency: 10}, start: 1, ready: -1,
			phases: []phase{{inFlight(15), 90 * time.Second}},
			n:      2, action: Up, why: "scale up from 1 to 2: 1m0s average",
		},
		{
			name: "held requests count as load: scale from zero", scale: spec.Scale{Min: 0, Max: 3, Concurrency: 10}, start: 0, ready: -1,
			phases: []phase{{load{held: 1}, time.Second}},
			n:      1, action: Up, why: "scale up from 0 to 1",
		},
		{
			name: "panic at twice the ready instances", scale: spec.Scale{Min: 1, Max: 5, Concurrency: 2}, start: 1, ready: -1,
			phases: []phase{{inFlight(1), 70 * time.Second}, {inFlight(12), 2 * time.Second}},
			n:      3, action: Up, why: "scale up from 1 to 3: panic (the 6s average asked for ≥ 2× the 1 ready instance(s)): 6s average 4.7 in flight", panicking: true,
		},
		{
			name: "panic counts ready instances, not wanted ones", scale: spec.Scale{Min: 1, Max: 10, Concurrency: 10}, start: 4, ready: 1,
			phases: []phase{{inFlight(25), 6 * time.Second}},
			n:      4, action: Hold, panicking: true,
		},
		{
			name: "no panic below twice the ready instances", scale: spec.Scale{Min: 1, Max: 10, Concurrency: 10}, start: 4, ready: 4,
			phases: []phase{{inFlight(25), 6 * time.Second}},
			n:      4, action: Hold,
		},
		{
			name: "panic capped at max", scale: spec.Scale{Min: 1, Max: 5, Concurrency: 2}, start: 1, ready: -1,
			phases: []phase{{inFlight(1), 70 * time.Second}, {inFlight(30), 2 * time.Second}},
			n:      5, action: Up, why: "per instance = 5.33 (capped at max 5)", panicking: true,
		},
		{
			name: "stable scale up capped at max", scale: spec.Scale{Min: 1, Max: 3, Concurrency: 10}, start: 1, ready: 2,
			phases: []phase{{inFlight(35), time.Second}},
			n:      3, action: Up, why: "scale up from 1 to 3: 1m0s average 35.0 in flight / target 10 per instance = 3.50 (capped at max 3)",
		},
		{
			name: "at max, more load changes nothing", scale: spec.Scale{Min: 1, Max: 3, Concurrency: 10}, start: 3, ready: -1,
			phases: []phase{{inFlight(29), 70 * time.Second}, {inFlight(100), 2 * time.Second}},
			n:      3, action: Hold,
		},
		{
			name: "never down while panicking", scale: spec.Scale{Min: 1, Max: 5, Concurrency: 2}, start: 1, ready: -1,
			phases: []phase{{inFlight(1), 70 * time.Second}, {inFlight(12), 9 * time.Second}, {inFlight(0), 30 * time.Second}},
			n:      5, action: Hold, panicking: true,
		},
		{
			name: "panic ends after a stable window, then down to min", scale: spec.Scale{Min: 1, Max: 5, Concurrency: 2}, start: 1, ready: -1,
			phases: []phase{{inFlight(1), 70 * time.Second}, {inFlight(12), 9 * time.Second}, {inFlight(0), 120 * time.Second}},
			n:      1, action: Down, why: "scale down from 5 to 1",
		},
		{
			name: "no scale down before a whole stable window watched", scale: spec.Scale{Min: 1, Max: 4, Concurrency: 10}, start: 4, ready: -1,
			phases: []phase{{inFlight(0), 59 * time.Second}},
			n:      4, action: Hold,
		},
		{
			name: "scale down after a whole stable window watched", scale: spec.Scale{Min: 1, Max: 4, Concurrency: 10}, start: 4, ready: -1,
			phases: []phase{{inFlight(0), 61 * time.Second}},
			n:      1, action: Down, why: "scale down from 4 to 1: 1m0s average 0.0 in flight / target 10 per instance = 0.00 (min 1)",
		},
		{
			name: "down no lower than min", scale: spec.Scale{Min: 2, Max: 4, Concurrency: 10}, start: 4, ready: -1,
			phases: []phase{{inFlight(0), 120 * time.Second}},
			n:      2, action: Down, why: "(min 2)",
		},
		{
			name: "up to min", scale: spec.Scale{Min: 2, Max: 4, Concurrency: 10}, start: 1, ready: -1,
			phases: []phase{{inFlight(0), time.Second}},
			n:      2, action: Up, why: "scale up from 1 to 2",
		},
		{
			name: "requests too short to be seen in flight keep one instance", scale: spec.Scale{Min: 0, Max: 3, Concurrency: 10}, start: 1, ready: -1,
			phases: []phase{{load{requests: true}, 120 * time.Second}},
			n:      1, action: Hold,
		},
		{
			name: "a wake keeps one instance", scale: spec.Scale{Min: 0, Max: 3, Concurrency: 10}, start: 1, ready: -1,
			phases: []phase{{load{woke: true}, 120 * time.Second}},
			n:      1, action: Hold,
		},
		{
			name: "not yet idle for a stable window", scale: spec.Scale{Min: 0, Max: 3, Concurrency: 10}, start: 1, ready: -1,
			phases: []phase{{load{requests: true}, 120 * time.Second}, {inFlight(0), 59 * time.Second}},
			n:      1, action: Hold,
		},
		{
			name: "zero after a whole stable window idle", scale: spec.Scale{Min: 0, Max: 3, Concurrency: 10}, start: 1, ready: -1,
			phases: []phase{{load{requests: true}, 120 * time.Second}, {inFlight(0), 60 * time.Second}},
			n:      0, action: ToZero, why: "scale to zero from 1: no request for 1m0s (1m0s average 0.00 in flight)",
		},
		{
			name: "frozen: watched, not decided", scale: spec.Scale{Min: 1, Max: 10, Concurrency: 10}, start: 1, ready: -1,
			phases: []phase{{load{inFlight: 30, frozen: true}, 70 * time.Second}},
			n:      1, action: Hold,
		},
		{
			name: "what was watched while frozen counts once thawed", scale: spec.Scale{Min: 1, Max: 10, Concurrency: 10}, start: 1, ready: -1,
			phases: []phase{{load{inFlight: 15, frozen: true}, 70 * time.Second}, {inFlight(0), time.Second}},
			n:      2, action: Up, why: "scale up from 1 to 2: 1m0s average 14.8 in flight / target 10 per instance = 1.48",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newScalerRun(t, tt.scale, tt.start)
			r.ready = tt.ready
			var p Plan
			for _, ph := range tt.phases {
				p = r.feed(ph.load, ph.dur)
			}
			assert.Equal(t, tt.n, p.N, "count")
			assert.Equal(t, tt.action.String(), p.Action.String(), "last change (%s)", p.Why)
			assert.Contains(t, p.Why, tt.why)
			assert.Equal(t, tt.panicking, p.Panicking, "panicking")
		})
	}
}

func TestScalerKeepsConcurrencyNearTarget(t *testing.T) {
	r := newScalerRun(t, spec.Scale{Min: 1, Max: 10, Concurrency: 10}, 1)
	p := r.feed(inFlight(15), 90*time.Second)
	assert.Equal(t, 2, p.N, "ceil(15/10)")
	assert.False(t, p.Panicking, "15 in flight is under 2x the target for 1 instance")
	assert.InDelta(t, 15, p.Stable, 0.01)

	p = r.feed(inFlight(30), 90*time.Second)
	assert.Equal(t, 3, p.N)
}

func TestScalerPanicsOnALoadStep(t *testing.T) {
	r := newScalerRun(t, spec.Scale{Min: 1, Max: 5, Concurrency: 2}, 1)
	r.feed(inFlight(1), 70*time.Second) // a whole stable window of calm
	require.Equal(t, 1, r.n)

	// A step to 12 in flight: the 6s panic window asks for 2x the one
	// instance (an average of 4 = 2 x target 2) within 3s ...
	p := r.feed(inFlight(12), 3*time.Second)
	assert.True(t, p.Panicking)
	assert.Greater(t, p.N, 1)
	assert.Contains(t, p.Why, "panic")
	// ... and for 12/2 = 6 once the window is full: capped at max 5.
	p = r.feed(inFlight(12), 6*time.Second)
	assert.Equal(t, 5, p.N)
	assert.InDelta(t, 12, p.Panic, 0.01)

	// The load stops: no scale down while panicking (a stable window after
	// the last panic tick) ...
	p = r.feed(inFlight(0), 30*time.Second)
	assert.True(t, p.Panicking)
	assert.Equal(t, 5, p.N)
	// ... then down to min once the stable average says so.
	p = r.feed(inFlight(0), 90*time.Second)
	assert.False(t, p.Panicking)
	assert.Equal(t, 1, p.N)
}

func TestScalerScalesToZeroOnlyWhenIdle(t *testing.T) {
	r := newScalerRun(t, spec.Scale{Min: 0, Max: 3, Concurrency: 10}, 1)
	// Requests too short to be seen in flight still count as activity.
	for range 120 {
		require.Equal(t, 1, r.tick(load{requests: true}).N)
	}
	// Idle: zero only after a whole stable window without a request.
	start := r.now
	var p Plan
	for p.N = 1; p.N == 1; {
		p = r.tick(inFlight(0))
	}
	assert.Equal(t, 0, p.N)
	assert.Equal(t, ToZero, p.Action)
	assert.Equal(t, 60*time.Second, r.now.Sub(start).Round(time.Second))
	assert.Contains(t, p.Why, "scale to zero from 1: no request for 1m0s")
}

func TestScalerWaitsAWholeWindowBeforeScalingDown(t *testing.T) {
	// Just deployed (or the daemon just started) with 4 instances: no
	// scale down until a full stable window was watched.
	r := newScalerRun(t, spec.Scale{Min: 1, Max: 4, Concurrency: 10}, 4)
	p := r.feed(inFlight(0), 59*time.Second)
	assert.Equal(t, 4, p.N)
	p = r.feed(inFlight(0), 2*time.Second)
	assert.Equal(t, 1, p.N)
	assert.Contains(t, p.Why, "scale down from 4 to 1")
}

// An instance the router does not know (yet) has no count: requests seen
// are those of the instances it knows, compared with the last tick's.
func TestScalerSawRequests(t *testing.T) {
	sc := newScaler(Tuning{}.WithDefaults(), time.Unix(1_000_000, 0))
	assert.False(t, sc.sawRequests(map[string]uint64{}), "no instance")
	assert.False(t, sc.sawRequests(map[string]uint64{"a": 0}), "a new instance that answered nothing")
	assert.True(t, sc.sawRequests(map[string]uint64{"a": 3}), "a answered")
	assert.False(t, sc.sawRequests(map[string]uint64{"a": 3}), "nothing since")
	assert.True(t, sc.sawRequests(map[string]uint64{"a": 3, "b": 1}), "b joined and answered")
	assert.True(t, sc.sawRequests(map[string]uint64{"a": 1, "b": 1}), "a's counters restarted: it answered since")
	assert.False(t, sc.sawRequests(map[string]uint64{"b": 1}), "a left")
}

func TestScalerDoesNotFlapOnABoundary(t *testing.T) {
	r := newScalerRun(t, spec.Scale{Min: 1, Max: 10, Concurrency: 2}, 4)
	r.feed(inFlight(7), 70*time.Second) // ceil(7/2) = 4
	require.Equal(t, 4, r.n)
	// A stable average hovering on 6 (the 3/4 boundary): set it directly.
	tick := func(avg float64) Plan {
		r.now = r.now.Add(time.Second)
		r.sc.samples = []sample{{at: r.now, c: avg}}
		p := r.sc.plan(r.now, r.scale, r.n, r.n)
		r.n = p.N
		return p
	}
	for i := range 41 { // ends on a 4
		avg := 5.9 // wants 3
		if i%4 == 0 {
			avg = 6.1 // wants 4
		}
		require.Equal(t, 4, tick(avg).N, "tick %d: a 4 within every 6s panic window", i)
	}
	for i := range 5 {
		require.Equal(t, 4, tick(5.9).N, "tick %d", i)
	}
	p := tick(5.9)
	assert.Equal(t, 3, p.N, "3 for a whole panic window")
	assert.Equal(t, Down, p.Action)
	assert.Contains(t, p.Why, "scale down from 4 to 3")
}
