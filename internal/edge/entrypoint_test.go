package edge

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func serviceOrigin(key string) Origin { return Origin{Name: key, Route: key} }

func urlOrigin(t testing.TB, raw string) Origin {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return Origin{Name: raw, URL: u}
}

// externalOrigin is a TLS server standing in for an origin outside berth
// (an App Runner URL); its answers name it and echo the Host it saw.
func externalOrigin(t testing.TB, id string, h http.Handler) (*httptest.Server, *x509.CertPool) {
	t.Helper()
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Origin", id)
			w.Header().Set("X-Seen-Host", r.Host)
			w.Header().Set("X-Seen-Forwarded-Host", r.Header.Get("X-Forwarded-Host"))
			_, _ = io.WriteString(w, id+":"+r.URL.Path)
		})
	}
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return srv, pool
}

func TestEntrypointExternalOrigin(t *testing.T) {
	ext, pool := externalOrigin(t, "apprunner", nil)
	e, srv := newTestEdge(t, Options{OriginRootCAs: pool})
	c := testClient(t)

	// The origin's URL names it by IP; its certificate is for 127.0.0.1 and
	// example.com, so the Host it sees is its own.
	o := urlOrigin(t, ext.URL+"/base")
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "www", Hosts: []string{"WWW.Example.com"}, Origin: o}))

	res := do(t, c, http.MethodGet, srv.URL, "www.example.com:8080", "/page", "")
	require.Equal(t, http.StatusOK, res.status, res.body)
	assert.Equal(t, "apprunner:/base/page", res.body, "the origin URL's path prefixes the request path")
	assert.Equal(t, strings.TrimPrefix(ext.URL, "https://"), res.header.Get("X-Seen-Host"), "Host is rewritten to the origin's")
	assert.Equal(t, "www.example.com:8080", res.header.Get("X-Seen-Forwarded-Host"))

	t.Run("unverified certificate is refused", func(t *testing.T) {
		e2, srv2 := newTestEdge(t, Options{}) // system roots do not know the test CA
		require.NoError(t, e2.SetEntrypoint(Entrypoint{Name: "www", Hosts: []string{"www.example.com"}, Origin: o}))
		res := do(t, c, http.MethodGet, srv2.URL, "www.example.com", "/", "")
		assert.Equal(t, http.StatusBadGateway, res.status)
		assert.Equal(t, ReasonUnreachable, res.header.Get(ErrorHeader))
	})

	t.Run("probe", func(t *testing.T) {
		require.NoError(t, e.ProbeOrigin(t.Context(), o.URL, time.Second))
		dead, _ := url.Parse("http://" + deadAddr(t))
		require.ErrorIs(t, e.ProbeOrigin(t.Context(), dead, time.Second), ErrOriginUnreachable)
	})

	t.Run("entrypoint host wins over a route's", func(t *testing.T) {
		b := newTestBackend(t, "svc", nil)
		e.Update(Route{Key: "shop/web", Hosts: []string{"www.example.com", "web.shop.localhost"}, Backends: backendsOf(b)})
		assert.Equal(t, "apprunner:/base/", do(t, c, http.MethodGet, srv.URL, "www.example.com", "/", "").body)
		e.RemoveEntrypoint("www")
		assert.Equal(t, "svc:", do(t, c, http.MethodGet, srv.URL, "www.example.com", "/", "").body)
	})
}

