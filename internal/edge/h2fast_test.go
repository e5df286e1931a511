package edge

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/edge/cache"
)

// Tests of the fast path for HTTP/2 (h1.Server.ServeStream): the GET and
// HEAD streams it takes are answered as the edge answered them before it,
// through net/http's HTTP/2 server, Edge.ServeHTTP and the direct path or
// ReverseProxy (Server.NetHTTP2), side by side on one Edge.

// h2Pair serves e with the edge's own HTTP/2 server and its fast path,
// and with net/http's HTTP/2 server and the Edge's ServeHTTP alone.
func h2Pair(t testing.TB, e *Edge) (fast, ref *testServer) {
	t.Helper()
	fast = startTLSServer(t, &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}})
	ref = startTLSServer(t, &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}, NetHTTP2: true})
	return fast, ref
}

// sameAnswer asserts that two HTTP/2 answers are the same but for Date.
func sameAnswer(t testing.TB, want, got answerOf, what string) {
	t.Helper()
	require.NoError(t, want.err, what)
	require.NoError(t, got.err, what)
	assert.Equal(t, 2, got.proto, what)
	assert.Equal(t, want.status, got.status, what)
	assert.Equal(t, want.body, got.body, what)
	assert.Equal(t, want.hints, got.hints, what)
	assert.Equal(t, want.trailer, got.trailer, what)
	wh, gh := want.header.Clone(), got.header.Clone()
	delete(wh, "Date")
	delete(gh, "Date")
	assert.Equal(t, wh, gh, what)
}

func TestHTTP2FastPathRequestHeaders(t *testing.T) {
	report := newTestBackend(t, "report", reportHandler(http.StatusOK))
	const host = "report.shop.localhost"
	for _, trust := range []bool{false, true} {
		e := New(Options{TrustForwarded: trust})
		t.Cleanup(e.CloseIdleConnections)
		e.Update(Route{Key: "shop/report", Hosts: []string{host}, Backends: backendsOf(report)})
		fast, ref := h2Pair(t, e)
		c := h2Client(t)
		hdr := []string{
			"X-Forwarded-For", "6.6.6.6", "X-Forwarded-For", "7.7.7.7", "X-Forwarded-Proto", "http",
			"X-Forwarded-Host", "evil.example", "Forwarded", "for=x", "X-Real-Ip", "6.6.6.6",
			"X_Forwarded_For", "alias", "X_Real_IP", "alias", "Cookie", "a=1; b=2", "Cookie", "c=3",
			"X-Multi", "1", "X-Multi", "2", "User-Agent", "test", "Accept", "text/html",
			"Proxy-Authorization", "Basic eA==", "If-None-Match", `"v"`,
		}
		n := 0
		for _, path := range []string{"/p/a%2Fb?q=1&r=2", "/", "/x%41y/~z?", "//double", "/q?a=%20&b"} {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				what := method + " " + path
				if trust {
					what += " trusted"
				}
				got := fetch(t, c, method, fast.URL+path, host, hdr...)
				want := fetch(t, c, method, ref.URL+path, host, hdr...)
				n++
				sameAnswer(t, want, got, what)
				if method == http.MethodHead {
					assert.Empty(t, got.body, what)
					continue
				}
				g, w := decodeSeen(t, got.body), decodeSeen(t, want.body)
				assert.Equal(t, w, g, what)
				assert.Equal(t, []string{"a=1; b=2; c=3"}, g.Header["Cookie"], "cookie fields joined: %s", what)
				assert.Equal(t, w.Header["X-Forwarded-For"], g.Header["X-Forwarded-For"], what)
				if trust {
					assert.Equal(t, []string{"6.6.6.6, 7.7.7.7, 127.0.0.1"}, g.Header["X-Forwarded-For"], what)
					assert.Equal(t, []string{"alias"}, g.Header["X_forwarded_for"], what)
				} else {
					assert.Equal(t, []string{"127.0.0.1"}, g.Header["X-Forwarded-For"], what)
					assert.Equal(t, []string{"127.0.0.1"}, g.Header["X-Real-Ip"], what)
					assert.Equal(t, []string{"https"}, g.Header["X-Forwarded-Proto"], what)
					assert.Empty(t, g.Header["X_forwarded_for"], what)
					assert.Empty(t, g.Header["Forwarded"], what)
				}
				assert.Empty(t, g.Header["Proxy-Authorization"], what)
			}
		}
		assert.Equal(t, int64(n), fast.FastStreams(), "the fast path took every request")
		assert.Zero(t, ref.FastStreams())
		assert.Zero(t, fast.FastRequests(), "no HTTP/1.1 request")

		// What the HTTP/1.1 parser leaves to net/http, the fast path
		// leaves to the Handler, which answers it the same.
		for _, tt := range []struct{ path, why string }{
			{"/semi?a=1;b=2", "a query net/url cuts"},
			{"/bad?%zz=1", "a malformed escape"},
			{"/te", "Te: trailers"},
			{"/expect", "Expect"},
		} {
			h := hdr
			switch tt.path {
			case "/te":
				h = append(h, "Te", "trailers")
			case "/expect":
				h = append(h, "Expect", "x-other")
			}
			before := fast.FastStreams()
			got := fetch(t, c, http.MethodGet, fast.URL+tt.path, host, h...)
			want := fetch(t, c, http.MethodGet, ref.URL+tt.path, host, h...)
			sameAnswer(t, want, got, tt.why)
			if want.err == nil && got.err == nil && want.status == http.StatusOK {
				assert.Equal(t, decodeSeen(t, want.body), decodeSeen(t, got.body), tt.why)
			}
			assert.Equal(t, before, fast.FastStreams(), "left to the Handler: %s", tt.why)
		}
	}
}

