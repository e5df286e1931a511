package controlplane

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/router"
	"github.com/berth-dev/berth/internal/spec"
)

// run feeds a scaler constant concurrency c for dur at 1s ticks and returns
// the last decision; ready and current follow its decisions.
type scalerRun struct {
	t     *testing.T
	sc    *scaler
	scale spec.Scale
	now   time.Time
	n     int
}

func newScalerRun(t *testing.T, scale spec.Scale, start int) *scalerRun {
	t.Helper()
	now := time.Unix(1_000_000, 0)
	cfg := AutoscaleConfig{Tick: time.Second, StableWindow: 60 * time.Second, PanicWindow: 6 * time.Second}.withDefaults()
	return &scalerRun{t: t, sc: newScaler(cfg, now), scale: scale, now: now, n: start}
}

// feed returns the last decision, with the reason of the last change in it.
func (r *scalerRun) feed(c float64, dur time.Duration) decision {
	var d decision
	why := ""
	for end := r.now.Add(dur); r.now.Before(end); {
		r.now = r.now.Add(time.Second)
		r.sc.observe(r.now, c, c > 0)
		d = r.sc.decide(r.now, r.scale, r.n, r.n)
		if d.n != r.n {
			why = d.why
		}
		r.n = d.n
	}
	d.why = why
	return d
}

func TestScalerKeepsConcurrencyNearTarget(t *testing.T) {
	r := newScalerRun(t, spec.Scale{Min: 1, Max: 10, Concurrency: 10}, 1)
	d := r.feed(15, 90*time.Second)
	assert.Equal(t, 2, d.n, "ceil(15/10)")
	assert.False(t, d.panicking, "15 in flight is under 2x the target for 1 instance")
	assert.InDelta(t, 15, d.stable, 0.01)

	d = r.feed(30, 90*time.Second)
	assert.Equal(t, 3, d.n)
}

func TestScalerPanicsOnALoadStep(t *testing.T) {
	r := newScalerRun(t, spec.Scale{Min: 1, Max: 5, Concurrency: 2}, 1)
	r.feed(1, 70*time.Second) // a whole stable window of calm
	require.Equal(t, 1, r.n)

	// A step to 12 in flight: the 6s panic window asks for 2x the one
	// instance (an average of 4 = 2 x target 2) within 3s ...
	d := r.feed(12, 3*time.Second)
	assert.True(t, d.panicking)
	assert.Greater(t, d.n, 1)
	assert.Contains(t, d.why, "panic")
	// ... and for 12/2 = 6 once the window is full: capped at max 5.
	d = r.feed(12, 6*time.Second)
	assert.Equal(t, 5, d.n)
	assert.InDelta(t, 12, d.panic, 0.01)

	// The load stops: no scale down while panicking (a stable window after
	// the last panic tick) ...
	d = r.feed(0, 30*time.Second)
	assert.True(t, d.panicking)
	assert.Equal(t, 5, d.n)
	// ... then down to min once the stable average says so.
	d = r.feed(0, 90*time.Second)
	assert.False(t, d.panicking)
	assert.Equal(t, 1, d.n)
}

func TestScalerScalesToZeroOnlyWhenIdle(t *testing.T) {
	r := newScalerRun(t, spec.Scale{Min: 0, Max: 3, Concurrency: 10}, 1)
	// Requests too short to be seen in flight still count as activity.
	for range 120 {
		r.now = r.now.Add(time.Second)
		r.sc.observe(r.now, 0, true)
		d := r.sc.decide(r.now, r.scale, 1, 1)
		require.Equal(t, 1, d.n)
	}
	// Idle: zero only after a whole stable window without a request.
	start := r.now
	var d decision
	for d.n = 1; d.n == 1; {
		d = r.feed(0, time.Second)
	}
	assert.Equal(t, 0, d.n)
	assert.Equal(t, 60*time.Second, r.now.Sub(start).Round(time.Second))
	assert.Contains(t, d.why, "scale to zero from 1: no request for 1m0s")
}

func TestScalerWaitsAWholeWindowBeforeScalingDown(t *testing.T) {
	// Just deployed (or the daemon just started) with 4 instances: no
	// scale down until a full stable window was watched.
	r := newScalerRun(t, spec.Scale{Min: 1, Max: 4, Concurrency: 10}, 4)
	d := r.feed(0, 59*time.Second)
	assert.Equal(t, 4, d.n)
	d = r.feed(0, 2*time.Second)
	assert.Equal(t, 1, d.n)
	assert.Contains(t, d.why, "scale down from 4 to 1")
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
	r.feed(7, 70*time.Second) // ceil(7/2) = 4
	require.Equal(t, 4, r.n)
	// A stable average hovering on 6 (the 3/4 boundary): set it directly.
	tick := func(avg float64) decision {
		r.now = r.now.Add(time.Second)
		r.sc.samples = []sample{{at: r.now, c: avg}}
		d := r.sc.decide(r.now, r.scale, r.n, r.n)
		r.n = d.n
		return d
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
	d := tick(5.9)
	assert.Equal(t, 3, d.n, "3 for a whole panic window")
	assert.Contains(t, d.why, "scale down from 4 to 3")
}