func TestEntrypointServiceOriginAndPathRoutes(t *testing.T) {
	web := newTestBackend(t, "web", nil)
	api := newTestBackend(t, "api", nil)
	ext, pool := externalOrigin(t, "legacy", nil)
	e, srv := newTestEdge(t, Options{OriginRootCAs: pool},
		Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(web)},
		Route{Key: "shop/api", Backends: backendsOf(api)},
	)
	apiOrigin := serviceOrigin("shop/api")
	legacy := urlOrigin(t, ext.URL)
	require.NoError(t, e.SetEntrypoint(Entrypoint{
		Name: "www", Hosts: []string{"www.example.com"}, Origin: serviceOrigin("shop/web"),
		Routes: []EntrypointRoute{{Prefix: "/api", Origin: &apiOrigin}, {Prefix: "/old/", Origin: &legacy}},
	}))
	c := testClient(t)
	for _, tc := range []struct{ path, want string }{
		{"/", "web:"},
		{"/apiary", "web:"},
		{"/api", "api:"},
		{"/api/v1/users", "api:"},
		{"/old/x", "legacy:/old/x"},
		{"/api/../old/y", "legacy:/api/../old/y"}, // routed as cleaned, passed on as sent
	} {
		t.Run(tc.path, func(t *testing.T) {
			res := do(t, c, http.MethodPost, srv.URL, "www.example.com", tc.path, "")
			assert.Equal(t, tc.want, res.body)
		})
	}
	assert.Equal(t, "web:", do(t, c, http.MethodGet, srv.URL, "web.shop.localhost", "/", "").body, "the service keeps its own host")

	t.Run("service origin without instances", func(t *testing.T) {
		e.Update(Route{Key: "shop/api"})
		res := do(t, c, http.MethodGet, srv.URL, "www.example.com", "/api", "")
		assert.Equal(t, http.StatusServiceUnavailable, res.status)
		assert.Equal(t, ReasonNoHealthyInstance, res.header.Get(ErrorHeader))
		e.Update(Route{Key: "shop/api", Paused: true})
		res = do(t, c, http.MethodGet, srv.URL, "www.example.com", "/api", "")
		assert.Equal(t, http.StatusServiceUnavailable, res.status)
		assert.Equal(t, ReasonPaused, res.header.Get(ErrorHeader))
	})

	t.Run("drain counts entrypoint requests", func(t *testing.T) {
		release := make(chan struct{})
		slow := newTestBackend(t, "slow", holdHandler("slow", release))
		e.Update(Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(slow)})
		done := make(chan result, 1)
		go func() {
			res, _ := send(c, http.MethodGet, srv.URL, "www.example.com", "/", "")
			done <- res
		}()
		eventually(t, 5*time.Second, func() bool { return e.InFlight("slow") == 1 }, "request in flight through the entrypoint")
		e.Update(Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(web)})
		waited := make(chan error, 1)
		go func() { waited <- e.WaitIdle(context.Background(), []string{"slow"}) }()
		select {
		case <-waited:
			t.Fatal("WaitIdle returned while an entrypoint request was in flight")
		case <-time.After(50 * time.Millisecond):
		}
		close(release)
		require.NoError(t, <-waited)
		assert.Equal(t, "slow", (<-done).body)
	})
}

