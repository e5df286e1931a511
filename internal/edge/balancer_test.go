package edge

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPick(t *testing.T) {
	type backend struct {
		load    int64
		ejected bool
		expired bool // ejected once, but the time has passed
		tried   bool
	}
	tests := []struct {
		name     string
		backends []backend
		want     []int // acceptable picks; empty = nil
	}{
		{name: "none"},
		{name: "single", backends: []backend{{load: 9}}, want: []int{0}},
		{name: "single tried", backends: []backend{{tried: true}}},
		{name: "least loaded", backends: []backend{{load: 3}, {load: 1}, {load: 2}}, want: []int{1}},
		{name: "ties", backends: []backend{{load: 1}, {load: 0}, {load: 0}}, want: []int{1, 2}},
		{name: "ejected skipped", backends: []backend{{load: 0, ejected: true}, {load: 5}}, want: []int{1}},
		{name: "expired ejection", backends: []backend{{load: 0, expired: true}, {load: 5}}, want: []int{0}},
		{name: "tried skipped", backends: []backend{{load: 0, tried: true}, {load: 5}}, want: []int{1}},
		{name: "all ejected: least loaded still tried", backends: []backend{{load: 4, ejected: true}, {load: 2, ejected: true}}, want: []int{1}},
		{name: "all tried", backends: []backend{{tried: true}, {tried: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := &routeEntry{}
			var tried triedSet
			for i, b := range tt.backends {
				st := new(backendState)
				st.inflight.Store(b.load)
				if b.ejected {
					st.eject()
				}
				if b.expired {
					st.ejectedUntil.Store(clock() - 1)
				}
				if b.tried {
					tried.add(st)
				}
				rt.backends = append(rt.backends, target{id: string(rune('a' + i)), st: st})
			}
			for range 20 { // the start is random; the answer must not be
				got := rt.pick(&tried)
				if len(tt.want) == 0 {
					require.Nil(t, got)
					continue
				}
				require.NotNil(t, got)
				assert.Contains(t, tt.want, int(got.id[0]-'a'))
			}
		})
	}
}

func TestBalancingSpreadsEvenly(t *testing.T) {
	var tbs []*testBackend
	for _, id := range []string{"a", "b", "c"} {
		tbs = append(tbs, newTestBackend(t, id, nil))
	}
	_, srv := newTestEdge(t, Options{}, Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(tbs...)})
	c := testClient(t)
	for range 300 {
		require.Equal(t, 200, do(t, c, http.MethodGet, srv.URL, "web.shop.localhost", "/", "").status)
	}
	for _, tb := range tbs {
		assert.InDelta(t, 100, tb.hits.Load(), 50, "backend %s", tb.ID)
	}
}

func TestBalancingPrefersLessLoaded(t *testing.T) {
	release := make(chan struct{})
	var tbs []*testBackend
	for _, id := range []string{"a", "b", "c"} {
		tbs = append(tbs, newTestBackend(t, id, holdHandler(id, release)))
	}
	e, srv := newTestEdge(t, Options{}, Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(tbs...)})
	c := testClient(t)

	// Open 30 requests one after the other: least outstanding gives each
	// backend exactly 10.
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(release)
		wg.Wait()
	})
	total := func() int { return e.InFlight("a") + e.InFlight("b") + e.InFlight("c") }
	for i := range 30 {
		wg.Go(func() { _, _ = send(c, http.MethodGet, srv.URL, "web.shop.localhost", "/", "") })
		eventually(t, 5*time.Second, func() bool { return total() == i+1 }, "request counted")
	}
	for _, tb := range tbs {
		assert.Equal(t, 10, e.InFlight(tb.ID), "backend %s", tb.ID)
	}
}

func TestBalancingCountsAcrossRoutes(t *testing.T) {
	// In-flight counts belong to the instance, not the route: requests held
	// on "a" through another route steer this route's traffic away from it.
	release := make(chan struct{})
	a := newTestBackend(t, "a", holdHandler("a", release))
	b := newTestBackend(t, "b", nil)
	c := newTestBackend(t, "c", nil)
	e, srv := newTestEdge(t, Options{},
		Route{Key: "shop/hold", Hosts: []string{"hold.shop.localhost"}, Backends: backendsOf(a)},
		Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(a, b, c)},
	)
	client := testClient(t)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(release)
		wg.Wait()
	})
	for range 5 {
		wg.Go(func() { _, _ = send(client, http.MethodGet, srv.URL, "hold.shop.localhost", "/", "") })
	}
	// Held at the edge and arrived at a: under load the last may reach a
	// after the edge counts it in flight.
	eventually(t, 5*time.Second, func() bool { return e.InFlight("a") == 5 && a.hits.Load() == 5 }, "5 requests held on a")

	for range 60 {
		res := do(t, client, http.MethodGet, srv.URL, "web.shop.localhost", "/", "")
		require.Equal(t, 200, res.status)
	}
	assert.Equal(t, int64(5), a.hits.Load(), "the loaded backend got nothing more")
	assert.Positive(t, b.hits.Load())
	assert.Positive(t, c.hits.Load())
	assert.Equal(t, int64(60), b.hits.Load()+c.hits.Load())
}
