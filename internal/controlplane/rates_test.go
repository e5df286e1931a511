package controlplane

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/router"
)

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
