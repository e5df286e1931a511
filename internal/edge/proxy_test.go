package edge

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHostRouting(t *testing.T) {
	web := newTestBackend(t, "web", nil)
	api := newTestBackend(t, "api", nil)
	_, srv := newTestEdge(t, Options{},
		Route{Key: "shop/web", Hosts: []string{"web.shop.localhost", "Shop.Example.com"}, Backends: backendsOf(web)},
		Route{Key: "shop/api", Hosts: []string{"api.shop.localhost"}, Backends: backendsOf(api)},
	)
	c := testClient(t)

	tests := []struct {
		name   string
		host   string
		status int
		body   string
	}{
		{name: "exact", host: "web.shop.localhost", status: 200, body: "web:"},
		{name: "port stripped", host: "web.shop.localhost:8080", status: 200, body: "web:"},
		{name: "case folded", host: "WEB.Shop.LOCALHOST:8080", status: 200, body: "web:"},
		{name: "trailing dot", host: "web.shop.localhost.", status: 200, body: "web:"},
		{name: "configured with capitals", host: "shop.example.com", status: 200, body: "web:"},
		{name: "other service", host: "api.shop.localhost", status: 200, body: "api:"},
		{name: "unknown host", host: "other.localhost", status: 404},
		{name: "unknown subdomain", host: "x.web.shop.localhost", status: 404},
		{name: "ip address", host: "127.0.0.1", status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, c, http.MethodGet, srv.URL, tt.host, "/", "")
			require.Equal(t, tt.status, res.status, res.body)
			if tt.status == http.StatusOK {
				assert.Equal(t, tt.body, res.body)
				return
			}
			assert.Equal(t, ReasonUnknownHost, res.header.Get(ErrorHeader))
			assert.Contains(t, res.body, "No service is configured for host")
			assert.Contains(t, res.body, normalizeHost(tt.host))
			assert.NotContains(t, res.body, "web:", "never another app's content")
			assert.NotContains(t, res.body, "api:", "never another app's content")
		})
	}
}

func TestEdgePages(t *testing.T) {
	web := newTestBackend(t, "web", nil)
	e, srv := newTestEdge(t, Options{},
		Route{Key: "shop/empty", Hosts: []string{"empty.shop.localhost"}},
		Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(web), Paused: true},
	)
	c := testClient(t)

	tests := []struct {
		name        string
		host        string
		accept      string
		status      int
		reason      string
		contentType string
		contains    string
	}{
		{name: "no backends", host: "empty.shop.localhost", status: 503, reason: ReasonNoHealthyInstance, contentType: "text/plain", contains: "shop/empty has no healthy instance"},
		{name: "paused", host: "web.shop.localhost", status: 503, reason: ReasonPaused, contentType: "text/plain", contains: "shop/web is paused. Its owner can start it again with: berth resume web"},
		{name: "paused page for a browser", host: "web.shop.localhost", accept: "text/html,application/xhtml+xml,*/*;q=0.8", status: 503, reason: ReasonPaused, contentType: "text/html", contains: "<h1>503 Service Unavailable</h1>"},
		{name: "unknown host for a browser", host: "nope.localhost", accept: "text/html", status: 404, reason: ReasonUnknownHost, contentType: "text/html", contains: "&#34;nope.localhost&#34;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, c, http.MethodGet, srv.URL, tt.host, "/", "", "Accept", tt.accept)
			assert.Equal(t, tt.status, res.status)
			assert.Equal(t, tt.reason, res.header.Get(ErrorHeader))
			assert.Contains(t, res.header.Get("Content-Type"), tt.contentType)
			assert.Equal(t, "no-store", res.header.Get("Cache-Control"))
			assert.Contains(t, res.body, tt.contains)
			assert.Less(t, len(res.body), 400, "pages are short")
		})
	}

	t.Run("resume", func(t *testing.T) {
		e.Update(Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(web)})
		res := do(t, c, http.MethodGet, srv.URL, "web.shop.localhost", "/", "")
		assert.Equal(t, 200, res.status)
		assert.Equal(t, "web:", res.body)
		assert.Equal(t, int64(1), web.hits.Load(), "a paused service gets no request")
	})
}