// TestEntrypointSwitchAndShiftUnderLoad moves an entrypoint between an
// external origin and a service, and shifts shares between them, under
// steady load: not one request may fail.
func TestEntrypointSwitchAndShiftUnderLoad(t *testing.T) {
	ext, pool := externalOrigin(t, "apprunner", nil)
	web := newTestBackend(t, "web", nil)
	e, srv := newTestEdge(t, Options{OriginRootCAs: pool}, Route{Key: "shop/web", Backends: backendsOf(web)})
	svc, legacy := serviceOrigin("shop/web"), urlOrigin(t, ext.URL)
	ep := Entrypoint{Name: "www", Hosts: []string{"www.example.com"}, Origin: legacy}
	require.NoError(t, e.SetEntrypoint(ep))
	c := testClient(t)

	var (
		ok, failed atomic.Int64
		mu         sync.Mutex
		errs       []string
		seen       = map[string]int{}
		stop       = make(chan struct{})
		wg         sync.WaitGroup
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				method := http.MethodGet
				if ok.Load()%2 == 0 {
					method = http.MethodPost
				}
				res, err := send(c, method, srv.URL, "www.example.com", "/x", "payload")
				mu.Lock()
				if err != nil || res.status != http.StatusOK {
					failed.Add(1)
					errs = append(errs, fmt.Sprintf("%v %d %q", err, res.status, res.body))
				} else {
					ok.Add(1)
					seen[strings.SplitN(res.body, ":", 2)[0]]++
				}
				mu.Unlock()
			}
		}()
	}
	deadline := time.Now().Add(1500 * time.Millisecond)
	for i := 0; time.Now().Before(deadline); i++ {
		switch i % 4 {
		case 0:
			ep.Origin, ep.Shares = svc, nil
		case 1:
			ep.Shares, ep.ShiftID = []Share{{Origin: legacy, Weight: PercentToWeight(50)}}, fmt.Sprint(i)
		case 2:
			ep.Origin, ep.Shares = legacy, nil
		case 3:
			ep.Shares, ep.ShiftID = []Share{{Origin: svc, Weight: PercentToWeight(25)}}, fmt.Sprint(i)
		}
		require.NoError(t, e.SetEntrypoint(ep))
		time.Sleep(40 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	assert.Zero(t, failed.Load(), "failed requests: %v", errs)
	assert.Positive(t, seen["apprunner"])
	assert.Positive(t, seen["web"])
	t.Logf("%d requests: %v", ok.Load(), seen)
}

func TestShiftWeightsStickyAndHeader(t *testing.T) {
	a := newTestBackend(t, "a", nil)
	b := newTestBackend(t, "b", nil)
	z := newTestBackend(t, "z", nil)
	e, srv := newTestEdge(t, Options{},
		Route{Key: "shop/a", Backends: backendsOf(a)},
		Route{Key: "shop/b", Backends: backendsOf(b)},
		Route{Key: "shop/z", Backends: backendsOf(z)})
	ep := Entrypoint{
		Name: "www", Hosts: []string{"www.example.com"}, Origin: serviceOrigin("shop/a"),
		Shares: []Share{{Origin: serviceOrigin("shop/b"), Weight: PercentToWeight(30)}, {Origin: serviceOrigin("shop/z"), Weight: 0}},
		Header: "X-Berth-Origin", ShiftID: "1",
	}
	require.NoError(t, e.SetEntrypoint(ep))
	c := testClient(t)

	t.Run("weights", func(t *testing.T) {
		counts := map[string]int{}
		const n = 2000
		for range n {
			counts[do(t, c, http.MethodGet, srv.URL, "www.example.com", "/", "").body]++
		}
		assert.InDelta(t, 0.30, float64(counts["b:"])/n, 0.05, "%v", counts)
		assert.Zero(t, counts["z:"], "a 0%% share gets nothing without the header")
	})

	t.Run("header picks any origin of the shift", func(t *testing.T) {
		for _, o := range []string{"shop/a", "shop/b", "shop/z"} {
			for range 20 {
				assert.Equal(t, strings.TrimPrefix(o, "shop/")+":", do(t, c, http.MethodGet, srv.URL, "www.example.com", "/", "", "X-Berth-Origin", o).body)
			}
		}
		// An unknown value is ignored.
		assert.Contains(t, []string{"a:", "b:"}, do(t, c, http.MethodGet, srv.URL, "www.example.com", "/", "", "X-Berth-Origin", "shop/nope").body)
	})

	t.Run("sticky cookie", func(t *testing.T) {
		ep.Sticky = true
		require.NoError(t, e.SetEntrypoint(ep))
		got := map[string]int{}
		for client := range 40 {
			jar, err := cookiejar.New(nil)
			require.NoError(t, err)
			cc := &http.Client{Transport: c.Transport, Jar: jar, Timeout: 5 * time.Second}
			first := ""
			for i := range 10 {
				req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/", nil)
				require.NoError(t, err)
				req.Host = "www.example.com"
				// The jar files cookies under the URL's host (127.0.0.1).
				res, err := cc.Do(req)
				require.NoError(t, err)
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if i == 0 {
					first = string(body)
					require.NotEmpty(t, res.Header.Get("Set-Cookie"), "client %d: first answer sets the cookie", client)
					assert.Contains(t, res.Header.Get("Set-Cookie"), "berth_www=")
				} else {
					assert.Equal(t, first, string(body), "client %d stays on its origin", client)
					assert.Empty(t, res.Header.Get("Set-Cookie"))
				}
			}
			got[first]++
		}
		assert.Positive(t, got["a:"])
		assert.Positive(t, got["b:"], "%v", got)
	})
}

func TestGuardRollsBackFailingShift(t *testing.T) {
	good := newTestBackend(t, "good", nil)
	var failing atomic.Bool
	canary := newTestBackend(t, "new", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "new:")
	}))
	trips := make(chan GuardTrip, 4)
	e, srv := newTestEdge(t, Options{OnGuardTrip: func(g GuardTrip) { trips <- g }},
		Route{Key: "shop/good", Backends: backendsOf(good)},
		Route{Key: "shop/new", Backends: backendsOf(canary)})
	require.NoError(t, e.SetEntrypoint(Entrypoint{
		Name: "www", Hosts: []string{"www.example.com"}, Origin: serviceOrigin("shop/good"),
		Shares: []Share{{Origin: serviceOrigin("shop/new"), Weight: PercentToWeight(50)}}, ShiftID: "s1",
		Guard: Guard{ErrorRate: 0.05, Window: 2 * time.Second},
	}))
	c := testClient(t)
	count := func(n int) map[int]int {
		out := map[int]int{}
		for range n {
			out[do(t, c, http.MethodGet, srv.URL, "www.example.com", "/", "").status]++
		}
		return out
	}
	assert.Equal(t, map[int]int{200: 200}, count(200), "healthy shift: no trip")
	select {
	case g := <-trips:
		t.Fatalf("guard tripped on a healthy origin: %+v", g)
	default:
	}

	failing.Store(true)
	var fails int
	for range 200 {
		if do(t, c, http.MethodGet, srv.URL, "www.example.com", "/", "").status == 500 {
			fails++
		}
	}
	select {
	case g := <-trips:
		assert.Equal(t, "www", g.Entrypoint)
		assert.Equal(t, "s1", g.ID)
		assert.Equal(t, []string{"shop/new"}, g.Origins)
		assert.Greater(t, float64(g.Errors), 0.05*float64(g.Requests))
		assert.GreaterOrEqual(t, g.Requests, int64(guardMinRequests))
	case <-time.After(5 * time.Second):
		t.Fatal("guard did not trip")
	}
	assert.Less(t, fails, 20, "the guard acts within the first few failures")
	assert.Equal(t, map[int]int{200: 300}, count(300), "after the trip all traffic is back on the origin")

	t.Run("re-installing the same shift keeps it rolled back", func(t *testing.T) {
		eps := e.Entrypoints()
		require.Len(t, eps, 1)
		require.NoError(t, e.SetEntrypoint(eps[0]))
		assert.Equal(t, map[int]int{200: 100}, count(100))
	})
	t.Run("a new shift re-arms", func(t *testing.T) {
		failing.Store(false)
		ep := e.Entrypoints()[0]
		ep.ShiftID = "s2"
		require.NoError(t, e.SetEntrypoint(ep))
		bodies := map[string]int{}
		for range 200 {
			bodies[do(t, c, http.MethodGet, srv.URL, "www.example.com", "/", "").body]++
		}
		assert.Positive(t, bodies["new:"])
	})
}

