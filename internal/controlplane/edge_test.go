package controlplane_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/testutil"
)

// origin is an external origin on loopback (an App Runner URL stand-in)
// that can be told to fail.
type origin struct {
	*httptest.Server
	status atomic.Int64
	hits   atomic.Int64
}

func newOrigin(t testing.TB, id string) *origin {
	t.Helper()
	o := &origin{}
	o.status.Store(200)
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		w.WriteHeader(int(o.status.Load()))
		fmt.Fprintf(w, "hello from %s\n", id)
	}))
	t.Cleanup(o.Close)
	return o
}

// hostGet fetches path from the edge with the given Host header.
func (d *daemon) hostGet(host, path string, hdr ...string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+d.addrs.HTTP+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

// hostLoad is steady traffic to one host, counting every failure.
type hostLoad struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	bodies     map[string]int
	errs       []string
	stop       chan struct{}
	wg         sync.WaitGroup
}

func (d *daemon) loadHost(host string, n int) *hostLoad {
	l := &hostLoad{bodies: map[string]int{}, stop: make(chan struct{})}
	for range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				code, body, err := d.hostGet(host, "/")
				l.mu.Lock()
				if err != nil || code != http.StatusOK {
					l.failed.Add(1)
					if len(l.errs) < 10 {
						l.errs = append(l.errs, fmt.Sprintf("code=%d err=%v body=%q", code, err, body))
					}
				} else {
					l.ok.Add(1)
					l.bodies[body]++
				}
				l.mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return l
}

func (l *hostLoad) finish() map[string]int {
	close(l.stop)
	l.wg.Wait()
	return l.bodies
}

func (l *hostLoad) snapshot() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for k, v := range l.bodies {
		out[k] = v
	}
	return out
}

func requireCode(t testing.TB, err error, code string) {
	t.Helper()
	require.Error(t, err)
	var ae *client.APIError
	require.ErrorAs(t, err, &ae, "%v", err)
	assert.Equal(t, code, ae.Body.Code, ae.Body.Message)
	assert.NotContains(t, ae.Body.Message, "\n")
}

func edgeSpec(app, img, ep, host, originLine, extra string) string {
	return appSpec(app, img, "    env: {VERSION: v1}\n") + fmt.Sprintf(`edge:
  %s:
    hosts: [%s]
    %s
%s`, ep, host, originLine, extra)
}

