package edge

import (
	"bufio"
	"compress/gzip"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/edge/cache"
)

// Tests of cache hits on the fast path: the same requests, on one edge and
// one cache, answered by the fast loop and by net/http alone, must get the
// same answers, byte for byte but for Date and Age; and only fresh hits
// from memory are taken by the fast loop.

// cachedApp is an origin whose pages say how they may be cached.
func cachedApp(t testing.TB) *testBackend {
	t.Helper()
	lastMod := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Format(http.TimeFormat)
	return newTestBackend(t, "app", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		switch r.URL.Path {
		case "/page":
			h.Set("Cache-Control", "public, max-age=600")
			h.Set("ETag", `"v1"`)
			h.Set("Last-Modified", lastMod)
			h.Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "the page")
		case "/vary":
			h.Set("Cache-Control", "max-age=600")
			h.Set("Vary", "Accept-Language")
			h.Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "lang="+r.Header.Get("Accept-Language"))
		case "/sniff": // no Content-Type: net/http sniffs one
			h.Set("Cache-Control", "max-age=600")
			h["Content-Type"] = nil
			_, _ = io.WriteString(w, "<html><body>sniffed</body></html>")
		case "/chunked": // no length from the origin
			h.Set("Cache-Control", "max-age=600")
			h.Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "first ")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, strings.Repeat("more ", 100))
		case "/missing":
			h.Set("Cache-Control", "max-age=600")
			http.Error(w, "not here", http.StatusNotFound)
		case "/short":
			h.Set("Cache-Control", "max-age=1, stale-while-revalidate=60")
			_, _ = io.WriteString(w, "short-lived")
		case "/zip":
			h.Set("Cache-Control", "max-age=600")
			h.Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, strings.Repeat("<p>compress me</p>", 300))
		default:
			h.Set("Cache-Control", "no-store")
			_, _ = io.WriteString(w, "uncached "+r.URL.Path)
		}
	}))
}

// rawAnswer sends one raw request on a new connection and returns the
// answer as it came, and the response read from it.
func rawAnswer(t testing.TB, dial func() (net.Conn, error), raw, method string) (string, *http.Response, string) {
	t.Helper()
	c, err := dial()
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = io.WriteString(c, raw)
	require.NoError(t, err)
	var rec strings.Builder
	br := bufio.NewReader(io.TeeReader(c, &rec))
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	res.Body.Close()
	return rec.String(), res, string(body)
}

// comparable drops what differs between two answers made at other
// moments: Date and Age.
func comparableHeader(h http.Header) http.Header {
	h = h.Clone()
	delete(h, "Date")
	delete(h, "Age")
	return h
}