func TestFailover(t *testing.T) {
	var backupHits atomic.Int64
	backup := newTestBackend(t, "backup", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		backupHits.Add(1)
		body, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, "backup:"+r.Method+":"+string(body))
	}))
	var status atomic.Int64
	status.Store(503)
	flaky := newTestBackend(t, "flaky", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.WriteHeader(int(status.Load()))
		_, _ = io.WriteString(w, "flaky")
	}))
	// broken reads the request and closes the connection without answering.
	broken := newTestBackend(t, "broken", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	e, srv := newTestEdge(t, Options{},
		Route{Key: "shop/dead", Backends: []Backend{{ID: "dead", Addr: deadAddr(t)}}},
		Route{Key: "shop/flaky", Backends: backendsOf(flaky)},
		Route{Key: "shop/broken", Backends: backendsOf(broken)},
		Route{Key: "shop/empty"},
		Route{Key: "shop/backup", Backends: backendsOf(backup)})
	fo := &Failover{Origin: serviceOrigin("shop/backup"), Codes: []int{502, 503}}
	set := func(primary string) {
		require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "www", Hosts: []string{"www.example.com"}, Origin: serviceOrigin(primary), Failover: fo}))
	}
	c := testClient(t)

	for _, tc := range []struct {
		name, primary, method string
		status                int
		body                  string
	}{
		{"dead primary, GET", "shop/dead", http.MethodGet, 200, "backup:GET:"},
		{"dead primary, POST never reached it", "shop/dead", http.MethodPost, 200, "backup:POST:data"},
		{"no instance, POST never reached it", "shop/empty", http.MethodPost, 200, "backup:POST:data"},
		{"503, GET fails over", "shop/flaky", http.MethodGet, 200, "backup:GET:"},
		{"503, PUT fails over", "shop/flaky", http.MethodPut, 200, "backup:PUT:data"},
		{"503, POST reached the origin: its answer stands", "shop/flaky", http.MethodPost, 503, "flaky"},
		{"broken after send, GET fails over", "shop/broken", http.MethodGet, 200, "backup:GET:"},
		{"broken after send, POST is not resent", "shop/broken", http.MethodPost, 502, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set(tc.primary)
			before := backupHits.Load()
			body := ""
			if tc.method != http.MethodGet {
				body = "data"
			}
			res := do(t, c, tc.method, srv.URL, "www.example.com", "/", body)
			assert.Equal(t, tc.status, res.status, res.body)
			if tc.body != "" {
				assert.Equal(t, tc.body, res.body)
			}
			if tc.status != 200 {
				assert.Equal(t, before, backupHits.Load(), "the backup saw nothing")
			}
		})
	}
	t.Run("codes not configured do not fail over", func(t *testing.T) {
		set("shop/flaky")
		status.Store(500)
		assert.Equal(t, 500, do(t, c, http.MethodGet, srv.URL, "www.example.com", "/", "").status)
	})
}

