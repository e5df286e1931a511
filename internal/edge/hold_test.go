package edge

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHoldServesOnceABackendArrives(t *testing.T) {
	t.Parallel()
	b := newTestBackend(t, "b1", nil)
	var wakes atomic.Int64
	woken := make(chan struct{}, 1)
	route := Route{Key: "app/web", Hosts: []string{"web.app.localhost"}, Hold: &Hold{
		Wake: func() {
			wakes.Add(1)
			select {
			case woken <- struct{}{}:
			default:
			}
		},
		Timeout: 10 * time.Second,
	}}
	e, srv := newTestEdge(t, Options{}, route)
	c := testClient(t)

	const n = 20
	results := make(chan result, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			res, err := send(c, http.MethodGet, srv.URL, "web.app.localhost", "/", "")
			if err != nil {
				res.status, res.body = -1, err.Error()
			}
			results <- res
		})
	}
	<-woken
	eventually(t, 5*time.Second, func() bool { return e.Load("app/web").Held == n }, "all requests held")
	// A request is counted as held just before it asks for a backend.
	eventually(t, 5*time.Second, func() bool { return wakes.Load() >= n }, "every held request asks for a backend")
	assert.Equal(t, int64(n), wakes.Load(), "every held request asks for a backend once")

	// A change to another route does not release them.
	e.Update(Route{Key: "app/other", Hosts: []string{"other.app.localhost"}})
	time.Sleep(20 * time.Millisecond)
	assert.Equal(t, n, e.Load("app/web").Held)

	route.Backends = backendsOf(b)
	e.Update(route)
	wg.Wait()
	close(results)
	for res := range results {
		assert.Equal(t, http.StatusOK, res.status, res.body)
		assert.Equal(t, "b1:", res.body)
	}
	assert.Equal(t, 0, e.Load("app/web").Held)
	assert.Equal(t, int64(n), b.hits.Load())
}

func TestHoldGivesUp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		hold    Hold
		waiting int // requests already held
		msg     string
		within  time.Duration
	}{
		{name: "timeout", hold: Hold{Timeout: 100 * time.Millisecond}, msg: "did not start within 100ms", within: 5 * time.Second},
		{name: "queue full", hold: Hold{Max: 2}, waiting: 2, msg: "too many requests are already waiting", within: time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := tc.hold
			e, srv := newTestEdge(t, Options{}, Route{Key: "app/web", Hosts: []string{"web.app.localhost"}, Hold: &h})
			c := testClient(t)
			var wg sync.WaitGroup
			t.Cleanup(func() {
				// Free the waiting requests.
				e.Update(Route{Key: "app/web", Hosts: []string{"web.app.localhost"}})
				wg.Wait()
			})
			for range tc.waiting {
				wg.Go(func() { _, _ = send(c, http.MethodGet, srv.URL, "web.app.localhost", "/", "") })
			}
			eventually(t, 5*time.Second, func() bool { return e.Load("app/web").Held == tc.waiting }, "requests held")

			start := time.Now()
			res := do(t, c, http.MethodGet, srv.URL, "web.app.localhost", "/", "")
			assert.Less(t, time.Since(start), tc.within)
			assert.Equal(t, http.StatusServiceUnavailable, res.status)
			assert.Equal(t, ReasonStarting, res.header.Get(ErrorHeader))
			assert.Contains(t, res.body, tc.msg)
		})
	}
}

func TestHoldEndsWhenRouteChangesItsMind(t *testing.T) {
	t.Parallel()
	route := Route{Key: "app/web", Hosts: []string{"web.app.localhost"}, Hold: &Hold{Timeout: 10 * time.Second}}
	e, srv := newTestEdge(t, Options{}, route)
	c := testClient(t)
	done := make(chan result, 1)
	go func() {
		res, _ := send(c, http.MethodGet, srv.URL, "web.app.localhost", "/", "")
		done <- res
	}()
	eventually(t, 5*time.Second, func() bool { return e.Load("app/web").Held == 1 }, "request held")
	route.Hold, route.Paused = nil, true
	e.Update(route)
	select {
	case res := <-done:
		assert.Equal(t, http.StatusServiceUnavailable, res.status)
		assert.Equal(t, ReasonPaused, res.header.Get(ErrorHeader))
	case <-time.After(5 * time.Second):
		t.Fatal("held request not released by the update")
	}
}

func TestStatsAndLoad(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	slow := newTestBackend(t, "slow", holdHandler("slow", release))
	fast := newTestBackend(t, "fast", nil)
	e, srv := newTestEdge(t, Options{},
		Route{Key: "app/slow", Hosts: []string{"slow.app.localhost"}, Backends: backendsOf(slow)},
		Route{Key: "app/fast", Hosts: []string{"fast.app.localhost"}, Backends: backendsOf(fast)})
	c := testClient(t)

	for range 7 {
		require.Equal(t, http.StatusOK, do(t, c, http.MethodGet, srv.URL, "fast.app.localhost", "/", "").status)
	}
	st, ok := e.Stats("fast")
	require.True(t, ok)
	assert.Equal(t, uint64(7), st.Requests)
	var inBuckets uint64
	for _, n := range st.Buckets {
		inBuckets += n
	}
	assert.Equal(t, uint64(7), inBuckets)
	assert.Positive(t, st.Latency)
	_, ok = e.Stats("nope")
	assert.False(t, ok)

	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { _, _ = send(c, http.MethodGet, srv.URL, "slow.app.localhost", "/", "") })
	}
	eventually(t, 5*time.Second, func() bool { return e.Load("app/slow").InFlight == 3 }, "3 requests in flight")
	assert.Equal(t, RouteLoad{InFlight: 3, Backends: 1}, e.Load("app/slow"))
	assert.Equal(t, RouteLoad{Backends: 1}, e.Load("app/fast"))
	assert.Equal(t, RouteLoad{}, e.Load("app/none"))
	time.Sleep(30 * time.Millisecond)
	close(release)
	wg.Wait()
	st, _ = e.Stats("slow")
	assert.Equal(t, uint64(3), st.Requests)
	assert.GreaterOrEqual(t, st.Latency, 90*time.Millisecond, "3 requests held >= 30ms each")
	var slower uint64 // above 20ms
	for _, n := range st.Buckets[6:] {
		slower += n
	}
	assert.Equal(t, uint64(3), slower)
}
