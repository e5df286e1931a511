package cache

import (
	"sync"
	"sync/atomic"
)

// Request collapsing: while one request for a primary key is at the origin
// (a miss or a revalidation), later requests for the same key wait for it
// instead of going there too. The first request, the leader, streams the
// origin's response to its own client as it arrives; the waiters get
// nothing of that stream. When the leader is done they look at what it
// stored:
//
//   - a stored response that is fresh and that their Vary'd headers select
//     is served to each of them — the origin was asked once;
//   - a stale response hidden by stale-if-error is served to them too;
//   - otherwise (not storable, too large, private, a different variant, the
//     leader's client went away) each waiter goes to the origin on its own,
//     without collapsing again, so an uncacheable URL costs one extra round
//     of waiting and never shares a response that was not stored.
//
// Only requests with no Cache-Control restrictions, no validators and no
// Range take part; the others need an answer made for them alone.

// flight is one request at the origin that others may wait for.
type flight struct {
	done chan struct{}
	res  fetchResult // written by the leader before done is closed
}

// fetchResult is what a trip to the origin left in the store.
type fetchResult struct {
	e          *entry // the entry stored or refreshed, or the stale one served
	staleError bool   // e is stale and was served under stale-if-error
	code       int    // the origin's status when staleError
}

type flights struct {
	mu      sync.Mutex
	m       map[string]*flight
	waiters atomic.Int64 // requests that joined a flight as waiters, ever (for tests)
}

// join returns the flight for key and whether the caller leads it.
func (fs *flights) join(key string) (*flight, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f, ok := fs.m[key]; ok {
		fs.waiters.Add(1)
		return f, false
	}
	if fs.m == nil {
		fs.m = make(map[string]*flight)
	}
	f := &flight{done: make(chan struct{})}
	fs.m[key] = f
	return f, true
}

// land ends the flight, releasing its waiters with res.
func (fs *flights) land(key string, f *flight, res fetchResult) {
	fs.mu.Lock()
	delete(fs.m, key)
	fs.mu.Unlock()
	f.res = res
	close(f.done)
}