// TestEntrypoints drives an entrypoint through the daemon: from an external
// origin to a service and back under load, a shift rolled back by its
// guard, maintenance, bad input, metrics, the access log, and a restart.
func TestEntrypoints(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "edge")
	ctx := context.Background()
	legacy := newOrigin(t, "legacy")
	ep := app + "-www"
	host := ep + ".localhost"

	d.mustDeploy(edgeSpec(app, img, ep, host, "url: "+legacy.URL, ""))
	code, body, err := d.hostGet(host, "/")
	require.NoError(t, err)
	require.Equal(t, 200, code, body)
	assert.Equal(t, "hello from legacy", body)
	code, body, _ = d.hostGet("web."+app+".localhost", "/")
	assert.Equal(t, "hello from v1", body, "the service keeps its own host (%d)", code)

	t.Run("switch and shift under load", func(t *testing.T) {
		l := d.loadHost(host, 6)
		time.Sleep(200 * time.Millisecond)
		got, err := d.client.EdgeSwitch(ctx, ep, api.SwitchRequest{Origin: "web"})
		require.NoError(t, err)
		assert.Equal(t, "web", got.Origin)
		time.Sleep(300 * time.Millisecond)
		got, err = d.client.EdgeShift(ctx, ep, api.ShiftRequest{Shares: map[string]float64{legacy.URL: 50}})
		require.NoError(t, err)
		require.Len(t, got.Shares, 1)
		assert.Equal(t, 50.0, got.Shares[0].Percent)
		require.NotNil(t, got.Guard)
		assert.Equal(t, 1.0, got.Guard.ErrorRate)
		time.Sleep(400 * time.Millisecond)
		mid := l.snapshot()
		_, err = d.client.EdgeSwitch(ctx, ep, api.SwitchRequest{Origin: app + "/web"})
		require.NoError(t, err)
		time.Sleep(200 * time.Millisecond)
		bodies := l.finish()
		assert.Zero(t, l.failed.Load(), "failed requests: %v", l.errs)
		assert.Positive(t, bodies["hello from legacy"])
		assert.Positive(t, bodies["hello from v1"])
		assert.Greater(t, mid["hello from legacy"], 0)
		_, body, _ := d.hostGet(host, "/")
		assert.Equal(t, "hello from v1", body)
	})

	t.Run("guard rolls a failing shift back", func(t *testing.T) {
		window := "5s"
		_, err := d.client.EdgeShift(ctx, ep, api.ShiftRequest{Shares: map[string]float64{legacy.URL: 50}, GuardWindow: window})
		require.NoError(t, err)
		legacy.status.Store(500)
		defer legacy.status.Store(200)
		var fails int
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			st, err := d.client.Entrypoint(ctx, ep)
			require.NoError(t, err)
			if len(st.Shares) == 0 {
				require.NotNil(t, st.Rollback)
				assert.Contains(t, st.Rollback.Reason, "requests failed")
				break
			}
			for range 10 {
				if code, _, _ := d.hostGet(host, "/"); code == 500 {
					fails++
				}
			}
		}
		st, err := d.client.Entrypoint(ctx, ep)
		require.NoError(t, err)
		require.Empty(t, st.Shares, "the guard rolled the shift back")
		assert.Equal(t, "web", strings.TrimPrefix(st.Origin, app+"/"))
		assert.Less(t, fails, 30)
		for range 50 {
			code, body, err := d.hostGet(host, "/")
			require.NoError(t, err)
			require.Equal(t, 200, code, body)
		}
		assert.True(t, hasEvent(t, d, app, "edge-guard-rollback"))
	})

	t.Run("maintenance", func(t *testing.T) {
		_, err := d.client.EdgeMaintenance(ctx, ep, true)
		require.NoError(t, err)
		code, body, _ := d.hostGet(host, "/")
		assert.Equal(t, 503, code)
		assert.Contains(t, body, "maintenance")
		_, err = d.client.EdgeMaintenance(ctx, ep, false)
		require.NoError(t, err)
		code, _, _ = d.hostGet(host, "/")
		assert.Equal(t, 200, code)
	})

	t.Run("bad input changes nothing", func(t *testing.T) {
		before, err := d.client.Entrypoint(ctx, ep)
		require.NoError(t, err)
		dead := "http://" + deadAddr(t)
		for _, tc := range []struct {
			name string
			call func() error
			code string
		}{
			{"unreachable origin", func() error { _, err := d.client.EdgeSwitch(ctx, ep, api.SwitchRequest{Origin: dead}); return err }, "invalid"},
			{"malformed URL", func() error {
				_, err := d.client.EdgeSwitch(ctx, ep, api.SwitchRequest{Origin: "ftp://files.example.com"})
				return err
			}, "invalid"},
			{"URL with query", func() error {
				_, err := d.client.EdgeSwitch(ctx, ep, api.SwitchRequest{Origin: legacy.URL + "/?x=1"})
				return err
			}, "invalid"},
			{"unknown service", func() error { _, err := d.client.EdgeSwitch(ctx, ep, api.SwitchRequest{Origin: "nosuch"}); return err }, "invalid"},
			{"unknown entrypoint", func() error {
				_, err := d.client.EdgeSwitch(ctx, "nope-"+app, api.SwitchRequest{Origin: "web"})
				return err
			}, "not_found"},
			{"percent above 100", func() error {
				_, err := d.client.EdgeShift(ctx, ep, api.ShiftRequest{Shares: map[string]float64{legacy.URL: 150}})
				return err
			}, "invalid"},
			{"negative percent", func() error {
				_, err := d.client.EdgeShift(ctx, ep, api.ShiftRequest{Shares: map[string]float64{legacy.URL: -1}})
				return err
			}, "invalid"},
			{"shares over 100", func() error {
				_, err := d.client.EdgeShift(ctx, ep, api.ShiftRequest{Shares: map[string]float64{legacy.URL: 60, legacy.URL + "/x": 60}})
				return err
			}, "invalid"},
			{"shift to the active origin", func() error {
				_, err := d.client.EdgeShift(ctx, ep, api.ShiftRequest{Shares: map[string]float64{app + "/web": 10}})
				return err
			}, "invalid"},
			{"shift to an unreachable origin", func() error {
				_, err := d.client.EdgeShift(ctx, ep, api.ShiftRequest{Shares: map[string]float64{dead: 10}})
				return err
			}, "invalid"},
			{"bad sticky", func() error {
				_, err := d.client.EdgeShift(ctx, ep, api.ShiftRequest{Shares: map[string]float64{legacy.URL: 10}, Sticky: "ip"})
				return err
			}, "invalid"},
			{"invalidate without a cache", func() error { _, err := d.client.EdgeInvalidate(ctx, ep, "/x"); return err }, "invalid"},
			{"pattern that cannot match", func() error { _, err := d.client.EdgeInvalidate(ctx, ep, "static/*"); return err }, "invalid"},
		} {
			t.Run(tc.name, func(t *testing.T) { requireCode(t, tc.call(), tc.code) })
		}

		other := testutil.UniqueName(t, "edgeb")
		for _, tc := range []struct{ name, yaml string }{
			{"host of another entrypoint", edgeSpec(other, img, other+"-x", host, "url: "+legacy.URL, "")},
			{"host of a service", edgeSpec(other, img, other+"-x", "web."+app+".localhost", "url: "+legacy.URL, "")},
			{"name of another app's entrypoint", edgeSpec(other, img, ep, "x."+other+".example.com", "url: "+legacy.URL, "")},
			{"invalid cache settings", edgeSpec(other, img, other+"-x", "x."+other+".example.com", "url: "+legacy.URL, "    cache: {enabled: true, default_ttl: -1s}\n")},
			{"route that cannot match", edgeSpec(other, img, other+"-x", "x."+other+".example.com", "url: "+legacy.URL, "    routes: [{path: api, origin: web}]\n")},
			{"missing error page", edgeSpec(other, img, other+"-x", "x."+other+".example.com", "url: "+legacy.URL, "    error_pages: {502: ./no-such.html}\n")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res, _, err := d.deploy(tc.yaml)
				require.Error(t, err)
				assert.False(t, res.OK)
				assert.Equal(t, "invalid", res.Code, res.Error)
				assert.NotContains(t, res.Error, "\n")
			})
		}
		apps, err := d.client.Apps(ctx)
		require.NoError(t, err)
		for _, a := range apps {
			assert.NotEqual(t, other, a.Name, "the rejected app was not stored")
		}
		after, err := d.client.Entrypoint(ctx, ep)
		require.NoError(t, err)
		before.UpdatedAt, after.UpdatedAt = time.Time{}, time.Time{}
		assert.Equal(t, before, after)
		_, body, _ := d.hostGet(host, "/")
		assert.Equal(t, "hello from v1", body)

		t.Run("force takes an unreachable origin", func(t *testing.T) {
			_, err := d.client.EdgeSwitch(ctx, ep, api.SwitchRequest{Origin: dead, Force: true})
			require.NoError(t, err)
			code, _, _ := d.hostGet(host, "/")
			assert.Equal(t, http.StatusBadGateway, code)
			_, err = d.client.EdgeSwitch(ctx, ep, api.SwitchRequest{Origin: "web"})
			require.NoError(t, err)
		})
	})

	// A switch survives a restart (the new daemon belongs to the test, not
	// to a subtest, so that it outlives the subtests).
	_, err = d.client.EdgeSwitch(ctx, ep, api.SwitchRequest{Origin: legacy.URL})
	require.NoError(t, err)
	d.stop()
	d = d.again()
	// Cleanups run last-in first-out: destroy the app before this daemon
	// stops.

	t.Run("switch survives a restart; metrics and access log", func(t *testing.T) {
		st, err := d.client.Entrypoint(ctx, ep)
		require.NoError(t, err)
		assert.Equal(t, legacy.URL, st.Origin)
		assert.Equal(t, legacy.URL, st.SpecOrigin)
		before := legacy.hits.Load()
		for range 7 {
			code, body, err := d.hostGet(host, "/", "X-Test", "metrics")
			require.NoError(t, err)
			require.Equal(t, 200, code, body)
		}
		assert.Equal(t, before+7, legacy.hits.Load())
		for range 3 {
			_, _, _ = d.hostGet("web."+app+".localhost", "/")
		}
		metrics := scrape(t, d)
		originLabel := strings.TrimSuffix(legacy.URL, "/")
		assert.Equal(t, 7.0, metricValue(metrics, "berth_edge_requests_total", `code="2xx",entrypoint="`+ep+`",origin="`+originLabel+`"`), metrics)
		assert.Equal(t, 3.0, metricValue(metrics, "berth_edge_requests_total", `code="2xx",entrypoint="`+app+`/web",origin="`+app+`/web"`))
		assert.Equal(t, 7.0, metricValue(metrics, "berth_edge_request_duration_seconds_count", `entrypoint="`+ep+`",origin="`+originLabel+`"`))
		assert.Contains(t, metrics, "berth_instances{", "the control plane's metrics are on the same registry")

		// A redeploy of the same spec keeps the switched origin.
		d.mustDeploy(edgeSpec(app, img, ep, host, "url: "+legacy.URL, ""))
		st, err = d.client.Entrypoint(ctx, ep)
		require.NoError(t, err)
		assert.Equal(t, legacy.URL, st.Origin)

		eventually(t, 5*time.Second, "access log lines", func() bool {
			return countLines(t, filepath.Join(d.dataDir, "edge-access.log"), ep) >= 7
		})
		line := lastLine(t, filepath.Join(d.dataDir, "edge-access.log"), ep)
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m))
		assert.Equal(t, host, m["host"])
		assert.Equal(t, "/", m["path"])
		assert.Equal(t, 200.0, m["status"])
		assert.Equal(t, originLabel, m["origin"])
		assert.Equal(t, "", m["cache"])
		assert.Contains(t, m, "duration_ms")
		assert.Contains(t, m, "bytes")
	})

	t.Run("spec without the entrypoint removes it", func(t *testing.T) {
		d.mustDeploy(appSpec(app, img, "    env: {VERSION: v1}\n"))
		_, err := d.client.Entrypoint(ctx, ep)
		requireCode(t, err, "not_found")
		code, _, _ := d.hostGet(host, "/")
		assert.Equal(t, http.StatusNotFound, code)
	})
}

