package controlplane_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestEntrypointCacheKeyCookies deploys an entrypoint whose cache key
// includes the session cookie, and checks through the daemon's edge that
// two users each get their own cached page and never the other's.
func TestEntrypointCacheKeyCookies(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "edgek")
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := "anonymous"
		if c, err := r.Cookie("session"); err == nil {
			user = c.Value
		}
		fmt.Fprintf(w, "page for %s", user)
	}))
	t.Cleanup(origin.Close)
	ep := app + "-cdn"
	host := ep + ".localhost"
	get := func(c *http.Client, cookie string) (string, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+d.addrs.HTTP+"/home", nil)
		require.NoError(t, err)
		req.Host = host
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		res, err := c.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return string(b), res.Header.Get("Cache-Status")
	}
	alice := &http.Client{Transport: &http.Transport{Proxy: nil}}
	bob := &http.Client{Transport: &http.Transport{Proxy: nil}}
	t.Cleanup(alice.CloseIdleConnections)
	t.Cleanup(bob.CloseIdleConnections)

	t.Run("without a key cookie, a session's page is not stored", func(t *testing.T) {
		d.mustDeploy(edgeSpec(app, img, ep, host, "url: "+origin.URL, "    cache: {enabled: true, default_ttl: 60s}\n"))
		body, status := get(alice, "session=ALICE")
		assert.Equal(t, "page for ALICE", body)
		assert.NotContains(t, status, "stored")
		body, _ = get(bob, "")
		assert.Equal(t, "page for anonymous", body)
	})

	t.Run("with the session in the key, each user has their own entry", func(t *testing.T) {
		d.mustDeploy(edgeSpec(app, img, ep, host, "url: "+origin.URL, "    cache: {enabled: true, default_ttl: 60s, key: {cookies: [session]}}\n"))
		for range 2 {
			body, _ := get(alice, "session=ALICE")
			assert.Equal(t, "page for ALICE", body)
			body, _ = get(bob, "session=BOB")
			assert.Equal(t, "page for BOB", body)
			body, _ = get(bob, "")
			assert.Equal(t, "page for anonymous", body)
		}
		_, status := get(alice, "session=ALICE")
		assert.Contains(t, status, "hit")
	})
}