func TestHTTP2FastPathAnswers(t *testing.T) {
	answers := map[string]string{
		"/hop":      "HTTP/1.1 200 OK\r\nConnection: X-Private\r\nX-Private: secret\r\nKeep-Alive: timeout=5\r\nX-Kept: yes\r\nContent-Length: 2\r\n\r\nok",
		"/close":    "HTTP/1.1 200 OK\r\nConnection: close\r\nX-Kept: yes\r\nContent-Length: 2\r\n\r\nok",
		"/trailers": "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n",
		"/late":     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Late: 1\r\n\r\n",
		"/chunked":  "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
		"/hints":    "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"/304":      "HTTP/1.1 304 Not Modified\r\nETag: \"v\"\r\nContent-Type: text/plain\r\n\r\n",
		"/204":      "HTTP/1.1 204 No Content\r\nX-Kept: yes\r\n\r\n",
		"/multi":    "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n",
		"/pragma":   "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 2\r\n\r\nok",
		"/sniff":    "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n<html></html>",
		"/events":   "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 11\r\n\r\ndata: one\n\n",
		"/http10":   "HTTP/1.0 200 OK\r\nX-Old: yes\r\n\r\nuntil the close",
		"/unusual":  "HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
		"/404":      "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nnone",
	}
	closing := map[string]bool{"/http10": true, "/close": true}
	raw := newRawBackend(t, "raw", func(r *http.Request) (string, bool) {
		if a, ok := answers[r.URL.Path]; ok {
			return a, closing[r.URL.Path]
		}
		return "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", false
	})
	const host = "raw.shop.localhost"
	e := New(Options{})
	t.Cleanup(e.CloseIdleConnections)
	e.Update(Route{Key: "shop/raw", Hosts: []string{host}, Backends: []Backend{raw}})
	fast, ref := h2Pair(t, e)
	c := h2Client(t)
	n := int64(0)
	for path := range answers {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			got := fetch(t, c, method, fast.URL+path, host)
			want := fetch(t, c, method, ref.URL+path, host)
			sameAnswer(t, want, got, method+" "+path)
			n++
		}
	}
	assert.Equal(t, n, fast.FastStreams())
	assert.Empty(t, fetch(t, c, http.MethodGet, fast.URL+"/hop", host).header.Values("X-Private"))
}

