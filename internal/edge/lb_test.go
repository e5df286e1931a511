package edge

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStickySessions(t *testing.T) {
	t.Parallel()
	a, b, c := newTestBackend(t, "a", nil), newTestBackend(t, "b", nil), newTestBackend(t, "c", nil)
	route := Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(a, b, c), Sticky: "berth_sticky_web"}
	e, srv := newTestEdge(t, Options{}, route)

	// Each client's jar files the cookie under the edge's host (127.0.0.1).
	newClient := func() *http.Client {
		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		c := testClient(t)
		c.Jar = jar
		return c
	}
	seen := map[string]bool{}
	for client := range 12 {
		cl := newClient()
		first := do(t, cl, http.MethodGet, srv.URL, "web.shop.localhost", "/", "")
		require.Equal(t, http.StatusOK, first.status)
		owner := first.header.Get("X-Backend")
		seen[owner] = true
		assert.Contains(t, first.header.Get("Set-Cookie"), "berth_sticky_web="+owner, "client %d: the first answer names its backend", client)
		for range 10 {
			res := do(t, cl, http.MethodGet, srv.URL, "web.shop.localhost", "/", "")
			assert.Equal(t, owner, res.header.Get("X-Backend"), "client %d stays on its backend", client)
			assert.Empty(t, res.header.Get("Set-Cookie"), "a matching cookie is not sent again")
		}
	}
	assert.Greater(t, len(seen), 1, "new clients are still balanced over the backends")

	t.Run("falls back when the backend leaves", func(t *testing.T) {
		cl := newClient()
		first := do(t, cl, http.MethodGet, srv.URL, "web.shop.localhost", "/", "")
		owner := first.header.Get("X-Backend")
		var rest []*testBackend
		for _, tb := range []*testBackend{a, b, c} {
			if tb.ID != owner {
				rest = append(rest, tb)
			}
		}
		r := route
		r.Backends = backendsOf(rest...)
		e.Update(r)
		moved := do(t, cl, http.MethodGet, srv.URL, "web.shop.localhost", "/", "")
		require.Equal(t, http.StatusOK, moved.status)
		next := moved.header.Get("X-Backend")
		assert.NotEqual(t, owner, next)
		assert.Contains(t, moved.header.Get("Set-Cookie"), "berth_sticky_web="+next, "the cookie follows the client to its new backend")
		for range 5 {
			assert.Equal(t, next, do(t, cl, http.MethodGet, srv.URL, "web.shop.localhost", "/", "").header.Get("X-Backend"))
		}
	})

	t.Run("an unknown or forged cookie is balanced as usual", func(t *testing.T) {
		u, err := url.Parse(srv.URL)
		require.NoError(t, err)
		cl := newClient()
		cl.Jar.SetCookies(u, []*http.Cookie{{Name: "berth_sticky_web", Value: "nope"}})
		res := do(t, cl, http.MethodGet, srv.URL, "web.shop.localhost", "/", "")
		require.Equal(t, http.StatusOK, res.status)
		assert.Contains(t, res.header.Get("Set-Cookie"), "berth_sticky_web="+res.header.Get("X-Backend"))
	})
}

func TestSlowStartRampsUp(t *testing.T) {
	t.Parallel()
	old, fresh := newTestBackend(t, "old", nil), newTestBackend(t, "new", nil)
	const window = 2 * time.Second
	fresh.Since = time.Now()
	route := Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(old, fresh), SlowStart: window}
	e, srv := newTestEdge(t, Options{}, route)
	cl := testClient(t)

	share := func(n int) float64 {
		got := 0
		for range n {
			if do(t, cl, http.MethodGet, srv.URL, "web.shop.localhost", "/", "").header.Get("X-Backend") == "new" {
				got++
			}
		}
		return float64(got) / float64(n)
	}
	early := share(400)
	// Sequential requests tie on load, so a full share is half of them; the
	// new backend starts at a tenth of that.
	assert.Less(t, early, 0.25, "a new backend gets a small share at first")
	assert.Greater(t, early, 0.0, "but not none")

	time.Sleep(window)
	e.Update(route) // the snapshot is rebuilt on every change; the window is over by the clock anyway
	late := share(400)
	assert.Greater(t, late, 0.35, "after the window it takes a full share")

	t.Run("a lone backend in slow start still serves", func(t *testing.T) {
		solo := newTestBackend(t, "solo", nil)
		solo.Since = time.Now()
		e.Update(Route{Key: "shop/api", Hosts: []string{"api.shop.localhost"}, Backends: backendsOf(solo), SlowStart: time.Hour})
		for range 20 {
			assert.Equal(t, http.StatusOK, do(t, cl, http.MethodGet, srv.URL, "api.shop.localhost", "/", "").status)
		}
	})
}

func TestMaxConcurrencyQueuesThen503(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	a := newTestBackend(t, "a", holdHandler("a", release))
	route := Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(a), MaxConcurrency: 2, QueueTimeout: 300 * time.Millisecond}
	e, srv := newTestEdge(t, Options{}, route)
	cl := testClient(t)

	// Two requests fill the instance.
	var wg sync.WaitGroup
	held := make([]result, 2)
	for i := range held {
		wg.Add(1)
		go func() {
			defer wg.Done()
			held[i], _ = send(cl, http.MethodGet, srv.URL, "web.shop.localhost", "/", "")
		}()
	}
	eventually(t, 5*time.Second, func() bool { return e.InFlight("a") == 2 }, "two requests in flight")

	// A third waits its queue time, then gets 503 overloaded.
	start := time.Now()
	res := do(t, cl, http.MethodGet, srv.URL, "web.shop.localhost", "/", "")
	waited := time.Since(start)
	assert.Equal(t, http.StatusServiceUnavailable, res.status)
	assert.Equal(t, ReasonOverloaded, res.header.Get(ErrorHeader))
	assert.Equal(t, "1", res.header.Get("Retry-After"))
	assert.Contains(t, res.body, "limit of 2 requests in flight per instance")
	assert.GreaterOrEqual(t, waited, 250*time.Millisecond, "it was queued first")
	assert.Equal(t, int64(2), a.hits.Load(), "the instance never saw the excess request")

	// A queued request gets the slot that frees up.
	done := make(chan result, 1)
	go func() {
		r, _ := send(cl, http.MethodGet, srv.URL, "web.shop.localhost", "/", "")
		done <- r
	}()
	time.Sleep(50 * time.Millisecond)
	free()
	wg.Wait()
	for _, h := range held {
		assert.Equal(t, http.StatusOK, h.status)
	}
	select {
	case r := <-done:
		assert.Equal(t, http.StatusOK, r.status, "the queued request was served")
		assert.True(t, strings.HasPrefix(r.body, "a"))
	case <-time.After(5 * time.Second):
		t.Fatal("the queued request never finished")
	}
}

func BenchmarkPickControlled(b *testing.B) {
	rt := &routeEntry{maxConc: 100, slowStart: int64(time.Minute)}
	for i := range 8 {
		rt.backends = append(rt.backends, target{id: string(rune('a' + i)), st: new(backendState)})
	}
	rt.backends[3].since = clock()
	var tried triedSet
	for b.Loop() {
		_ = rt.pick(&tried)
	}
}
