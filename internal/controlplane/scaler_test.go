package controlplane

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
	cfg := AutoscaleConfig{Tick: time.Second, StableWindow: 60 * time.Second, PanicWindow: 6 * time.Second}.withDefaults()
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
func (r *scalerRun) tick(l load) scalePlan {
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
	r.n = p.n
	return p
}

// feed applies l for dur and returns the last plan, with the action and
// reason of the last change in it.
func (r *scalerRun) feed(l load, dur time.Duration) scalePlan {
	var p scalePlan
	change := scalePlan{action: scaleHold}
	for end := r.now.Add(dur); r.now.Before(end); {
		if p = r.tick(l); p.action != scaleHold && p.action != scaleWait {
			change = p
		}
	}
	p.action, p.why = change.action, change.why
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
		action    scaleAction // of the last change; scaleHold: none
		why       string      // in the last change's reason
		panicking bool
	}{
		{
			name: "stable average scales up", scale: spec.Scale{Min: 1, Max: 10, Concurrency: 10}, start: 1, ready: -1,
			phases: []phase{{inFlight(15), 90 * time.Second}},
			n:      2, action: scaleUp, why: "scale up from 1 to 2: 1m0s average",
		},
		{
			name: "held requests count as load: scale from zero", scale: spec.Scale{Min: 0, Max: 3, Concurrency: 10}, start: 0, ready: -1,
			phases: []phase{{load{held: 1}, time.Second}},
			n:      1, action: scaleUp, why: "scale up from 0 to 1",
		},
		{
			name: "panic at twice the ready instances", scale: spec.Scale{Min: 1, Max: 5, Concurrency: 2}, start: 1, ready: -1,
			phases: []phase{{inFlight(1), 70 * time.Second}, {inFlight(12), 2 * time.Second}},
			n:      3, action: scaleUp, why: "scale up from 1 to 3: panic (the 6s average asked for ≥ 2× the 1 ready instance(s)): 6s average 4.7 in flight", panicking: true,
		},
		{
			name: "panic counts ready instances, not wanted ones", scale: spec.Scale{Min: 1, Max: 10, Concurrency: 10}, start: 4, ready: 1,
			phases: []phase{{inFlight(25), 6 * time.Second}},
			n:      4, action: scaleHold, panicking: true,
		},
		{
			name: "no panic below twice the ready instances", scale: spec.Scale{Min: 1, Max: 10, Concurrency: 10}, start: 4, ready: 4,
			phases: []phase{{inFlight(25), 6 * time.Second}},
			n:      4, action: scaleHold,
		},
		{
			name: "panic capped at max", scale: spec.Scale{Min: 1, Max: 5, Concurrency: 2}, start: 1, ready: -1,
			phases: []phase{{inFlight(1), 70 * time.Second}, {inFlight(30), 2 * time.Second}},
			n:      5, action: scaleUp, why: "per instance = 5.33 (capped at max 5)", panicking: true,
		},
		{
			name: "stable scale up capped at max", scale: spec.Scale{Min: 1, Max: 3, Concurrency: 10}, start: 1, ready: 2,
			phases: []phase{{inFlight(35), time.Second}},
			n:      3, action: scaleUp, why: "scale up from 1 to 3: 1m0s average 35.0 in flight / target 10 per instance = 3.50 (capped at max 3)",
		},
		{
			name: "at max, more load changes nothing", scale: spec.Scale{Min: 1, Max: 3, Concurrency: 10}, start: 3, ready: -1,
			phases: []phase{{inFlight(29), 70 * time.Second}, {inFlight(100), 2 * time.Second}},
			n:      3, action: scaleHold,
		},
		{
			name: "never down while panicking", scale: spec.Scale{Min: 1, Max: 5, Concurrency: 2}, start: 1, ready: -1,
			phases: []phase{{inFlight(1), 70 * time.Second}, {inFlight(12), 9 * time.Second}, {inFlight(0), 30 * time.Second}},
			n:      5, action: scaleHold, panicking: true,
		},
		{
			name: "panic ends after a stable window, then down to min", scale: spec.Scale{Min: 1, Max: 5, Concurrency: 2}, start: 1, ready: -1,
			phases: []phase{{inFlight(1), 70 * time.Second}, {inFlight(12), 9 * time.Second}, {inFlight(0), 120 * time.Second}},
			n:      1, action: scaleDown, why: "scale down from 5 to 1",
		},
		{
			name: "no scale down before a whole stable window watched", scale: spec.Scale{Min: 1, Max: 4, Concurrency: 10}, start: 4, ready: -1,
			phases: []phase{{inFlight(0), 59 * time.Second}},
			n:      4, action: scaleHold,
		},
		{
			name: "scale down after a whole stable window watched", scale: spec.Scale{Min: 1, Max: 4, Concurrency: 10}, start: 4, ready: -1,
			phases: []phase{{inFlight(0), 61 * time.Second}},
			n:      1, action: scaleDown, why: "scale down from 4 to 1: 1m0s average 0.0 in flight / target 10 per instance = 0.00 (min 1)",
		},
		{
			name: "down no lower than min", scale: spec.Scale{Min: 2, Max: 4, Concurrency: 10}, start: 4, ready: -1,
			phases: []phase{{inFlight(0), 120 * time.Second}},
			n:      2, action: scaleDown, why: "(min 2)",
		},
		{
			name: "up to min", scale: spec.Scale{Min: 2, Max: 4, Concurrency: 10}, start: 1, ready: -1,
			phases: []phase{{inFlight(0), time.Second}},
			n:      2, action: scaleUp, why: "scale up from 1 to 2",
		},
		{
			name: "requests too short to be seen in flight keep one instance", scale: spec.Scale{Min: 0, Max: 3, Concurrency: 10}, start: 1, ready: -1,
			phases: []phase{{load{requests: true}, 120 * time.Second}},
			n:      1, action: scaleHold,
		},
		{
			name: "a wake keeps one instance", scale: spec.Scale{Min: 0, Max: 3, Concurrency: 10}, start: 1, ready: -1,
			phases: []phase{{load{woke: true}, 120 * time.Second}},
			n:      1, action: scaleHold,
		},
		{
			name: "not yet idle for a stable window", scale: spec.Scale{Min: 0, Max: 3, Concurrency: 10}, start: 1, ready: -1,
			phases: []phase{{load{requests: true}, 120 * time.Second}, {inFlight(0), 59 * time.Second}},
			n:      1, action: scaleHold,
		},
		{
			name: "zero after a whole stable window idle", scale: spec.Scale{Min: 0, Max: 3, Concurrency: 10}, start: 1, ready: -1,
			phases: []phase{{load{requests: true}, 120 * time.Second}, {inFlight(0), 60 * time.Second}},
			n:      0, action: scaleToZero, why: "scale to zero from 1: no request for 1m0s (1m0s average 0.00 in flight)",
		},
		{
			name: "frozen: watched, not decided", scale: spec.Scale{Min: 1, Max: 10, Concurrency: 10}, start: 1, ready: -1,
			phases: []phase{{load{inFlight: 30, frozen: true}, 70 * time.Second}},
			n:      1, action: scaleHold,
		},
		{
			name: "what was watched while frozen counts once thawed", scale: spec.Scale{Min: 1, Max: 10, Concurrency: 10}, start: 1, ready: -1,
			phases: []phase{{load{inFlight: 15, frozen: true}, 70 * time.Second}, {inFlight(0), time.Second}},
			n:      2, action: scaleUp, why: "scale up from 1 to 2: 1m0s average 14.8 in flight / target 10 per instance = 1.48",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newScalerRun(t, tt.scale, tt.start)
			r.ready = tt.ready
			var p scalePlan
			for _, ph := range tt.phases {
				p = r.feed(ph.load, ph.dur)
			}
			assert.Equal(t, tt.n, p.n, "count")
			assert.Equal(t, tt.action.String(), p.action.String(), "last change (%s)", p.why)
			assert.Contains(t, p.why, tt.why)
			assert.Equal(t, tt.panicking, p.panicking, "panicking")
		})
	}
}