func TestPathRoutes(t *testing.T) {
	web := newTestBackend(t, "web", nil)
	api := newTestBackend(t, "api", nil)
	v2 := newTestBackend(t, "v2", nil)
	admin := newTestBackend(t, "admin", nil)
	_, srv := newTestEdge(t, Options{},
		Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(web), PathRoutes: []PathRoute{
			{Prefix: "/api", Key: "shop/api"},
			{Prefix: "/api/v2/", Key: "shop/v2"},
			{Prefix: "admin", Key: "shop/admin"},
			{Prefix: "/ghost", Key: "shop/ghost"},
		}},
		Route{Key: "shop/api", Backends: backendsOf(api)},
		Route{Key: "shop/v2", Backends: backendsOf(v2)},
		Route{Key: "shop/admin", Backends: backendsOf(admin), Paused: true},
	)
	c := testClient(t)

	tests := []struct {
		path   string
		status int
		body   string
		reason string
	}{
		{path: "/", status: 200, body: "web:"},
		{path: "/index.html", status: 200, body: "web:"},
		{path: "/apiary", status: 200, body: "web:"},
		{path: "/api", status: 200, body: "api:"},
		{path: "/api/", status: 200, body: "api:"},
		{path: "/api/users?id=1", status: 200, body: "api:"},
		{path: "/api/v2", status: 200, body: "v2:"},
		{path: "/api/v2/users", status: 200, body: "v2:"},
		{path: "/api/v20", status: 200, body: "api:"},
		{path: "/api/../index.html", status: 200, body: "web:"},
		{path: "//api/x", status: 200, body: "api:"},
		{path: "/admin/x", status: 503, reason: ReasonPaused},
		{path: "/ghost/x", status: 503, reason: ReasonNoHealthyInstance},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res := do(t, c, http.MethodGet, srv.URL, "web.shop.localhost", tt.path, "")
			require.Equal(t, tt.status, res.status, res.body)
			assert.Equal(t, tt.reason, res.header.Get(ErrorHeader))
			if tt.body != "" {
				assert.Equal(t, tt.body, res.body)
			}
		})
	}

	t.Run("no host of its own", func(t *testing.T) {
		res := do(t, c, http.MethodGet, srv.URL, "api.shop.localhost", "/api", "")
		assert.Equal(t, 404, res.status)
	})
}

func TestForwardedHeaders(t *testing.T) {
	headersOf := func(r *http.Request) map[string]string {
		return map[string]string{
			"Host":              r.Host,
			"X-Forwarded-For":   strings.Join(r.Header.Values("X-Forwarded-For"), "|"),
			"X-Forwarded-Proto": r.Header.Get("X-Forwarded-Proto"),
			"X-Forwarded-Host":  r.Header.Get("X-Forwarded-Host"),
			"Forwarded":         r.Header.Get("Forwarded"),
		}
	}
	backend := newTestBackend(t, "web", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(headersOf(r))
	}))
	route := Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(backend)}
	spoof := []string{
		"X-Forwarded-For", "6.6.6.6",
		"X-Forwarded-Proto", "https",
		"X-Forwarded-Host", "evil.example",
		"Forwarded", "for=6.6.6.6",
	}

	tests := []struct {
		name  string
		trust bool
		tls   bool
		host  string
		hdr   []string
		want  map[string]string
	}{
		{
			name: "plain",
			host: "web.shop.localhost:8080",
			want: map[string]string{"Host": "web.shop.localhost:8080", "X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "web.shop.localhost:8080"},
		},
		{
			name: "spoofed headers dropped",
			host: "web.shop.localhost",
			hdr:  spoof,
			want: map[string]string{"Host": "web.shop.localhost", "X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "web.shop.localhost"},
		},
		{
			name: "tls",
			tls:  true,
			host: "web.shop.localhost",
			hdr:  spoof,
			want: map[string]string{"Host": "web.shop.localhost", "X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "web.shop.localhost"},
		},
		{
			name:  "trusted headers kept",
			trust: true,
			host:  "web.shop.localhost",
			hdr:   spoof,
			want:  map[string]string{"Host": "web.shop.localhost", "X-Forwarded-For": "6.6.6.6, 127.0.0.1", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example", "Forwarded": "for=6.6.6.6"},
		},
		{
			name:  "trusted without headers",
			trust: true,
			host:  "web.shop.localhost",
			want:  map[string]string{"Host": "web.shop.localhost", "X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "web.shop.localhost"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := New(Options{TrustForwarded: tt.trust})
			t.Cleanup(e.CloseIdleConnections)
			e.Update(route)
			var srv *httptest.Server
			if tt.tls {
				srv = httptest.NewTLSServer(e)
			} else {
				srv = httptest.NewServer(e)
			}
			t.Cleanup(srv.Close)
			res := do(t, testClient(t), http.MethodGet, srv.URL, tt.host, "/", "", tt.hdr...)
			require.Equal(t, 200, res.status, res.body)
			var got map[string]string
			require.NoError(t, json.Unmarshal([]byte(res.body), &got))
			for k, v := range tt.want {
				assert.Equal(t, v, got[k], k)
			}
			if _, ok := tt.want["Forwarded"]; !ok {
				assert.Empty(t, got["Forwarded"])
			}
		})
	}
}

func TestRefusedBackendIsEjectedAndRequestRetried(t *testing.T) {
	tests := []struct {
		name string
		live int
		dead int
	}{
		{name: "one dead of three", live: 2, dead: 1},
		{name: "two dead, one live", live: 1, dead: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var backends []Backend
			var live []*testBackend
			for i := range tt.dead {
				backends = append(backends, Backend{ID: "dead" + string(rune('a'+i)), Addr: deadAddr(t)})
			}
			for i := range tt.live {
				tb := newTestBackend(t, "live"+string(rune('a'+i)), nil)
				live = append(live, tb)
				backends = append(backends, tb.Backend)
			}
			e, srv := newTestEdge(t, Options{}, Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backends})
			c := testClient(t)

			big := strings.Repeat("x", 1<<20)
			for i := range 40 {
				method, body := http.MethodGet, ""
				if i%2 == 1 {
					method, body = http.MethodPost, "payload-"+string(rune('a'+i%26))
				}
				if i == 3 {
					body = big
				}
				res := do(t, c, method, srv.URL, "web.shop.localhost", "/", body)
				require.Equal(t, 200, res.status, "request %d: %s", i, res.body)
				require.True(t, strings.HasSuffix(res.body, ":"+body), "request %d got its body back", i)
			}
			var hits int64
			for _, tb := range live {
				hits += tb.hits.Load()
			}
			assert.Equal(t, int64(40), hits)

			now := clock()
			for _, b := range backends[:tt.dead] {
				st := e.states[b.ID]
				assert.Greater(t, st.ejectedUntil.Load(), now, "%s is ejected", b.ID)
				assert.Zero(t, e.InFlight(b.ID))
			}

			// An Update that lists an ejected backend re-admits it.
			e.Update(Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backends})
			assert.Zero(t, e.states[backends[0].ID].ejectedUntil.Load())
			res := do(t, c, http.MethodPost, srv.URL, "web.shop.localhost", "/", "after")
			assert.Equal(t, 200, res.status)
		})
	}
}