func TestHTTP2FastPathFailures(t *testing.T) {
	slow := newTestBackend(t, "slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	cut := newRawBackend(t, "cut", func(*http.Request) (string, bool) {
		return "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + strings.Repeat("x", 10), true
	})
	good := newTestBackend(t, "good", nil)
	e := New(Options{})
	t.Cleanup(e.CloseIdleConnections)
	e.Update(Route{Key: "shop/dead", Hosts: []string{"dead.localhost"}, Backends: []Backend{{ID: "d", Addr: deadAddr(t)}}})
	e.Update(Route{Key: "shop/slow", Hosts: []string{"slow.localhost"}, Backends: backendsOf(slow), Timeout: 100 * time.Millisecond})
	e.Update(Route{Key: "shop/cut", Hosts: []string{"cut.localhost"}, Backends: []Backend{cut}})
	e.Update(Route{Key: "shop/retry", Hosts: []string{"retry.localhost"}, Backends: []Backend{{ID: "gone", Addr: deadAddr(t)}, good.Backend}})
	fast, ref := h2Pair(t, e)
	c := h2Client(t)
	for _, host := range []string{"dead.localhost", "slow.localhost"} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			got := fetch(t, c, method, fast.URL+"/", host)
			want := fetch(t, c, method, ref.URL+"/", host)
			require.NoError(t, got.err)
			assert.NotEmpty(t, got.header.Get(ErrorHeader), host)
			sameAnswer(t, want, got, method+" "+host)
		}
	}
	assert.Equal(t, int64(4), fast.FastStreams())

	got := fetch(t, c, http.MethodGet, fast.URL+"/", "cut.localhost")
	assert.Error(t, got.err, "the client must not take a cut body for a whole one")
	want := fetch(t, c, http.MethodGet, ref.URL+"/", "cut.localhost")
	assert.Error(t, want.err)
	assert.Equal(t, int64(5), fast.FastStreams())

	for range 4 {
		got := fetch(t, c, http.MethodGet, fast.URL+"/", "retry.localhost")
		require.NoError(t, got.err)
		assert.Equal(t, http.StatusOK, got.status, "a refused connection goes to the other instance")
		assert.Equal(t, "good", got.header.Get("X-Backend"))
	}
	assert.Equal(t, int64(9), fast.FastStreams())
	assert.Zero(t, e.InFlight("good"))
}

// A client that resets its stream while the answer is awaited cancels the
// request at the instance, as on the net/http path.
func TestHTTP2FastPathClientReset(t *testing.T) {
	cancelled := make(chan struct{}, 1)
	started := make(chan struct{}, 1)
	slow := newTestBackend(t, "slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-time.After(5 * time.Second):
		}
	}))
	e := New(Options{})
	t.Cleanup(e.CloseIdleConnections)
	e.Update(Route{Key: "shop/slow", Hosts: []string{"slow.localhost"}, Backends: backendsOf(slow)})
	fast, _ := h2Pair(t, e)
	c := h2Client(t)
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fast.URL+"/", nil)
	require.NoError(t, err)
	req.Host = "slow.localhost"
	done := make(chan error, 1)
	go func() {
		res, err := c.Do(req)
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	<-started
	cancel()
	require.Error(t, <-done)
	select {
	case <-cancelled:
	case <-time.After(2 * time.Second):
		t.Fatal("the instance's request was not cancelled")
	}
	assert.Equal(t, int64(1), fast.FastStreams())
	eventually(t, 2*time.Second, func() bool { return e.InFlight("slow") == 0 }, "the request released")
}