func TestScalerKeepsConcurrencyNearTarget(t *testing.T) {
	r := newScalerRun(t, spec.Scale{Min: 1, Max: 10, Concurrency: 10}, 1)
	p := r.feed(inFlight(15), 90*time.Second)
	assert.Equal(t, 2, p.n, "ceil(15/10)")
	assert.False(t, p.panicking, "15 in flight is under 2x the target for 1 instance")
	assert.InDelta(t, 15, p.stable, 0.01)

	p = r.feed(inFlight(30), 90*time.Second)
	assert.Equal(t, 3, p.n)
}

func TestScalerPanicsOnALoadStep(t *testing.T) {
	r := newScalerRun(t, spec.Scale{Min: 1, Max: 5, Concurrency: 2}, 1)
	r.feed(inFlight(1), 70*time.Second) // a whole stable window of calm
	require.Equal(t, 1, r.n)

	// A step to 12 in flight: the 6s panic window asks for 2x the one
	// instance (an average of 4 = 2 x target 2) within 3s ...
	p := r.feed(inFlight(12), 3*time.Second)
	assert.True(t, p.panicking)
	assert.Greater(t, p.n, 1)
	assert.Contains(t, p.why, "panic")
	// ... and for 12/2 = 6 once the window is full: capped at max 5.
	p = r.feed(inFlight(12), 6*time.Second)
	assert.Equal(t, 5, p.n)
	assert.InDelta(t, 12, p.panic, 0.01)

	// The load stops: no scale down while panicking (a stable window after
	// the last panic tick) ...
	p = r.feed(inFlight(0), 30*time.Second)
	assert.True(t, p.panicking)
	assert.Equal(t, 5, p.n)
	// ... then down to min once the stable average says so.
	p = r.feed(inFlight(0), 90*time.Second)
	assert.False(t, p.panicking)
	assert.Equal(t, 1, p.n)
}

