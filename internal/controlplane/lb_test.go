package controlplane_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/edge"
	"github.com/berth-dev/berth/internal/testutil"
)

func lbSpec(app, image string) string {
	return fmt.Sprintf(`app: %[1]s
services:
  web:
    image: %[2]s
    port: 8080
    health: {path: /healthz}
    instances: 2
    sticky: true
    routes: [{path: /env, service: api}]
  api:
    image: %[2]s
    port: 8080
    env: {VERSION: api}
    drain: 2s
  busy:
    image: %[2]s
    port: 8080
    max_concurrency: {requests: 1, queue: 300ms}
  ramp:
    image: %[2]s
    port: 8080
    slow_start: 4s
`, app, image)
}

// getWith fetches path from svc with c (its own cookie jar) and returns the
// response, read.
func (d *daemon) getWith(c *http.Client, app, svc, path string) (*http.Response, string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+d.addrs.HTTP+path, nil)
	if err != nil {
		return nil, "", err
	}
	req.Host = fmt.Sprintf("%s.%s.localhost", svc, app)
	res, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, string(b), err
}

func TestLoadBalancerControls(t *testing.T) {
	t.Parallel()
	app := testutil.UniqueName(t, "lb")
	d := startFakeDaemon(t, "")
	img := d.image()

	// Deploy order does not matter: web routes /env to a service that has
	// no revision yet, which answers 503 saying so.
	_, msgs, err := d.deploy(lbSpec(app, img), "web", "busy", "ramp")
	require.NoError(t, err, "%v", msgs)
	code, body, err := d.get(app, "web", "/env/VERSION")
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, app+"/api has no healthy instance")
	_, msgs, err = d.deploy(lbSpec(app, img), "api")
	require.NoError(t, err, "%v", msgs)
	code, body, err = d.get(app, "web", "/env/VERSION")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "api", body, "/env now reaches api")
	code, body, err = d.get(app, "web", "/")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "hello from v1\n", body, "the rest still reaches web")

	t.Run("drain", func(t *testing.T) {
		t.Parallel()
		// api's own drain (2s, shorter than the test daemon's 5s) bounds
		// how long its old instance may finish a request through the edge
		// before it leaves its name on the app network (which closes what
		// is still in flight) and is stopped.
		slow := make(chan error, 1)
		go func() {
			c := &http.Client{Timeout: 30 * time.Second, Transport: httpClient.Transport}
			_, _, err := d.getWith(c, app, "api", "/sleep?d=12s")
			slow <- err
		}()
		time.Sleep(200 * time.Millisecond)
		_, msgs, err := d.deploy(strings.Replace(lbSpec(app, img), "VERSION: api", "VERSION: api2", 1), "api")
		require.NoError(t, err, "%v", msgs)
		<-slow
		assert.Contains(t, d.logs.String(), `msg="drain ended with requests in flight" service=api err="drain time reached"`)
	})

	t.Run("sticky sessions", func(t *testing.T) {
		t.Parallel()
		seen := map[string]bool{}
		for range 6 {
			jar, err := cookiejar.New(nil)
			require.NoError(t, err)
			c := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: httpClient.Transport}
			res, first, err := d.getWith(c, app, "web", "/hostname")
			require.NoError(t, err)
			assert.Contains(t, res.Header.Get("Set-Cookie"), "berth_sticky_web=")
			seen[first] = true
			for range 8 {
				_, again, err := d.getWith(c, app, "web", "/hostname")
				require.NoError(t, err)
				assert.Equal(t, first, again, "a client stays on its instance")
			}
		}
		t.Logf("clients landed on %d instance(s)", len(seen))
	})

	t.Run("max concurrency", func(t *testing.T) {
		t.Parallel()
		slow := make(chan int, 1)
		go func() {
			code, _, _ := d.get(app, "busy", "/sleep?d=2s")
			slow <- code
		}()
		time.Sleep(300 * time.Millisecond) // the slow request holds the only slot
		start := time.Now()
		res, body, err := d.getWith(httpClient, app, "busy", "/")
		require.NoError(t, err)
		assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
		assert.Equal(t, edge.ReasonOverloaded, res.Header.Get(edge.ErrorHeader))
		assert.Contains(t, body, "limit of 1 requests in flight per instance")
		assert.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond, "queued before the 503")
		assert.Equal(t, http.StatusOK, <-slow)
		code, _, err := d.get(app, "busy", "/")
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, code, "served again once the slot is free")
	})

	t.Run("slow start", func(t *testing.T) {
		t.Parallel()
		_, old, err := d.get(app, "ramp", "/hostname")
		require.NoError(t, err)
		_, err = d.client.Scale(context.Background(), app, map[string]int{"ramp": 2})
		require.NoError(t, err)
		joined := time.Now()
		share := func(n int) float64 {
			fresh := 0
			for range n {
				_, h, err := d.get(app, "ramp", "/hostname")
				require.NoError(t, err)
				if h != old {
					fresh++
				}
			}
			return float64(fresh) / float64(n)
		}
		early := share(150)
		assert.Less(t, early, 0.3, "the new instance gets a small share at first")
		time.Sleep(time.Until(joined.Add(4500 * time.Millisecond)))
		late := share(150)
		assert.Greater(t, late, 0.3, "and its full share after slow_start")
		t.Logf("new instance's share: %.2f at first, %.2f after the window", early, late)
	})

	t.Run("status shows the path route target's state", func(t *testing.T) {
		st, err := d.client.Status(context.Background(), app)
		require.NoError(t, err)
		require.Len(t, st.Apps, 1)
		names := []string{}
		for _, s := range st.Apps[0].Services {
			names = append(names, s.Name)
		}
		assert.Equal(t, "api busy ramp web", strings.Join(names, " "))
	})
}