func TestAllBackendsDead(t *testing.T) {
	_, srv := newTestEdge(t, Options{}, Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: []Backend{
		{ID: "a", Addr: deadAddr(t)},
		{ID: "b", Addr: deadAddr(t)},
	}})
	c := testClient(t)
	// The second time both are ejected; they are still tried, not skipped.
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		res := do(t, c, method, srv.URL, "web.shop.localhost", "/", "body")
		assert.Equal(t, http.StatusBadGateway, res.status)
		assert.Equal(t, ReasonUnreachable, res.header.Get(ErrorHeader))
		assert.Contains(t, res.body, "shop/web could not be reached")
	}
}

func TestUpstreamErrorAfterSend(t *testing.T) {
	// The instance takes the request and drops the connection: not retried.
	var calls atomic.Int64
	crash := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	})
	a := newTestBackend(t, "a", crash)
	b := newTestBackend(t, "b", crash)
	_, srv := newTestEdge(t, Options{}, Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(a, b)})
	res := do(t, testClient(t), http.MethodPost, srv.URL, "web.shop.localhost", "/", "once")
	assert.Equal(t, http.StatusBadGateway, res.status)
	assert.Equal(t, ReasonUpstreamError, res.header.Get(ErrorHeader))
	assert.Equal(t, int64(1), calls.Load(), "a request that reached an instance is not sent again")
}

func TestTimeout(t *testing.T) {
	slow := newTestBackend(t, "slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	fast := newTestBackend(t, "fast", nil)
	_, srv := newTestEdge(t, Options{},
		Route{Key: "shop/slow", Hosts: []string{"slow.shop.localhost"}, Backends: backendsOf(slow), Timeout: 100 * time.Millisecond},
		Route{Key: "shop/fast", Hosts: []string{"fast.shop.localhost"}, Backends: backendsOf(fast), Timeout: 100 * time.Millisecond},
	)
	c := testClient(t)

	tests := []struct {
		name   string
		host   string
		status int
		reason string
	}{
		{name: "exceeded", host: "slow.shop.localhost", status: http.StatusGatewayTimeout, reason: ReasonTimeout},
		{name: "within", host: "fast.shop.localhost", status: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			res := do(t, c, http.MethodGet, srv.URL, tt.host, "/", "")
			assert.Equal(t, tt.status, res.status)
			assert.Equal(t, tt.reason, res.header.Get(ErrorHeader))
			assert.Less(t, time.Since(start), 2*time.Second)
			if tt.reason != "" {
				assert.Contains(t, res.body, "did not answer within 100ms")
			}
		})
	}
}