func TestScalerScalesToZeroOnlyWhenIdle(t *testing.T) {
	r := newScalerRun(t, spec.Scale{Min: 0, Max: 3, Concurrency: 10}, 1)
	// Requests too short to be seen in flight still count as activity.
	for range 120 {
		require.Equal(t, 1, r.tick(load{requests: true}).n)
	}
	// Idle: zero only after a whole stable window without a request.
	start := r.now
	var p scalePlan
	for p.n = 1; p.n == 1; {
		p = r.tick(inFlight(0))
	}
	assert.Equal(t, 0, p.n)
	assert.Equal(t, scaleToZero, p.action)
	assert.Equal(t, 60*time.Second, r.now.Sub(start).Round(time.Second))
	assert.Contains(t, p.why, "scale to zero from 1: no request for 1m0s")
}

func TestScalerWaitsAWholeWindowBeforeScalingDown(t *testing.T) {
	// Just deployed (or the daemon just started) with 4 instances: no
	// scale down until a full stable window was watched.
	r := newScalerRun(t, spec.Scale{Min: 1, Max: 4, Concurrency: 10}, 4)
	p := r.feed(inFlight(0), 59*time.Second)
	assert.Equal(t, 4, p.n)
	p = r.feed(inFlight(0), 2*time.Second)
	assert.Equal(t, 1, p.n)
	assert.Contains(t, p.why, "scale down from 4 to 1")
}

// An instance the router does not know (yet) has no count: requests seen
// are those of the instances it knows, compared with the last tick's.
func TestScalerSawRequests(t *testing.T) {
	sc := newScaler(AutoscaleConfig{}.withDefaults(), time.Unix(1_000_000, 0))
	assert.False(t, sc.sawRequests(map[string]uint64{}), "no instance")
	assert.False(t, sc.sawRequests(map[string]uint64{"a": 0}), "a new instance that answered nothing")
	assert.True(t, sc.sawRequests(map[string]uint64{"a": 3}), "a answered")
	assert.False(t, sc.sawRequests(map[string]uint64{"a": 3}), "nothing since")
	assert.True(t, sc.sawRequests(map[string]uint64{"a": 3, "b": 1}), "b joined and answered")
	assert.True(t, sc.sawRequests(map[string]uint64{"a": 1, "b": 1}), "a's counters restarted: it answered since")
	assert.False(t, sc.sawRequests(map[string]uint64{"b": 1}), "a left")
}