// TestEntrypointCacheAndControls deploys an entrypoint with a cache, routes
// and an error page, and invalidates its cache.
func TestEntrypointCacheAndControls(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "edgec")
	ctx := context.Background()
	var n atomic.Int64
	static := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "static/1")
		if r.URL.Path == "/boom" {
			http.Error(w, "boom", http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, "static %d", n.Add(1))
	}))
	t.Cleanup(static.Close)
	require.NoError(t, os.MkdirAll(filepath.Join(d.dataDir, "errors"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(d.dataDir, "errors", "502.html"), []byte("<h1>we are on it</h1>"), 0o644))
	ep := app + "-cdn"
	host := ep + ".localhost"
	d.mustDeploy(edgeSpec(app, img, ep, host, "url: "+static.URL, `    cache: {enabled: true, default_ttl: 60s}
    headers: {add: {X-Frame-Options: DENY}, remove: [Server]}
    routes:
      - {path: /sleep, origin: web, timeout: 1s}
    error_pages: {502: ./errors/502.html}
`))
	get := func(path string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+d.addrs.HTTP+path, nil)
		req.Host = host
		res, err := httpClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	res, body := get("/a")
	assert.Equal(t, "static 1", body)
	assert.Empty(t, res.Header.Get("Server"))
	assert.Equal(t, "DENY", res.Header.Get("X-Frame-Options"))
	_, body = get("/a")
	assert.Equal(t, "static 1", body, "served from the cache")
	res, body = get("/sleep?d=10ms")
	assert.Equal(t, 200, res.StatusCode, body)
	res, _ = get("/sleep?d=3s")
	assert.Equal(t, http.StatusGatewayTimeout, res.StatusCode)
	res, body = get("/boom")
	assert.Equal(t, http.StatusBadGateway, res.StatusCode)
	assert.Equal(t, "<h1>we are on it</h1>", body)

	inv, err := d.client.EdgeInvalidate(ctx, ep, "/a")
	require.NoError(t, err)
	assert.Equal(t, 1, inv.Removed)
	_, body = get("/a")
	assert.Equal(t, "static 2", body, "invalidated: fetched again")
	st, err := d.client.Entrypoint(ctx, ep)
	require.NoError(t, err)
	require.NotNil(t, st.Cache)
	assert.Equal(t, int64(1), st.Cache.Hits)
	assert.Equal(t, "1m0s", st.Cache.DefaultTTL)
	metrics := scrape(t, d)
	assert.Equal(t, 1.0, metricValue(metrics, "berth_edge_cache_hits_total", `entrypoint="`+ep+`"`))
}