func TestRouteControls(t *testing.T) {
	var bodyBytes atomic.Int64
	app := newTestBackend(t, "app", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		bodyBytes.Store(n)
		switch r.URL.Path {
		case "/slow":
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
				return
			}
		case "/missing":
			http.Error(w, "origin's own 404", http.StatusNotFound)
			return
		case "/bad":
			http.Error(w, "origin's own 502", http.StatusBadGateway)
			return
		}
		w.Header().Set("Server", "leaky/1.0")
		w.Header().Set("X-Frame-Options", "SAMEORIGIN")
		_, _ = fmt.Fprintf(w, "got %d bytes", n)
	}))
	e, srv := newTestEdge(t, Options{}, Route{Key: "shop/app", Backends: backendsOf(app)})
	ep := Entrypoint{
		Name: "www", Hosts: []string{"www.example.com"}, Origin: serviceOrigin("shop/app"),
		Controls: Controls{MaxBody: 1 << 20, RemoveHeaders: []string{"server"}, AddHeaders: map[string]string{"X-Frame-Options": "DENY"}},
		Routes: []EntrypointRoute{
			{Prefix: "/upload", Controls: Controls{MaxBody: 10}},
			{Prefix: "/slow", Controls: Controls{Timeout: 100 * time.Millisecond, AddHeaders: map[string]string{"X-Route": "slow"}}},
		},
		ErrorPages: map[int][]byte{404: []byte("<h1>custom 404</h1>"), 502: []byte("<h1>custom 502</h1>"), 503: []byte("<h1>back soon</h1>")},
	}
	require.NoError(t, e.SetEntrypoint(ep))
	c := testClient(t)
	get := func(path, body string, method ...string) result {
		m := http.MethodGet
		if len(method) > 0 {
			m = method[0]
		}
		return do(t, c, m, srv.URL, "www.example.com", path, body)
	}

	t.Run("headers", func(t *testing.T) {
		res := get("/", "")
		assert.Equal(t, "got 0 bytes", res.body)
		assert.Empty(t, res.header.Values("Server"))
		assert.Equal(t, []string{"DENY"}, res.header.Values("X-Frame-Options"))
		assert.Empty(t, res.header.Get("X-Route"))
	})
	t.Run("max body", func(t *testing.T) {
		assert.Equal(t, "got 10 bytes", get("/upload", strings.Repeat("x", 10), http.MethodPost).body)
		res := get("/upload", strings.Repeat("x", 11), http.MethodPost)
		assert.Equal(t, http.StatusRequestEntityTooLarge, res.status)
		assert.Equal(t, ReasonTooLarge, res.header.Get(ErrorHeader))

		// A chunked body has no length to check up front: it is cut off.
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/upload", io.MultiReader(strings.NewReader(strings.Repeat("y", 5)), strings.NewReader(strings.Repeat("y", 50))))
		require.NoError(t, err)
		req.Host = "www.example.com"
		req.ContentLength = -1
		resp, err := c.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
		assert.LessOrEqual(t, bodyBytes.Load(), int64(10))

		assert.Equal(t, "got 100 bytes", get("/other", strings.Repeat("x", 100), http.MethodPost).body, "other paths keep the entrypoint's limit")
	})
	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		res := get("/slow", "")
		assert.Equal(t, http.StatusGatewayTimeout, res.status)
		assert.Equal(t, ReasonTimeout, res.header.Get(ErrorHeader))
		assert.Less(t, time.Since(start), time.Second)
		assert.Equal(t, "slow", res.header.Get("X-Route"), "the route's headers apply to the edge's own answers")
	})
	t.Run("error pages", func(t *testing.T) {
		res := get("/missing", "")
		assert.Equal(t, http.StatusNotFound, res.status)
		assert.Equal(t, "<h1>custom 404</h1>", res.body)
		assert.Equal(t, "text/html; charset=utf-8", res.header.Get("Content-Type"))
		res = get("/bad", "")
		assert.Equal(t, http.StatusBadGateway, res.status)
		assert.Equal(t, "<h1>custom 502</h1>", res.body)
		res = do(t, c, http.MethodHead, srv.URL, "www.example.com", "/missing", "")
		assert.Equal(t, http.StatusNotFound, res.status)
		assert.Empty(t, res.body)
	})
	t.Run("maintenance", func(t *testing.T) {
		ep.Maintenance = true
		require.NoError(t, e.SetEntrypoint(ep))
		res := get("/", "")
		assert.Equal(t, http.StatusServiceUnavailable, res.status)
		assert.Equal(t, "<h1>back soon</h1>", res.body, "the 503 page is the maintenance page")

		ep.ErrorPages = nil
		require.NoError(t, e.SetEntrypoint(ep))
		res = get("/", "")
		assert.Equal(t, http.StatusServiceUnavailable, res.status)
		assert.Equal(t, ReasonMaintenance, res.header.Get(ErrorHeader))
		assert.Contains(t, res.body, "maintenance")

		ep.Maintenance = false
		require.NoError(t, e.SetEntrypoint(ep))
		assert.Equal(t, http.StatusOK, get("/", "").status)
	})
}

