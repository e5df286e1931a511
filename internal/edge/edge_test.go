package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoutesUpdateRemove(t *testing.T) {
	a := newTestBackend(t, "a", nil)
	b := newTestBackend(t, "b", nil)
	e, srv := newTestEdge(t, Options{})
	c := testClient(t)
	get := func(host string) result { return do(t, c, http.MethodGet, srv.URL, host, "/", "") }

	input := Route{Key: "shop/web", Hosts: []string{"Web.Shop.Localhost:8080", " web.shop.localhost "}, Backends: backendsOf(a)}
	e.Update(input)
	input.Hosts[0] = "changed.localhost" // the edge keeps its own copy
	input.Backends[0] = b.Backend
	e.Update(Route{Key: "other/api", Hosts: []string{"api.other.localhost"}, Backends: backendsOf(b), Timeout: time.Second})
	e.Update(Route{Hosts: []string{"nokey.localhost"}, Backends: backendsOf(b)})

	t.Run("routes", func(t *testing.T) {
		routes := e.Routes()
		require.Len(t, routes, 2)
		assert.Equal(t, "other/api", routes[0].Key)
		assert.Equal(t, time.Second, routes[0].Timeout)
		assert.Equal(t, "shop/web", routes[1].Key)
		assert.Equal(t, []string{"web.shop.localhost"}, routes[1].Hosts)
		assert.Equal(t, backendsOf(a), routes[1].Backends)
		routes[1].Hosts[0] = "mutated"
		assert.Equal(t, "web.shop.localhost", e.Routes()[1].Hosts[0])
		assert.Equal(t, "a:", get("web.shop.localhost").body)
		assert.Equal(t, 404, get("nokey.localhost").status, "a route without key is ignored")
	})

	t.Run("replace", func(t *testing.T) {
		e.Update(Route{Key: "shop/web", Hosts: []string{"www.shop.localhost"}, Backends: backendsOf(b)})
		assert.Equal(t, 404, get("web.shop.localhost").status)
		assert.Equal(t, "b:", get("www.shop.localhost").body)
	})

	t.Run("host conflict resolves by key order", func(t *testing.T) {
		e.Update(Route{Key: "zzz/late", Hosts: []string{"www.shop.localhost"}, Backends: backendsOf(a)})
		assert.Equal(t, "b:", get("www.shop.localhost").body)
		e.Remove("zzz/late")
	})

	t.Run("host conflict keeps the earlier-deployed owner, not the first key", func(t *testing.T) {
		// An app deployed later, whose key sorts first (the squatter of
		// issue 11), does not take the host.
		first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		e.Update(Route{Key: "xyz/web", Hosts: []string{"own.localhost"}, Backends: backendsOf(b), Claimed: first})
		e.Update(Route{Key: "aaa/web", Hosts: []string{"own.localhost"}, Backends: backendsOf(a), Claimed: first.Add(time.Hour)})
		assert.Equal(t, "b:", get("own.localhost").body)
		// Nor does a route that does not say when it was claimed.
		e.Update(Route{Key: "aaa/web", Hosts: []string{"own.localhost"}, Backends: backendsOf(a)})
		assert.Equal(t, "b:", get("own.localhost").body)
		e.Remove("xyz/web")
		assert.Equal(t, "a:", get("own.localhost").body, "the host is free again")
		e.Remove("aaa/web")
	})

	t.Run("remove", func(t *testing.T) {
		e.Remove("shop/web")
		e.Remove("never/there")
		assert.Equal(t, 404, get("www.shop.localhost").status)
		assert.Equal(t, "b:", get("api.other.localhost").body)
		assert.Len(t, e.Routes(), 1)
		assert.NotContains(t, e.states, "a", "counters of unlisted, idle backends are dropped")
	})
}

