package controlplane

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHistoryRingRatesPerRevisionOverEachInterval(t *testing.T) {
	var h historyRing
	now := time.Unix(1_000_000, 0)
	tot := func(n uint64) revTotals {
		t := revTotals{requests: n, latency: time.Duration(n) * 10 * time.Millisecond}
		t.buckets[4] = n // (5ms, 10ms]
		return t
	}
	h.sample(now, map[int]revTotals{1: tot(100)}, map[int]uint64{1: 7})
	pts := h.list()
	require.Len(t, pts, 1, "the first point covers the interval before it")
	require.Len(t, pts[0].Revisions, 1)
	assert.InDelta(t, 100/historyEvery.Seconds(), pts[0].Revisions[0].RequestsPerSecond, 1e-9)
	assert.Zero(t, pts[0].Revisions[0].ErrorsPerSecond, "5xx counted before the service's book are not its")

	now = now.Add(5 * time.Second)
	h.sample(now, map[int]revTotals{1: tot(150), 2: tot(25)}, map[int]uint64{1: 7, 2: 5})
	pts = h.list()
	require.Len(t, pts, 2)
	assert.Equal(t, now, pts[1].Time)
	require.Len(t, pts[1].Revisions, 2)
	r2, r1 := pts[1].Revisions[0], pts[1].Revisions[1]
	assert.Equal(t, 2, r2.Revision, "newest revision first")
	assert.InDelta(t, 5, r2.RequestsPerSecond, 1e-9)
	assert.InDelta(t, 1, r2.ErrorsPerSecond, 1e-9)
	assert.InDelta(t, 10, r1.RequestsPerSecond, 1e-9)
	assert.Zero(t, r1.ErrorsPerSecond)
	assert.Greater(t, r1.LatencyP50MS, 5.0)
	assert.LessOrEqual(t, r1.LatencyP99MS, 10.0)

	// A quiet interval is a point with no revisions; an edge that
	// restarted counting errors is not negative.
	now = now.Add(5 * time.Second)
	h.sample(now, map[int]revTotals{1: tot(150), 2: tot(25)}, map[int]uint64{1: 7, 2: 1})
	pts = h.list()
	require.Len(t, pts, 3)
	assert.Empty(t, pts[2].Revisions)
}

func TestHistoryRingKeepsTheLastHour(t *testing.T) {
	var h historyRing
	now := time.Unix(1_000_000, 0)
	n := uint64(0)
	for i := range historyLen + 10 {
		n += 5 * uint64(i)
		h.sample(now.Add(time.Duration(i)*historyEvery), map[int]revTotals{1: {requests: n}}, nil)
	}
	pts := h.list()
	require.Len(t, pts, historyLen)
	assert.Equal(t, now.Add(10*historyEvery), pts[0].Time, "the oldest kept")
	assert.Equal(t, now.Add(time.Duration(historyLen+9)*historyEvery), pts[len(pts)-1].Time, "the newest last")
	for i := 1; i < len(pts); i++ {
		require.True(t, pts[i].Time.After(pts[i-1].Time), "in order at %d", i)
	}
	last := pts[len(pts)-1].Revisions[0]
	assert.InDelta(t, float64(5*(historyLen+9))/historyEvery.Seconds(), last.RequestsPerSecond, 1e-9)
}