func TestFastPathCacheHitsAsNetHTTP(t *testing.T) {
	app := cachedApp(t)
	var clock struct {
		sync.Mutex
		now time.Time
	}
	clock.now = time.Now()
	now := func() time.Time { clock.Lock(); defer clock.Unlock(); return clock.now }
	c, err := cache.New(cache.Options{Now: now, DefaultTTL: time.Minute})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	cz, err := cache.New(cache.Options{Now: now})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cz.Close() })

	e, srv := newTestEdge(t, Options{HTTPSPort: "8443"}, Route{Key: "shop/app", Hosts: []string{"app.shop.localhost"}, Backends: backendsOf(app)})
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "www", Hosts: []string{"www.example.com"}, Origin: serviceOrigin("shop/app"), Cache: c,
		HSTS: time.Hour, ErrorPages: map[int][]byte{404: []byte("<h1>custom 404</h1>")},
		Controls: Controls{AddHeaders: map[string]string{"X-Edge": "berth"}, RemoveHeaders: []string{"X-Powered-By"}}}))
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "zip", Hosts: []string{"zip.example.com"}, Origin: serviceOrigin("shop/app"), Cache: cz, Compress: true}))
	tlsSrv := startTLSServer(t, &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}})
	old := httptest.NewServer(e)
	t.Cleanup(old.Close)
	oldTLS := oldTLSServer(t, e)

	tcp := func(addr string) func() (net.Conn, error) {
		return func() (net.Conn, error) { return net.Dial("tcp", addr) }
	}
	tlsDial := func(addr string) func() (net.Conn, error) {
		return func() (net.Conn, error) {
			return tlsDialH1(addr)
		}
	}
	oldAddr := strings.TrimPrefix(old.URL, "http://")
	oldTLSAddr := strings.TrimPrefix(oldTLS.URL, "https://")

	// Fill the cache through net/http.
	for _, p := range []string{"/page", "/sniff", "/chunked", "/missing", "/short"} {
		rawAnswer(t, tcp(oldAddr), rawGet("www.example.com", p), http.MethodGet)
	}
	for _, lang := range []string{"en", "fr"} {
		rawAnswer(t, tcp(oldAddr), rawGet("www.example.com", "/vary", "Accept-Language: "+lang), http.MethodGet)
	}
	rawAnswer(t, tcp(oldAddr), rawGet("zip.example.com", "/zip", "Accept-Encoding: gzip"), http.MethodGet)
	rawAnswer(t, tcp(oldAddr), rawGet("zip.example.com", "/zip"), http.MethodGet)
	clock.Lock()
	clock.now = clock.now.Add(5 * time.Second) // /short is stale now
	clock.Unlock()

	head := func(host, path string, lines ...string) string {
		return strings.Replace(rawGet(host, path, lines...), "GET ", "HEAD ", 1)
	}
	tests := []struct {
		name   string
		raw    string
		method string
		fast   bool // the fast loop answers it itself
		status int
	}{
		{"fresh hit", rawGet("www.example.com", "/page"), http.MethodGet, true, 200},
		{"host with port and case", rawGet("WWW.example.com:80", "/page"), http.MethodGet, true, 200},
		{"HEAD from the stored GET", head("www.example.com", "/page"), http.MethodHead, true, 200},
		{"If-None-Match matches", rawGet("www.example.com", "/page", `If-None-Match: W/"v1"`), http.MethodGet, true, 304},
		{"If-None-Match other", rawGet("www.example.com", "/page", `If-None-Match: "v0"`), http.MethodGet, true, 200},
		{"If-Modified-Since", rawGet("www.example.com", "/page", "If-Modified-Since: Sat, 03 Jan 2026 00:00:00 GMT"), http.MethodGet, true, 304},
		{"client max-age within", rawGet("www.example.com", "/page", "Cache-Control: max-age=300"), http.MethodGet, true, 200},
		{"Connection: close", rawGet("www.example.com", "/page", "Connection: close"), http.MethodGet, true, 200},
		{"Vary en", rawGet("www.example.com", "/vary", "Accept-Language: en"), http.MethodGet, true, 200},
		{"Vary fr", rawGet("www.example.com", "/vary", "Accept-Language: fr"), http.MethodGet, true, 200},
		{"sniffed type", rawGet("www.example.com", "/sniff"), http.MethodGet, true, 200},
		{"stored without length", rawGet("www.example.com", "/chunked"), http.MethodGet, true, 200},
		{"custom error page", rawGet("www.example.com", "/missing"), http.MethodGet, true, 404},
		{"stale with max-stale", rawGet("www.example.com", "/short", "Cache-Control: max-stale=60"), http.MethodGet, true, 200},
		{"compressed variant", rawGet("zip.example.com", "/zip", "Accept-Encoding: gzip"), http.MethodGet, true, 200},
		{"identity variant", rawGet("zip.example.com", "/zip"), http.MethodGet, true, 200},
		// Left to net/http, which answers them the same on both.
		{"client no-cache", rawGet("www.example.com", "/page", "Cache-Control: no-cache"), http.MethodGet, false, 200},
		{"Range", rawGet("www.example.com", "/page", "Range: bytes=0-2"), http.MethodGet, false, 206},
		{"If-Match", rawGet("www.example.com", "/page", `If-Match: "v1"`), http.MethodGet, false, 200},
		{"unkeyed cookie on a public page", rawGet("www.example.com", "/page", "Cookie: session=abc"), http.MethodGet, true, 200},
		{"unkeyed cookie on a private default", rawGet("www.example.com", "/vary", "Cookie: session=abc", "Accept-Language: en"), http.MethodGet, false, 200},
		{"miss", rawGet("www.example.com", "/other"), http.MethodGet, false, 200},
	}
	for _, over := range []struct {
		name      string
		srv       *testServer
		dial, ref func() (net.Conn, error)
	}{
		{"plain", srv, tcp(srv.Addr), tcp(oldAddr)},
		{"HTTPS", tlsSrv, tlsDial(tlsSrv.Addr), tlsDial(oldTLSAddr)},
	} {
		for _, tt := range tests {
			t.Run(over.name+"/"+tt.name, func(t *testing.T) {
				before := over.srv.FastRequests()
				_, got, gotBody := rawAnswer(t, over.dial, tt.raw, tt.method)
				after := over.srv.FastRequests()
				_, want, wantBody := rawAnswer(t, over.ref, tt.raw, tt.method)
				if tt.fast {
					assert.Equal(t, before+1, after, "answered on the fast path")
				} else {
					assert.Equal(t, before, after, "left to net/http")
				}
				require.Equal(t, tt.status, want.StatusCode)
				assert.Equal(t, want.StatusCode, got.StatusCode)
				assert.Equal(t, comparableHeader(want.Header), comparableHeader(got.Header))
				assert.Equal(t, wantBody, gotBody)
				assert.Equal(t, want.ContentLength, got.ContentLength)
				assert.Equal(t, want.Close, got.Close)
				assert.NotEmpty(t, got.Header.Get("Date"))
				if want.Header.Get("Age") != "" {
					assert.NotEmpty(t, got.Header.Get("Age"))
				}
				if over.name == "HTTPS" && strings.Contains(tt.raw, "www.example.com") {
					assert.Equal(t, "max-age=3600", got.Header.Get("Strict-Transport-Security"))
				}
			})
		}
	}

	t.Run("gzip body", func(t *testing.T) {
		_, res, body := rawAnswer(t, tcp(srv.Addr), rawGet("zip.example.com", "/zip", "Accept-Encoding: gzip"), http.MethodGet)
		require.Equal(t, "gzip", res.Header.Get("Content-Encoding"))
		zr, err := gzip.NewReader(strings.NewReader(body))
		require.NoError(t, err)
		plain, err := io.ReadAll(zr)
		require.NoError(t, err)
		assert.Equal(t, strings.Repeat("<p>compress me</p>", 300), string(plain))
	})

	t.Run("keep-alive and pipelining across hits and a miss", func(t *testing.T) {
		rc := dialRaw(t, srv.Addr)
		rc.write(rawGet("www.example.com", "/page") + rawGet("www.example.com", "/vary", "Accept-Language: en") + rawGet("www.example.com", "/other"))
		_, b1 := rc.read(http.MethodGet)
		_, b2 := rc.read(http.MethodGet)
		_, b3 := rc.read(http.MethodGet)
		assert.Equal(t, []string{"the page", "lang=en", "uncached /other"}, []string{b1, b2, b3})
	})

	t.Run("stats count the fast hits", func(t *testing.T) {
		before := c.Stats().Hits
		rawAnswer(t, tcp(srv.Addr), rawGet("www.example.com", "/page"), http.MethodGet)
		assert.Equal(t, before+1, c.Stats().Hits)
	})
}

// tlsDialH1 opens a TLS connection that offers HTTP/1.1 only.
func tlsDialH1(addr string) (net.Conn, error) {
	return tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}) //nolint:gosec // test server certificate
}