func TestWaitIdle(t *testing.T) {
	release := make(chan struct{})
	slow := newTestBackend(t, "slow", holdHandler("slow", release))
	fresh := newTestBackend(t, "fresh", nil)
	e, srv := newTestEdge(t, Options{}, Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(slow)})
	c := testClient(t)

	inflight := make(chan result, 1)
	go func() {
		res, err := send(c, http.MethodGet, srv.URL, "web.shop.localhost", "/", "")
		if err != nil {
			res.body = err.Error()
		}
		inflight <- res
	}()
	eventually(t, 5*time.Second, func() bool { return e.InFlight("slow") == 1 }, "slow request in flight")

	e.Update(Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(fresh)})
	assert.Equal(t, "fresh:", do(t, c, http.MethodGet, srv.URL, "web.shop.localhost", "/", "").body, "new requests go to the new backend")

	t.Run("unknown and idle backends", func(t *testing.T) {
		require.NoError(t, e.WaitIdle(t.Context(), []string{"never-seen", "fresh"}))
		require.NoError(t, e.WaitIdle(t.Context(), nil))
	})

	t.Run("context ends first", func(t *testing.T) {
		errDrain := errors.New("drain deadline")
		ctx, cancel := context.WithTimeoutCause(t.Context(), 50*time.Millisecond, errDrain)
		defer cancel()
		require.ErrorIs(t, e.WaitIdle(ctx, []string{"slow"}), errDrain)
	})

	t.Run("returns once the request finished", func(t *testing.T) {
		waited := make(chan error, 1)
		go func() { waited <- e.WaitIdle(context.Background(), []string{"slow"}) }()
		select {
		case err := <-waited:
			t.Fatalf("WaitIdle returned %v while a request was in flight", err)
		case <-time.After(100 * time.Millisecond):
		}
		close(release)
		select {
		case err := <-waited:
			require.NoError(t, err)
		case <-time.After(2 * time.Second):
			t.Fatal("WaitIdle did not return after the request finished")
		}
		res := <-inflight
		assert.Equal(t, 200, res.status)
		assert.Equal(t, "slow", res.body, "the drained request completed normally")
		assert.Zero(t, e.InFlight("slow"))
	})
}

// TestUpdateUnderLoad switches a route to a fresh pair of backends every 50ms
// under steady concurrent load; each replaced pair is drained with WaitIdle
// and then shut down. No client request may fail, and no request may reach a
// backend after WaitIdle said it was idle.
func TestUpdateUnderLoad(t *testing.T) {
	const (
		workers  = 8
		duration = 2 * time.Second
		every    = 50 * time.Millisecond
	)
	type generation struct {
		backends []*testBackend
		drained  atomic.Bool
	}
	var late atomic.Int64 // requests that reached a backend after its drain
	newGeneration := func(n int) *generation {
		g := &generation{}
		for i := range 2 {
			id := fmt.Sprintf("gen%d-%d", n, i)
			g.backends = append(g.backends, newTestBackend(t, id, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if g.drained.Load() {
					late.Add(1)
				}
				body, _ := io.ReadAll(r.Body)
				// Keep requests in flight across switches.
				time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
				_, _ = io.WriteString(w, id+":"+string(body))
			})))
		}
		return g
	}
	route := func(g *generation) Route {
		return Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(g.backends...), Timeout: 10 * time.Second}
	}
	ids := func(g *generation) []string {
		return []string{g.backends[0].ID, g.backends[1].ID}
	}

	current := newGeneration(0)
	e, srv := newTestEdge(t, Options{}, route(current))
	c := testClient(t)

	var (
		requests, failures atomic.Int64
		firstFailure       sync.Once
		failureMsg         atomic.Value
		stop               = make(chan struct{})
		load               sync.WaitGroup
	)
	for w := range workers {
		load.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				method, body := http.MethodGet, ""
				if w%2 == 1 {
					method, body = http.MethodPost, fmt.Sprintf("w%d-%d", w, i)
				}
				res, err := send(c, method, srv.URL, "web.shop.localhost", "/", body)
				requests.Add(1)
				if err != nil || res.status != http.StatusOK || len(res.body) < len(body) || res.body[len(res.body)-len(body):] != body {
					failures.Add(1)
					firstFailure.Do(func() { failureMsg.Store(fmt.Sprintf("%s: %v %d %q", method, err, res.status, res.body)) })
				}
			}
		})
	}

	var drains sync.WaitGroup
	var drainErrors atomic.Int64
	deadline := time.Now().Add(duration)
	for n := 1; time.Now().Before(deadline); n++ {
		time.Sleep(every)
		next := newGeneration(n)
		e.Update(route(next))
		old := current
		current = next
		drains.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := e.WaitIdle(ctx, ids(old)); err != nil {
				drainErrors.Add(1)
				return
			}
			old.drained.Store(true)
			for _, b := range old.backends {
				b.srv.Close()
			}
		})
	}
	close(stop)
	load.Wait()
	drains.Wait()

	t.Logf("%d requests over %s, %d switches", requests.Load(), duration, duration/every)
	assert.Greater(t, requests.Load(), int64(100))
	assert.Zero(t, failures.Load(), "failed requests; first: %v", failureMsg.Load())
	assert.Zero(t, late.Load(), "requests reached a backend after WaitIdle returned")
	assert.Zero(t, drainErrors.Load())
	require.NoError(t, e.WaitIdle(t.Context(), ids(current)))
	e.mu.Lock()
	assert.Len(t, e.states, 2, "only the serving pair keeps counters")
	e.mu.Unlock()
}