// TestCanaryDeploy runs a canary through its lives: a share of the traffic
// (sticky, header-selectable), promoted under load; one rolled back by its
// guard; one rolled back by berth rollback.
func TestCanaryDeploy(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "canary")
	ctx := context.Background()
	host := "web." + app + ".localhost"
	// An entrypoint in front of the service takes part in its canaries.
	epHost := app + "-e.localhost"
	specV := func(v, extra string) string {
		return appSpec(app, img, fmt.Sprintf("    env: {VERSION: %s%s}\n", v, extra)) +
			fmt.Sprintf("edge:\n  %s-e:\n    hosts: [%s]\n    origin: web\n", app, epHost)
	}
	canaryDeploy := func(yaml string, percent float64) (api.Message, error) {
		c, cancel := context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
		return d.client.Deploy(c, api.DeployRequest{File: "berth.yaml", BaseDir: d.dataDir, YAML: yaml, Canary: percent}, nil)
	}
	d.mustDeploy(specV("v1", ""))

	l := d.loadHost(host, 4)
	res, err := canaryDeploy(specV("v2", ""), 30)
	require.NoError(t, err)
	require.True(t, res.OK)
	time.Sleep(500 * time.Millisecond)
	mid := l.snapshot()
	assert.Positive(t, mid["hello from v2"], "%v", mid)

	t.Run("header and cookie", func(t *testing.T) {
		for range 10 {
			for _, h := range []string{host, epHost} {
				_, body, _ := d.hostGet(h, "/", "X-Berth-Origin", "canary")
				assert.Equal(t, "hello from v2", body, h)
				_, body, _ = d.hostGet(h, "/", "X-Berth-Origin", "stable")
				assert.Equal(t, "hello from v1", body, h)
			}
		}
		for range 5 {
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar, Transport: httpClient.Transport, Timeout: 5 * time.Second}
			first := ""
			for i := range 8 {
				req, _ := http.NewRequest(http.MethodGet, "http://"+d.addrs.HTTP+"/", nil)
				req.Host = host
				resp, err := c.Do(req)
				require.NoError(t, err)
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if i == 0 {
					first = string(b)
				} else {
					assert.Equal(t, first, string(b), "sticky")
				}
			}
		}
	})

	t.Run("deploy refused during a canary", func(t *testing.T) {
		res, _, err := d.deploy(specV("v9", ""))
		require.Error(t, err)
		assert.Equal(t, "deploy_in_progress", res.Code, res.Error)
		assert.Contains(t, res.Error, "--promote")
	})

	res, err = d.client.Deploy(ctx, api.DeployRequest{File: "berth.yaml", YAML: specV("v2", ""), Promote: true}, nil)
	require.NoError(t, err)
	require.True(t, res.OK)
	assert.Equal(t, 2, res.Deployed[0].Revision)
	time.Sleep(300 * time.Millisecond)
	l.finish()
	assert.Zero(t, l.failed.Load(), "failed requests: %v", l.errs)
	for range 20 {
		_, body, _ := d.hostGet(host, "/")
		require.Equal(t, "hello from v2", body)
	}

	t.Run("guard rolls a failing canary back", func(t *testing.T) {
		res, err := canaryDeploy(specV("v3", ", ROOT_STATUS: 500"), 50)
		require.NoError(t, err)
		require.True(t, res.OK)
		eventually(t, 15*time.Second, "the guard rolls the canary back", func() bool {
			for range 10 {
				_, _, _ = d.hostGet(host, "/")
			}
			return hasEvent(t, d, app, "canary-rolled-back")
		})
		for range 30 {
			code, body, err := d.hostGet(host, "/")
			require.NoError(t, err)
			require.Equal(t, 200, code)
			require.Equal(t, "hello from v2", body)
		}
		revs, err := d.client.Revisions(ctx, app, "web")
		require.NoError(t, err)
		assert.Equal(t, "failed", revs[0].Status)
		assert.Contains(t, revs[0].Message, "guard")
	})

	t.Run("rollback ends a canary", func(t *testing.T) {
		res, err := canaryDeploy(specV("v4", ""), 20)
		require.NoError(t, err)
		require.True(t, res.OK)
		_, body, _ := d.hostGet(host, "/", "X-Berth-Origin", "canary")
		require.Equal(t, "hello from v4", body)
		rb, err := d.client.Rollback(ctx, app, "web", api.RollbackRequest{}, nil)
		require.NoError(t, err)
		assert.Equal(t, 2, rb.Deployed[0].Revision)
		for range 20 {
			_, body, _ := d.hostGet(host, "/", "X-Berth-Origin", "canary")
			require.Equal(t, "hello from v2", body)
		}
	})

	t.Run("bad canaries", func(t *testing.T) {
		res, err := canaryDeploy(specV("v5", ""), 150)
		require.Error(t, err)
		assert.Equal(t, "invalid", res.Code)
		res, err = d.client.Deploy(ctx, api.DeployRequest{File: "berth.yaml", YAML: specV("v2", ""), Promote: true}, nil)
		require.Error(t, err)
		assert.Equal(t, "invalid", res.Code, res.Error)
	})
}

func hasEvent(t testing.TB, d *daemon, app, kind string) bool {
	t.Helper()
	found := false
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = d.client.Events(ctx, client.EventsOptions{App: app}, func(m api.Message) {
		if m.Event != nil && m.Event.Kind == kind {
			found = true
		}
	})
	return found
}

// scrape reads the daemon's /metrics through the API socket.
func scrape(t testing.TB, d *daemon) string {
	t.Helper()
	path := strings.TrimPrefix(d.addrs.API, "unix://")
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}}
	res, err := hc.Get("http://berth/metrics")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return string(b)
}

// metricValue finds `name{labels} value` in Prometheus text; labels are
// as Prometheus sorts them.
func metricValue(text, name, labels string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name+"{"+labels+"}") + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func countLines(t testing.TB, path, substr string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), substr) {
			n++
		}
	}
	return n
}

func lastLine(t testing.TB, path, substr string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var last string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, substr) {
			last = l
		}
	}
	return last
}

func deadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}