func TestServerSentEventsStream(t *testing.T) {
	release := make(chan struct{})
	var released atomic.Bool
	sse := newTestBackend(t, "sse", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		_, _ = w.Write([]byte("data: one\n\n"))
		_ = rc.Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		released.Store(true)
		_, _ = w.Write([]byte("data: two\n\n"))
		_ = rc.Flush()
	}))
	_, srv := newTestEdge(t, Options{}, Route{Key: "shop/sse", Hosts: []string{"sse.shop.localhost"}, Backends: backendsOf(sse), Timeout: time.Minute})

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
	require.NoError(t, err)
	req.Host = "sse.shop.localhost"
	res, err := testClient(t).Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, 200, res.StatusCode)

	rd := bufio.NewReader(res.Body)
	readEvent := func() string {
		var ev strings.Builder
		for {
			line, err := rd.ReadString('\n')
			require.NoError(t, err, "stream ended or stalled")
			if line == "\n" {
				return ev.String()
			}
			ev.WriteString(line)
		}
	}
	assert.Equal(t, "data: one\n", readEvent())
	assert.False(t, released.Load(), "the first event arrived while the instance still held the stream")
	close(release)
	assert.Equal(t, "data: two\n", readEvent())
}

func TestWebSocket(t *testing.T) {
	ws := newTestBackend(t, "ws", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		for {
			typ, msg, err := conn.Read(r.Context())
			if err != nil {
				return
			}
			if err := conn.Write(r.Context(), typ, append([]byte("echo "), msg...)); err != nil {
				return
			}
		}
	}))
	// The route timeout limits the handshake, never the open connection.
	e, srv := newTestEdge(t, Options{}, Route{Key: "shop/ws", Hosts: []string{"ws.shop.localhost"}, Backends: backendsOf(ws), Timeout: 150 * time.Millisecond})

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/socket", &websocket.DialOptions{Host: "ws.shop.localhost"})
	require.NoError(t, err)
	defer conn.CloseNow()
	assert.Equal(t, http.StatusSwitchingProtocols, res.StatusCode)
	assert.Equal(t, 1, e.InFlight("ws"))

	for i, msg := range []string{"hello", "after the timeout"} {
		if i == 1 {
			time.Sleep(300 * time.Millisecond)
		}
		require.NoError(t, conn.Write(ctx, websocket.MessageText, []byte(msg)))
		_, got, err := conn.Read(ctx)
		require.NoError(t, err)
		assert.Equal(t, "echo "+msg, string(got))
	}
	require.NoError(t, conn.Close(websocket.StatusNormalClosure, ""))
	eventually(t, 2*time.Second, func() bool { return e.InFlight("ws") == 0 }, "websocket released its backend")
}

func TestWebSocketHandshakeTimeout(t *testing.T) {
	stuck := newTestBackend(t, "stuck", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	_, srv := newTestEdge(t, Options{}, Route{Key: "shop/ws", Hosts: []string{"ws.shop.localhost"}, Backends: backendsOf(stuck), Timeout: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/socket", &websocket.DialOptions{Host: "ws.shop.localhost"})
	require.Error(t, err)
	require.NotNil(t, res)
	assert.Equal(t, http.StatusGatewayTimeout, res.StatusCode)
}

func TestIdempotentRequestRetriedWhenConnectionClosedAtOnce(t *testing.T) {
	// The engine's port proxy accepts connections for a dead container and
	// closes them before any response: a GET goes to another instance.
	closer, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = closer.Close() })
	go func() {
		for {
			c, err := closer.Accept()
			if err != nil {
				return
			}
			_, _ = c.Read(make([]byte, 4096))
			_ = c.Close()
		}
	}()
	good := newTestBackend(t, "good", nil)
	dead := Backend{ID: "dead", Addr: closer.Addr().String()}
	_, srv := newTestEdge(t, Options{}, Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: []Backend{dead, good.Backend}})
	c := testClient(t)
	for range 20 {
		res := do(t, c, http.MethodGet, srv.URL, "web.shop.localhost", "/", "")
		require.Equal(t, http.StatusOK, res.status, res.body)
	}
}
