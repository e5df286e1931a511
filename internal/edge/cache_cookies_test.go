package edge

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/edge/cache"
)

// TestCacheKeepsUsersApart sends two users' requests, each from its own
// client and connections, through an entrypoint's cache in the real edge to
// an app that answers each user with their own page, and checks that no
// user is ever handed the other's page or cookie unless the app said the
// page may be shared.
func TestCacheKeepsUsersApart(t *testing.T) {
	var logins atomic.Int64
	app := newTestBackend(t, "app", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := "anonymous"
		if c, err := r.Cookie("session"); err == nil {
			user = c.Value
		}
		if a := r.Header.Get("Authorization"); a != "" {
			user = strings.TrimPrefix(a, "Bearer ")
		}
		switch r.URL.Path {
		case "/public":
			w.Header().Set("Cache-Control", "public, max-age=60")
		case "/login": // opens a session, and says the page may be shared
			w.Header().Set("Cache-Control", "public, max-age=60")
			w.Header().Set("Set-Cookie", fmt.Sprintf("session=S%d; Path=/; HttpOnly", logins.Add(1)))
		case "/api/max-age":
			w.Header().Set("Cache-Control", "max-age=60")
		case "/api/s-maxage":
			w.Header().Set("Cache-Control", "s-maxage=60")
		case "/api/must-revalidate":
			w.Header().Set("Cache-Control", "max-age=60, must-revalidate")
		}
		_, _ = fmt.Fprintf(w, "page %s for %s", r.URL.Path, user)
	}))
	newCache := func(opts cache.Options) *cache.Cache {
		c, err := cache.New(opts)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	e, srv := newTestEdge(t, Options{}, Route{Key: "shop/app", Hosts: []string{"app.shop.localhost"}, Backends: backendsOf(app)})
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "www", Hosts: []string{"www.example.com"}, Origin: serviceOrigin("shop/app"),
		Cache: newCache(cache.Options{DefaultTTL: time.Minute})}))
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "keyed", Hosts: []string{"keyed.example.com"}, Origin: serviceOrigin("shop/app"),
		Cache: newCache(cache.Options{DefaultTTL: time.Minute, KeyCookies: []string{"session"}})}))

	alice, bob := testClient(t), testClient(t)
	get := func(c *http.Client, host, path string, hdr ...string) result {
		t.Helper()
		res := do(t, c, http.MethodGet, srv.URL, host, path, "", hdr...)
		require.Equal(t, http.StatusOK, res.status, res.body)
		return res
	}
	aliceCookie := []string{"Cookie", "session=ALICE"}
	status := func(res result) string { return res.header.Get("Cache-Status") }

	t.Run("a page for a cookie is not served to another user", func(t *testing.T) {
		res := get(alice, "www.example.com", "/home", aliceCookie...)
		assert.Equal(t, "page /home for ALICE", res.body)
		assert.NotContains(t, status(res), "stored", "default_ttl does not make a cookie's page shared")
		res = get(bob, "www.example.com", "/home")
		assert.Equal(t, "page /home for anonymous", res.body)
		assert.Contains(t, status(res), "stored")
		res = get(bob, "www.example.com", "/home")
		assert.Equal(t, "page /home for anonymous", res.body)
		assert.Contains(t, status(res), "hit")
		res = get(alice, "www.example.com", "/home", aliceCookie...)
		assert.Equal(t, "page /home for ALICE", res.body, "nor the anonymous page to a user with a session")
	})

	t.Run("a page the app marks public is shared", func(t *testing.T) {
		res := get(alice, "www.example.com", "/public", aliceCookie...)
		assert.Contains(t, status(res), "stored")
		res = get(bob, "www.example.com", "/public")
		assert.Equal(t, "page /public for ALICE", res.body, "the app said public")
		assert.Contains(t, status(res), "hit")
	})

	t.Run("a key cookie gives each user their own entry", func(t *testing.T) {
		bobCookie := []string{"Cookie", "session=BOB"}
		for range 2 {
			assert.Equal(t, "page /home for ALICE", get(alice, "keyed.example.com", "/home", aliceCookie...).body)
			assert.Equal(t, "page /home for BOB", get(bob, "keyed.example.com", "/home", bobCookie...).body)
			assert.Equal(t, "page /home for anonymous", get(bob, "keyed.example.com", "/home").body)
		}
		res := get(alice, "keyed.example.com", "/home", aliceCookie...)
		assert.Contains(t, status(res), "hit", "Alice's page is cached, for Alice")
		res = get(bob, "keyed.example.com", "/home", "Cookie", "session=BOB; theme=dark")
		assert.Equal(t, "page /home for BOB", res.body)
		assert.NotContains(t, status(res), "hit", "a cookie outside the key makes the request private")
	})

	t.Run("a response that sets a cookie is never served to another client", func(t *testing.T) {
		res := get(alice, "www.example.com", "/login")
		aliceSession := res.header.Get("Set-Cookie")
		require.NotEmpty(t, aliceSession)
		assert.NotContains(t, status(res), "stored", "even public")
		for range 2 {
			res = get(bob, "www.example.com", "/login")
			assert.NotContains(t, status(res), "hit")
			assert.NotEqual(t, aliceSession, res.header.Get("Set-Cookie"))
			assert.NotEmpty(t, res.header.Get("Set-Cookie"), "Bob gets his own session")
		}
		assert.EqualValues(t, 3, logins.Load())
	})

	t.Run("Authorization as RFC 9111 section 3.5", func(t *testing.T) {
		auth := []string{"Authorization", "Bearer ALICE"}
		for path, shared := range map[string]bool{"/api/max-age": false, "/api/s-maxage": true, "/api/must-revalidate": true} {
			res := get(alice, "www.example.com", path, auth...)
			assert.Equal(t, "page "+path+" for ALICE", res.body)
			res = get(bob, "www.example.com", path)
			if shared {
				assert.Equal(t, "page "+path+" for ALICE", res.body, "%s: the app allowed a shared cache", path)
				assert.Contains(t, status(res), "hit", path)
			} else {
				assert.Equal(t, "page "+path+" for anonymous", res.body, path)
			}
		}
	})
}