func TestRedirectHTTPSAndHSTS(t *testing.T) {
	app := newTestBackend(t, "app", nil)
	e, srv := newTestEdge(t, Options{HTTPSPort: "8443"}, Route{Key: "shop/app", Backends: backendsOf(app)})
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "www", Hosts: []string{"www.example.com"}, Origin: serviceOrigin("shop/app"), RedirectHTTPS: true, HSTS: time.Hour}))
	c := testClient(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res := do(t, c, http.MethodPost, srv.URL, "www.example.com:8080", "/a/b?c=d", "")
	assert.Equal(t, http.StatusPermanentRedirect, res.status)
	assert.Equal(t, "https://www.example.com:8443/a/b?c=d", res.header.Get("Location"))

	tlsSrv := httptest.NewTLSServer(e)
	t.Cleanup(tlsSrv.Close)
	res = do(t, c, http.MethodGet, tlsSrv.URL, "www.example.com", "/", "")
	assert.Equal(t, http.StatusOK, res.status)
	assert.Equal(t, "max-age=3600", res.header.Get("Strict-Transport-Security"))
}

func TestEntrypointWebSocket(t *testing.T) {
	ws := newTestBackend(t, "ws", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		typ, msg, err := conn.Read(r.Context())
		if err == nil {
			_ = conn.Write(r.Context(), typ, append([]byte("echo "), msg...))
		}
		_, _, _ = conn.Read(r.Context())
	}))
	e, srv := newTestEdge(t, Options{}, Route{Key: "shop/ws", Backends: backendsOf(ws)})
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "www", Hosts: []string{"www.example.com"}, Origin: serviceOrigin("shop/ws"), Controls: Controls{Timeout: time.Second}}))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/socket", &websocket.DialOptions{Host: "www.example.com"})
	require.NoError(t, err)
	defer conn.CloseNow()
	require.NoError(t, conn.Write(ctx, websocket.MessageText, []byte("hi")))
	_, got, err := conn.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, "echo hi", string(got))
}

