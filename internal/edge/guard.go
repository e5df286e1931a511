package edge

import (
	"sync/atomic"
)

// A guard watches the origins a shift (or a canary) sends traffic to and
// rolls the shift back by itself when their error rate passes a threshold:
//
//	armed ──errors/requests > threshold over window (and >= guardMinRequests)──▶ tripped
//
// A tripped guard never re-arms: the split it belongs to sends everything to
// its default arm until the control plane installs a new shift (with a new
// guard) or clears it. Tripping calls Options.OnGuardTrip once.

// guardMinRequests is how many requests the window must hold before the
// guard judges: one failure among the first three requests says little.
const guardMinRequests = 10

// guardBuckets is the resolution of the sliding window.
const guardBuckets = 10

// guard counts requests and failures in a sliding window of buckets,
// lock-free: the request path only does atomic adds.
type guard struct {
	key       string // identity across snapshots, see Edge.guardLocked
	threshold float64
	bucketDur int64 // clock() units
	buckets   [guardBuckets]guardBucket
	tripped   atomic.Bool
	onTrip    func(errs, total int64)
}

type guardBucket struct {
	slot         atomic.Int64
	total, fails atomic.Int64
}

func newGuard(key string, g Guard) *guard {
	w := g.Window
	if w <= 0 {
		w = DefaultGuardWindow
	}
	return &guard{key: key, threshold: g.ErrorRate, bucketDur: max(int64(w)/guardBuckets, 1)}
}

// record counts one request to a guarded origin and trips the guard when the
// window's error rate passes the threshold. Only failures can raise the
// rate, so only they evaluate it.
func (g *guard) record(failed bool) {
	if g == nil || g.tripped.Load() {
		return
	}
	slot := clock() / g.bucketDur
	b := &g.buckets[slot%guardBuckets]
	if s := b.slot.Load(); s != slot && b.slot.CompareAndSwap(s, slot) {
		// A bucket from an older turn of the ring: start it afresh. A
		// concurrent add between the swap and the reset may be lost; the
		// guard is a rate, and one request more or less does not change it.
		b.total.Store(0)
		b.fails.Store(0)
	}
	b.total.Add(1)
	if !failed {
		return
	}
	b.fails.Add(1)
	fails, total := g.window(slot)
	if total >= guardMinRequests && float64(fails) > g.threshold*float64(total) && g.tripped.CompareAndSwap(false, true) {
		if g.onTrip != nil {
			go g.onTrip(fails, total)
		}
	}
}

// window sums the buckets of the last guardBuckets slots up to now.
func (g *guard) window(now int64) (fails, total int64) {
	for i := range g.buckets {
		b := &g.buckets[i]
		if s := b.slot.Load(); s > now-guardBuckets && s <= now {
			fails += b.fails.Load()
			total += b.total.Load()
		}
	}
	return fails, total
}

func (g *guard) isTripped() bool { return g != nil && g.tripped.Load() }