func TestHTTP2FastPathEntrypoint(t *testing.T) {
	ext, seen := plainOrigin(t)
	ctl := Controls{AddHeaders: map[string]string{"X-Edge": "berth", "X-Origin": "replaced"}, RemoveHeaders: []string{"X-Internal"}, Timeout: time.Minute}
	logBuf := &lockedBuffer{}
	e := New(Options{AccessLog: logBuf})
	t.Cleanup(e.CloseIdleConnections)
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "www", Hosts: []string{"www.example.com"}, Origin: urlOrigin(t, ext.URL+"/base/"), Controls: ctl}))
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "gone", Hosts: []string{"gone.example.com"}, Origin: urlOrigin(t, "http://"+deadAddr(t)), Controls: ctl}))
	fast, ref := h2Pair(t, e)
	c := h2Client(t)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		got := fetch(t, c, method, fast.URL+"/a%2Fb/c?q=1", "www.example.com:8443", "X-Forwarded-Host", "evil")
		gotSaw := <-seen
		want := fetch(t, c, method, ref.URL+"/a%2Fb/c?q=1", "www.example.com:8443", "X-Forwarded-Host", "evil")
		wantSaw := <-seen
		sameAnswer(t, want, got, method)
		assert.Equal(t, wantSaw, gotSaw, "what the origin saw: %s", method)
		assert.Equal(t, "/base/a%2Fb/c?q=1", gotSaw.uri)
		assert.Equal(t, "www.example.com:8443", gotSaw.forwardedHost)
		assert.Equal(t, "berth", got.header.Get("X-Edge"))
		assert.Equal(t, []string{"replaced"}, got.header.Values("X-Origin"))
		assert.Empty(t, got.header.Values("X-Internal"))

		got = fetch(t, c, method, fast.URL+"/", "gone.example.com")
		want = fetch(t, c, method, ref.URL+"/", "gone.example.com")
		sameAnswer(t, want, got, method+" gone")
		assert.Equal(t, http.StatusBadGateway, got.status)
		assert.Equal(t, "berth", got.header.Get("X-Edge"), "the edge's own page too")
	}
	assert.Equal(t, int64(4), fast.FastStreams())
	eventually(t, 2*time.Second, func() bool { return strings.Count(logBuf.String(), "\n") >= 8 }, "eight access log lines")
	for _, l := range decodeLines(t, logBuf.String()) {
		assert.Contains(t, []any{"www", "gone"}, l["entrypoint"])
	}
}

func TestHTTP2FastPathCacheHit(t *testing.T) {
	app := cachedApp(t)
	var clock struct {
		sync.Mutex
		now time.Time
	}
	clock.now = time.Now()
	c, err := cache.New(cache.Options{Now: func() time.Time { clock.Lock(); defer clock.Unlock(); return clock.now }, DefaultTTL: time.Minute})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	e := New(Options{})
	t.Cleanup(e.CloseIdleConnections)
	e.Update(Route{Key: "shop/app", Hosts: []string{"app.shop.localhost"}, Backends: backendsOf(app)})
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "www", Hosts: []string{"www.example.com"}, Origin: serviceOrigin("shop/app"), Cache: c,
		HSTS: time.Hour, Controls: Controls{AddHeaders: map[string]string{"X-Edge": "berth"}}}))
	fast, ref := h2Pair(t, e)
	cl := h2Client(t)
	// A miss, through the Handler, fills the cache.
	miss := fetch(t, cl, http.MethodGet, fast.URL+"/page", "www.example.com")
	require.NoError(t, miss.err)
	assert.Zero(t, fast.FastStreams(), "a miss is the Handler's")
	for _, tt := range []struct {
		method string
		hdr    []string
	}{
		{http.MethodGet, nil},
		{http.MethodHead, nil},
		{http.MethodGet, []string{"If-None-Match", `"v1"`}},
		{http.MethodGet, []string{"Cookie", "a=1", "Cookie", "b=2"}},
	} {
		got := fetch(t, cl, tt.method, fast.URL+"/page", "www.example.com", tt.hdr...)
		want := fetch(t, cl, tt.method, ref.URL+"/page", "www.example.com", tt.hdr...)
		delete(got.header, "Age")
		delete(want.header, "Age")
		sameAnswer(t, want, got, tt.method+" "+strings.Join(tt.hdr, " "))
		assert.Equal(t, "berth", got.header.Get("X-Edge"))
		assert.NotEmpty(t, got.header.Get("Strict-Transport-Security"))
	}
	assert.Equal(t, int64(4), fast.FastStreams(), "the hits are the fast path's")
	assert.Equal(t, 1, int(app.hits.Load()), "one request reached the origin")
}