func TestSetEntrypointRejectsBadInput(t *testing.T) {
	e := New(Options{})
	ok := Entrypoint{Name: "www", Hosts: []string{"www.example.com"}, Origin: serviceOrigin("shop/web")}
	ftp, _ := url.Parse("ftp://example.com")
	for _, tc := range []struct {
		name string
		mod  func(*Entrypoint)
	}{
		{"no name", func(ep *Entrypoint) { ep.Name = "" }},
		{"no hosts", func(ep *Entrypoint) { ep.Hosts = []string{" "} }},
		{"origin neither route nor URL", func(ep *Entrypoint) { ep.Origin = Origin{Name: "x"} }},
		{"ftp origin", func(ep *Entrypoint) { ep.Origin = Origin{Name: "ftp", URL: ftp} }},
		{"share over 100%", func(ep *Entrypoint) {
			ep.Shares = []Share{{Origin: serviceOrigin("a/b"), Weight: 6000}, {Origin: serviceOrigin("a/c"), Weight: 6000}}
		}},
		{"negative share", func(ep *Entrypoint) { ep.Shares = []Share{{Origin: serviceOrigin("a/b"), Weight: -1}} }},
		{"share of the origin itself", func(ep *Entrypoint) { ep.Shares = []Share{{Origin: serviceOrigin("shop/web"), Weight: 10}} }},
		{"failover on 404", func(ep *Entrypoint) { ep.Failover = &Failover{Origin: serviceOrigin("a/b"), Codes: []int{404}} }},
		{"route without slash", func(ep *Entrypoint) { ep.Routes = []EntrypointRoute{{Prefix: "api"}} }},
		{"error page for 200", func(ep *Entrypoint) { ep.ErrorPages = map[int][]byte{200: nil} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := ok
			tc.mod(&ep)
			require.ErrorIs(t, e.SetEntrypoint(ep), ErrInvalidEntrypoint)
			assert.Empty(t, e.Entrypoints(), "nothing installed")
		})
	}
	require.NoError(t, e.SetEntrypoint(ok))
}

