package cache

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRequestCollapsing sends concurrent requests for one key while the
// origin holds the first, and counts who reached it.
func TestRequestCollapsing(t *testing.T) {
	const clients = 50
	for _, tc := range []struct {
		name         string
		cacheControl string
		prime        bool // store a stale response first: the flight is a revalidation
		wantHits     int64
		sameBody     bool
	}{
		{name: "cacheable miss reaches the origin once", cacheControl: "max-age=60", wantHits: 1, sameBody: true},
		{name: "stale revalidation reaches the origin once", cacheControl: "max-age=60", prime: true, wantHits: 2, sameBody: true},
		{name: "no-store: every waiter goes to the origin", cacheControl: "no-store", wantHits: clients},
		{name: "private: every waiter goes to the origin", cacheControl: "private, max-age=60", wantHits: clients},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			var held sync.Once
			heldNow := make(chan struct{})
			s := newStack(t, Options{}, func(n int64, clk *clock, w http.ResponseWriter, r *http.Request) {
				setDate(w, clk)
				w.Header().Set("Cache-Control", tc.cacheControl)
				if n > 1 || !tc.prime {
					held.Do(func() { close(heldNow); <-release })
				}
				fmt.Fprintf(w, "v%d", n)
			})
			base := int64(0)
			if tc.prime {
				require.Equal(t, "v1", s.get(t, "/hot").body)
				s.clock.Advance(2 * time.Minute)
				base = 1
			}

			bodies := make(chan string, clients)
			statuses := make(chan string, clients)
			var wg sync.WaitGroup
			for range clients {
				wg.Go(func() {
					res := s.get(t, "/hot")
					assert.Equal(t, http.StatusOK, res.StatusCode)
					bodies <- res.body
					statuses <- res.Header.Get("Cache-Status")
				})
			}
			<-heldNow
			require.Eventually(t, func() bool {
				return s.cache.flights.waiters.Load() == clients-1
			}, 10*time.Second, time.Millisecond, "all other requests wait for the first")
			require.Equal(t, base+1, s.origin.hits.Load(), "only the leader is at the origin")
			close(release)
			wg.Wait()
			close(bodies)
			close(statuses)

			require.Equal(t, tc.wantHits, s.origin.hits.Load())
			seen := map[string]int{}
			for b := range bodies {
				seen[b]++
			}
			collapsed := 0
			for st := range statuses {
				if assert.NotEmpty(t, st) && strings.Contains(st, "collapsed") {
					collapsed++
				}
			}
			if tc.sameBody {
				assert.Equal(t, map[string]int{fmt.Sprintf("v%d", base+1): clients}, seen, "every client got the one response")
				assert.Equal(t, clients-1, collapsed)
				assert.EqualValues(t, clients-1, s.cache.Stats().Collapsed)
			} else {
				assert.Len(t, seen, clients, "every client got its own response")
				assert.Zero(t, collapsed)
			}
		})
	}
}

// TestCollapsingVaryMismatch: waiters whose Vary'd header differs from the
// leader's do not get its response.
func TestCollapsingVaryMismatch(t *testing.T) {
	release := make(chan struct{})
	s := newStack(t, Options{}, func(n int64, clk *clock, w http.ResponseWriter, r *http.Request) {
		setDate(w, clk)
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language")
		if n == 1 {
			<-release
		}
		fmt.Fprint(w, r.Header.Get("Accept-Language"))
	})
	var wg sync.WaitGroup
	wg.Go(func() {
		assert.Equal(t, "en", s.do(t, http.MethodGet, "/v", map[string]string{"Accept-Language": "en"}).body)
	})
	require.Eventually(t, func() bool { return s.origin.hits.Load() == 1 }, 5*time.Second, time.Millisecond)
	for range 3 {
		wg.Go(func() {
			assert.Equal(t, "fr", s.do(t, http.MethodGet, "/v", map[string]string{"Accept-Language": "fr"}).body)
		})
	}
	require.Eventually(t, func() bool { return s.cache.flights.waiters.Load() == 3 }, 5*time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	assert.Equal(t, "fr", s.do(t, http.MethodGet, "/v", map[string]string{"Accept-Language": "fr"}).body)
	assert.Equal(t, "en", s.do(t, http.MethodGet, "/v", map[string]string{"Accept-Language": "en"}).body)
	assert.LessOrEqual(t, s.origin.hits.Load(), int64(4), "the fr waiters went on their own, then fr was stored")
}