func TestQuantile(t *testing.T) {
	var b [router.NumLatencyBuckets]uint64
	assert.Equal(t, time.Duration(0), quantile(b, 0.5))
	b[7] = 100 // all in (50ms, 100ms]
	assert.Equal(t, 75*time.Millisecond, quantile(b, 0.5))
	assert.Equal(t, 99500*time.Microsecond, quantile(b, 0.99))
	b[len(b)-1] = 1000 // most beyond the last bound
	assert.Equal(t, 30*time.Second, quantile(b, 0.99))
}

func TestTrafficBookRatesPerRevision(t *testing.T) {
	var b trafficBook
	now := time.Unix(1_000_000, 0)
	st := func(n uint64, each time.Duration) router.BackendStats {
		var s router.BackendStats
		s.Requests, s.Latency = n, time.Duration(n)*each
		s.Buckets[4] = n // (5ms, 10ms]
		return s
	}
	b.record(now, []reading{{id: "a", rev: 1, stats: st(100, 10*time.Millisecond)}})
	for i := 1; i <= 10; i++ {
		b.record(now.Add(time.Duration(i)*time.Second), []reading{
			{id: "a", rev: 1, stats: st(100+uint64(i)*5, 10*time.Millisecond)},
			{id: "b", rev: 2, stats: st(uint64(i)*20, 10*time.Millisecond)},
		})
	}
	rep := b.report(2)
	require.Len(t, rep, 2)
	// The first sample's requests came in the tick before it: the window
	// starts there (11s), so requests served before the first sample
	// still show a rate and latencies.
	assert.Equal(t, 2, rep[0].Revision, "serving revision first")
	assert.Equal(t, uint64(200), rep[0].Requests)
	assert.InDelta(t, 200.0/11, rep[0].RequestsPerSecond, 0.01)
	assert.InDelta(t, 10, rep[0].LatencyMeanMS, 0.01)
	assert.Equal(t, "11s", rep[0].Window)
	assert.Equal(t, uint64(150), rep[1].Requests)
	assert.InDelta(t, 150.0/11, rep[1].RequestsPerSecond, 0.01)

	// Once the window has moved past the start, it covers the last minute.
	for i := 11; i <= 80; i++ {
		b.record(now.Add(time.Duration(i)*time.Second), []reading{
			{id: "a", rev: 1, stats: st(100+uint64(i)*5, 10*time.Millisecond)},
			{id: "b", rev: 2, stats: st(uint64(i)*20, 10*time.Millisecond)},
		})
	}
	rep = b.report(2)
	require.Len(t, rep, 2)
	assert.Equal(t, "1m0s", rep[0].Window)
	assert.InDelta(t, 20, rep[0].RequestsPerSecond, 0.01)
	assert.InDelta(t, 5, rep[1].RequestsPerSecond, 0.01)

	// An instance whose counters restart (the edge forgot it) is not negative.
	b.record(now.Add(81*time.Second), []reading{{id: "a", rev: 1, stats: st(3, 10*time.Millisecond)}})
	assert.Equal(t, uint64(100+80*5+3), b.totals[1].requests)
}

func TestScalerDoesNotFlapOnABoundary(t *testing.T) {
	r := newScalerRun(t, spec.Scale{Min: 1, Max: 10, Concurrency: 2}, 4)
	r.feed(inFlight(7), 70*time.Second) // ceil(7/2) = 4
	require.Equal(t, 4, r.n)
	// A stable average hovering on 6 (the 3/4 boundary): set it directly.
	tick := func(avg float64) scalePlan {
		r.now = r.now.Add(time.Second)
		r.sc.samples = []sample{{at: r.now, c: avg}}
		p := r.sc.plan(r.now, r.scale, r.n, r.n)
		r.n = p.n
		return p
	}
	for i := range 41 { // ends on a 4
		avg := 5.9 // wants 3
		if i%4 == 0 {
			avg = 6.1 // wants 4
		}
		require.Equal(t, 4, tick(avg).n, "tick %d: a 4 within every 6s panic window", i)
	}
	for i := range 5 {
		require.Equal(t, 4, tick(5.9).n, "tick %d", i)
	}
	p := tick(5.9)
	assert.Equal(t, 3, p.n, "3 for a whole panic window")
	assert.Equal(t, scaleDown, p.action)
	assert.Contains(t, p.why, "scale down from 4 to 3")
}