// TestCurlThroughEntrypoint drives the edge with curl, a client that is not
// Go's.
func TestCurlThroughEntrypoint(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	ext, pool := externalOrigin(t, "apprunner", nil)
	e, srv := newTestEdge(t, Options{OriginRootCAs: pool})
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "www", Hosts: []string{"www.example.com"}, Origin: urlOrigin(t, ext.URL),
		Controls: Controls{AddHeaders: map[string]string{"X-Edge": "berth"}}}))
	_, port, _ := net.SplitHostPort(srv.Addr)
	out, err := exec.CommandContext(t.Context(), curl, "-sS", "-i", "--noproxy", "*",
		"--resolve", "www.example.com:"+port+":127.0.0.1", "http://www.example.com:"+port+"/hello").CombinedOutput()
	require.NoError(t, err, string(out))
	s := string(out)
	assert.Contains(t, s, "HTTP/1.1 200 OK")
	assert.Contains(t, strings.ToLower(s), "x-edge: berth")
	assert.True(t, strings.HasSuffix(s, "apprunner:/hello"), s)
}

// decodeLines parses JSON lines.
func decodeLines(t testing.TB, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		out = append(out, m)
	}
	return out
}

// TestSplitRouteReachesEntrypoints checks that a split of a route (a
// canary) applies to the entrypoints whose origin is that route too, and
// that its guard counts their requests.
func TestSplitRouteReachesEntrypoints(t *testing.T) {
	stable := newTestBackend(t, "stable", nil)
	var failing atomic.Bool
	canary := newTestBackend(t, "canary", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			http.Error(w, "boom", 500)
			return
		}
		_, _ = io.WriteString(w, "canary:")
	}))
	trips := make(chan GuardTrip, 1)
	e, srv := newTestEdge(t, Options{OnGuardTrip: func(g GuardTrip) { trips <- g }},
		Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(stable)},
		Route{Key: "shop/web@canary", Backends: backendsOf(canary)})
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "www", Hosts: []string{"www.example.com"}, Origin: serviceOrigin("shop/web")}))
	require.NoError(t, e.SetEntrypoint(Entrypoint{
		Name: "canary:shop/web", Hosts: []string{"web.shop.localhost"}, Splits: "shop/web",
		Origin: Origin{Name: "stable", Route: "shop/web"}, Shares: []Share{{Origin: Origin{Name: "canary", Route: "shop/web@canary"}, Weight: 5000}},
		Header: "X-Berth-Origin", Sticky: true, ShiftID: "r2", Guard: Guard{ErrorRate: 0.05, Window: 5 * time.Second},
	}))
	c := testClient(t)
	for _, host := range []string{"www.example.com", "web.shop.localhost"} {
		assert.Equal(t, "canary:", do(t, c, http.MethodGet, srv.URL, host, "/", "", "X-Berth-Origin", "canary").body, host)
		assert.Equal(t, "stable:", do(t, c, http.MethodGet, srv.URL, host, "/", "", "X-Berth-Origin", "stable").body, host)
		res := do(t, c, http.MethodGet, srv.URL, host, "/", "")
		assert.Contains(t, res.header.Get("Set-Cookie"), "berth_canary_shop_web=", host)
	}
	failing.Store(true)
	for range 100 {
		do(t, c, http.MethodGet, srv.URL, "www.example.com", "/", "")
	}
	select {
	case g := <-trips:
		assert.Equal(t, "r2", g.ID)
	case <-time.After(5 * time.Second):
		t.Fatal("the split's guard did not see the entrypoint's failures")
	}
	for range 50 {
		assert.Equal(t, "stable:", do(t, c, http.MethodGet, srv.URL, "www.example.com", "/", "").body)
	}
}
