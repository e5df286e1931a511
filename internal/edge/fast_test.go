package edge

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/edge/h1/h1test"
)

// Tests of the edge behind its fast path (fast.go and package h1): what it
// serves itself, what it hands to net/http, and that a client cannot tell
// the two apart.

const fastHost = "web.shop.localhost"

// rawConn is a client connection written and read byte by byte, to send
// exactly the heads a test needs and to see the connection's fate.
type rawConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (rc *rawConn) write(s string) {
	rc.t.Helper()
	_, err := io.WriteString(rc.c, s)
	require.NoError(rc.t, err)
}

// read reads one answer to a request with method, its body to the end.
func (rc *rawConn) read(method string) (*http.Response, string) {
	rc.t.Helper()
	res, err := http.ReadResponse(rc.br, &http.Request{Method: method})
	require.NoError(rc.t, err)
	b, err := io.ReadAll(res.Body)
	require.NoError(rc.t, err)
	_ = res.Body.Close()
	return res, string(b)
}

// expectEOF checks that the server closed the connection, with nothing
// more sent on it.
func (rc *rawConn) expectEOF() {
	rc.t.Helper()
	b, err := rc.br.ReadByte()
	require.ErrorIs(rc.t, err, io.EOF, "connection still open (read %q)", b)
}

// rawGet is a GET request head for host and path with extra header lines.
func rawGet(host, path string, lines ...string) string {
	return h1test.RawGet(host, path, lines...)
}

// newRawBackendConn runs an instance on loopback that hands each accepted
// connection to serve.
func newRawBackendConn(t testing.TB, id string, serve func(c net.Conn, br *bufio.Reader)) Backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		mu     sync.Mutex
		conns  = map[net.Conn]struct{}{}
		closed bool
	)
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		closed = true
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				_ = c.Close()
				return
			}
			conns[c] = struct{}{}
			mu.Unlock()
			go func() {
				defer c.Close()
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	return Backend{ID: id, Addr: ln.Addr().String()}
}

// newRawBackend runs an instance on loopback that reads each request and
// writes the bytes answer returns for it, as they are, closing the
// connection after them when closeAfter is true.
func newRawBackend(t testing.TB, id string, answer func(r *http.Request) (resp string, closeAfter bool)) Backend {
	t.Helper()
	return newRawBackendConn(t, id, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			resp, closeAfter := answer(req)
			if _, err := io.WriteString(c, resp); err != nil || closeAfter {
				return
			}
		}
	})
}

// seenRequest is what an instance received, as reportHandler describes it.
type seenRequest struct {
	Method string
	URI    string
	Host   string
	Header http.Header
}

// reportHandler answers with a JSON description of the request.
func reportHandler(status int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-App", "yes")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(seenRequest{Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header})
	})
}

func decodeSeen(t testing.TB, body string) seenRequest {
	t.Helper()
	var s seenRequest
	require.NoError(t, json.Unmarshal([]byte(body), &s), body)
	return s
}

func webRoute(backends ...Backend) Route {
	return Route{Key: "shop/web", Hosts: []string{fastHost}, Backends: backends}
}

func TestFastPathServesPlainGET(t *testing.T) {
	backend := newTestBackend(t, "web", reportHandler(http.StatusAccepted))
	spoof := []string{
		"X-Forwarded-For", "6.6.6.6",
		"X-Forwarded-Proto", "https",
		"X-Forwarded-Host", "evil.example",
		"Forwarded", "for=6.6.6.6",
		"X-Other", "kept",
	}
	tests := []struct {
		name  string
		trust bool
		hdr   []string
		want  map[string][]string // nil: absent
	}{
		{
			name: "spoofed forwarding headers replaced",
			hdr:  spoof,
			want: map[string][]string{
				"X-Forwarded-For":   {"127.0.0.1"},
				"X-Forwarded-Proto": {"http"},
				"X-Forwarded-Host":  {fastHost + ":8080"},
				"Forwarded":         nil,
				"X-Other":           {"kept"},
			},
		},
		{
			name: "no forwarding headers",
			want: map[string][]string{
				"X-Forwarded-For":   {"127.0.0.1"},
				"X-Forwarded-Proto": {"http"},
				"X-Forwarded-Host":  {fastHost + ":8080"},
				"Forwarded":         nil,
			},
		},
		{
			name:  "trusted forwarding headers kept",
			trust: true,
			hdr:   append([]string{"X-Forwarded-For", "1.2.3.4"}, spoof[2:]...),
			want: map[string][]string{
				"X-Forwarded-For":   {"1.2.3.4, 127.0.0.1"},
				"X-Forwarded-Proto": {"https"},
				"X-Forwarded-Host":  {"evil.example"},
				"Forwarded":         {"for=6.6.6.6"},
				"X-Other":           {"kept"},
			},
		},
		{
			name:  "trusted without headers",
			trust: true,
			want: map[string][]string{
				"X-Forwarded-For":   {"127.0.0.1"},
				"X-Forwarded-Proto": {"http"},
				"X-Forwarded-Host":  {fastHost + ":8080"},
				"Forwarded":         nil,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, srv := newTestEdge(t, Options{TrustForwarded: tt.trust}, webRoute(backend.Backend))
			old := httptest.NewServer(e) // net/http and ReverseProxy only
			t.Cleanup(old.Close)
			c := testClient(t)

			const path = "/p/a%20b/c?q=1&r=%2F"
			before := srv.FastRequests()
			res := do(t, c, http.MethodGet, srv.URL, fastHost+":8080", path, "", tt.hdr...)
			assert.Equal(t, before+1, srv.FastRequests(), "served on the fast path")
			require.Equal(t, http.StatusAccepted, res.status, res.body)
			assert.Equal(t, "yes", res.header.Get("X-App"))
			assert.Equal(t, "application/json", res.header.Get("Content-Type"))
			assert.NotEmpty(t, res.header.Get("Date"))
			assert.Empty(t, res.header.Get(ErrorHeader))

			got := decodeSeen(t, res.body)
			assert.Equal(t, http.MethodGet, got.Method)
			assert.Equal(t, path, got.URI, "the target goes to the instance as the client sent it")
			assert.Equal(t, fastHost+":8080", got.Host)
			for k, v := range tt.want {
				assert.Equal(t, v, got.Header[k], k)
			}

			// The old path sends the instance the same headers.
			ref := do(t, c, http.MethodGet, old.URL, fastHost+":8080", path, "", tt.hdr...)
			require.Equal(t, http.StatusAccepted, ref.status)
			want := decodeSeen(t, ref.body)
			assert.Equal(t, want.URI, got.URI)
			for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded", "X-Other", "User-Agent"} {
				assert.Equal(t, want.Header[k], got.Header[k], "%s as the old path sends it", k)
			}
		})
	}
}

func TestFastPathHeadRequest(t *testing.T) {
	backend := newTestBackend(t, "web", nil)
	_, srv := newTestEdge(t, Options{}, webRoute(backend.Backend))
	rc := dialRaw(t, srv.Addr)
	rc.write("HEAD /x HTTP/1.1\r\nHost: " + fastHost + "\r\n\r\n")
	res, body := rc.read(http.MethodHead)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "web", res.Header.Get("X-Backend"))
	assert.Equal(t, int64(len("web:")), res.ContentLength, "the length of the GET answer")
	assert.Empty(t, body)
	// Nothing of a body follows: the next answer is read in step.
	rc.write(rawGet(fastHost, "/y"))
	res, body = rc.read(http.MethodGet)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "web:", body)
	assert.Equal(t, int64(2), srv.FastRequests())
}

func TestFastPathDropsHopByHopHeaders(t *testing.T) {
	t.Run("request", func(t *testing.T) {
		backend := newTestBackend(t, "web", reportHandler(http.StatusOK))
		_, srv := newTestEdge(t, Options{}, webRoute(backend.Backend))
		rc := dialRaw(t, srv.Addr)
		rc.write(rawGet(fastHost, "/",
			"Connection: keep-alive",
			"Keep-Alive: timeout=5",
			"Proxy-Authorization: Basic c2VjcmV0",
			"Proxy-Connection: keep-alive",
			"X-Keep: 1",
		))
		res, body := rc.read(http.MethodGet)
		require.Equal(t, http.StatusOK, res.StatusCode, body)
		assert.Equal(t, int64(1), srv.FastRequests())
		got := decodeSeen(t, body)
		for _, k := range []string{"Connection", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection"} {
			assert.Nil(t, got.Header[k], "%s reached the instance", k)
		}
		assert.Equal(t, []string{"1"}, got.Header["X-Keep"])
	})

	answers := map[string]string{
		// A head the fast parser copies itself.
		"/fast": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n" +
			"Proxy-Connection: keep-alive\r\nProxy-Authenticate: Basic\r\nUpgrade: h2c\r\nX-Keep: 1\r\n\r\nok",
		// Connection names a header: net/http reads the head.
		"/named": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Secret, keep-alive\r\nX-Secret: s\r\n" +
			"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nX-Keep: 1\r\n\r\nok",
	}
	backend := newRawBackend(t, "web", func(r *http.Request) (string, bool) { return answers[r.URL.Path], false })
	_, srv := newTestEdge(t, Options{}, webRoute(backend))
	for _, path := range []string{"/fast", "/named"} {
		t.Run("response "+path, func(t *testing.T) {
			rc := dialRaw(t, srv.Addr)
			before := srv.FastRequests()
			rc.write(rawGet(fastHost, path))
			res, body := rc.read(http.MethodGet)
			require.Equal(t, http.StatusOK, res.StatusCode)
			assert.Equal(t, before+1, srv.FastRequests())
			assert.Equal(t, "ok", body)
			assert.Equal(t, "1", res.Header.Get("X-Keep"))
			for _, k := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Upgrade", "X-Secret"} {
				assert.Empty(t, res.Header.Values(k), "%s reached the client", k)
			}
		})
	}
}

func TestFastPathHandsOverMidConnection(t *testing.T) {
	backend := newTestBackend(t, "web", nil) // answers "web:<body>"
	_, srv := newTestEdge(t, Options{}, webRoute(backend.Backend))
	rc := dialRaw(t, srv.Addr)

	rc.write(rawGet(fastHost, "/one"))
	res, body := rc.read(http.MethodGet)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "web:", body)
	assert.Equal(t, int64(1), srv.FastRequests())

	rc.write("POST /two HTTP/1.1\r\nHost: " + fastHost + "\r\nContent-Length: 5\r\n\r\nhello")
	res, body = rc.read(http.MethodPost)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "web:hello", body)

	rc.write(rawGet(fastHost, "/three"))
	res, body = rc.read(http.MethodGet)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "web:", body)
	assert.Equal(t, int64(1), srv.FastRequests(), "the connection stays with net/http")
	assert.Equal(t, int64(3), backend.hits.Load())
}

func TestFastPathHandsOverWhatItDoesNotServe(t *testing.T) {
	backend := newTestBackend(t, "web", nil)
	e := New(Options{})
	t.Cleanup(e.CloseIdleConnections)
	e.Update(webRoute(backend.Backend))
	e.Update(Route{Key: "shop/sticky", Hosts: []string{"sticky.shop.localhost"}, Backends: backendsOf(backend), Sticky: "berth_s"})
	e.Update(Route{Key: "shop/paused", Hosts: []string{"paused.shop.localhost"}, Backends: backendsOf(backend), Paused: true})
	wrap := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/.well-known/") {
			_, _ = io.WriteString(w, "diverted")
			return
		}
		e.ServeHTTP(w, r)
	})
	srv := startServer(t, &Server{
		Edge:   e,
		HTTP:   &http.Server{Handler: wrap, ReadHeaderTimeout: 10 * time.Second},
		Divert: func(host, path string) bool { return strings.HasPrefix(path, "/.well-known/") },
	})
	c := testClient(t)

	res := do(t, c, http.MethodGet, srv.URL, fastHost, "/.well-known/acme-challenge/x", "")
	assert.Equal(t, "diverted", res.body)
	res = do(t, c, http.MethodGet, srv.URL, "sticky.shop.localhost", "/", "")
	assert.Equal(t, "web:", res.body)
	assert.Contains(t, res.header.Get("Set-Cookie"), "berth_s=", "the sticky cookie is set")
	res = do(t, c, http.MethodGet, srv.URL, "paused.shop.localhost", "/", "")
	assert.Equal(t, http.StatusServiceUnavailable, res.status)
	assert.Equal(t, ReasonPaused, res.header.Get(ErrorHeader))
	res = do(t, c, http.MethodGet, srv.URL, "nowhere.localhost", "/", "")
	assert.Equal(t, http.StatusNotFound, res.status)
	assert.Equal(t, ReasonUnknownHost, res.header.Get(ErrorHeader))
	assert.Zero(t, srv.FastRequests())
	assert.Zero(t, e.InFlight("web"), "the sticky route's count was given back")

	// A fresh connection still takes the fast path.
	res = do(t, testClient(t), http.MethodGet, srv.URL, fastHost, "/", "")
	assert.Equal(t, "web:", res.body)
	assert.Equal(t, int64(1), srv.FastRequests())
}

func TestFastPathPipelining(t *testing.T) {
	backend := newTestBackend(t, "web", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "path="+r.URL.Path)
	}))
	_, srv := newTestEdge(t, Options{}, webRoute(backend.Backend))
	rc := dialRaw(t, srv.Addr)
	rc.write(rawGet(fastHost, "/one") + rawGet(fastHost, "/two"))
	for _, want := range []string{"path=/one", "path=/two"} {
		res, body := rc.read(http.MethodGet)
		require.Equal(t, http.StatusOK, res.StatusCode)
		assert.Equal(t, want, body)
	}
	assert.Equal(t, int64(2), srv.FastRequests())

	// A request the fast path does not take, written with the ones around
	// it, goes to net/http with the bytes that follow it.
	rc = dialRaw(t, srv.Addr)
	rc.write(rawGet(fastHost, "/three") +
		"POST /four HTTP/1.1\r\nHost: " + fastHost + "\r\nContent-Length: 3\r\n\r\nabc" +
		rawGet(fastHost, "/five"))
	for _, want := range []string{"path=/three", "path=/four", "path=/five"} {
		res, body := rc.read(http.MethodGet)
		require.Equal(t, http.StatusOK, res.StatusCode)
		assert.Equal(t, want, body)
	}
	assert.Equal(t, int64(3), srv.FastRequests())
}

// A burst of pipelined requests larger than the fast path's read buffer
// is answered whole. The requests are 128 bytes each, so the buffer's
// first fill ends exactly at the end of one: the loop must read again
// rather than wait for the socket to become readable (h1's serveSock),
// since nothing new will come.
func TestFastPathPipelinedBurst(t *testing.T) {
	backend := newTestBackend(t, "web", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "path="+r.URL.Path)
	}))
	_, srv := newTestEdge(t, Options{}, webRoute(backend.Backend))
	const n = 96
	var burst strings.Builder
	for i := range n {
		req := rawGet(fastHost, fmt.Sprintf("/%03d", i))
		pad := 128 - len(req) - len("X-Pad: \r\n")
		require.Positive(t, pad)
		req = rawGet(fastHost, fmt.Sprintf("/%03d", i), "X-Pad: "+strings.Repeat("p", pad))
		require.Len(t, req, 128)
		burst.WriteString(req)
	}
	rc := dialRaw(t, srv.Addr)
	rc.write(burst.String())
	for i := range n {
		res, body := rc.read(http.MethodGet)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, fmt.Sprintf("path=/%03d", i), body)
	}
	assert.Equal(t, int64(n), srv.FastRequests())
}

func TestFastPathClientConnectionClose(t *testing.T) {
	backend := newTestBackend(t, "web", nil)
	_, srv := newTestEdge(t, Options{}, webRoute(backend.Backend))
	rc := dialRaw(t, srv.Addr)
	rc.write(rawGet(fastHost, "/", "Connection: close"))
	res, body := rc.read(http.MethodGet)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "web:", body)
	assert.Equal(t, int64(1), srv.FastRequests())
	rc.expectEOF()
}

func TestFastPathHeaderTimeout(t *testing.T) {
	backend := newTestBackend(t, "web", nil)
	e := New(Options{})
	t.Cleanup(e.CloseIdleConnections)
	e.Update(webRoute(backend.Backend))
	srv := startServer(t, &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 100 * time.Millisecond}})
	rc := dialRaw(t, srv.Addr)
	rc.write("GET / HTTP/1.1\r\nHost: " + fastHost + "\r\n") // never ends
	rc.expectEOF()
	assert.Zero(t, srv.FastRequests())
	assert.Zero(t, backend.hits.Load())
}

// rawOutcome is how a server answered raw request bytes.
type rawOutcome struct {
	Status int
	Body   string
	Err    bool // no answer it could read
}

func rawExchange(t testing.TB, addr, raw string) rawOutcome {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(3*time.Second)))
	_, err = io.WriteString(c, raw)
	require.NoError(t, err)
	method := http.MethodGet
	if strings.HasPrefix(raw, "HEAD ") {
		method = http.MethodHead
	}
	res, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "no answer and no close: %v", err)
		return rawOutcome{Err: true}
	}
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return rawOutcome{Status: res.StatusCode, Body: string(b)}
}

func TestFastPathRejectedHeadsBehaveAsNetHTTP(t *testing.T) {
	backend := newTestBackend(t, "web", nil)
	e, srv := newTestEdge(t, Options{}, webRoute(backend.Backend))
	old := httptest.NewServer(e) // net/http and ReverseProxy only
	t.Cleanup(old.Close)

	const H = fastHost
	// refused: the framing checks (h1/framing.go) answer it with this status,
	// where plain net/http would not, or would with its own page.
	tests := []struct {
		name, raw string
		refused   int
	}{
		{"bare LF line endings", "GET / HTTP/1.1\nHost: " + H + "\n\n", 0},
		{"bare LF after a header", "GET / HTTP/1.1\r\nHost: " + H + "\nX-A: 1\r\n\r\n", 0},
		{"bare LF request line", "GET / HTTP/1.1\nHost: " + H + "\r\n\r\n", 0},
		{"space before colon in Host", "GET / HTTP/1.1\r\nHost : " + H + "\r\n\r\n", 400},
		{"space before colon", "GET / HTTP/1.1\r\nHost: " + H + "\r\nX-A : 1\r\n\r\n", 400},
		{"obs-fold continuation", "GET / HTTP/1.1\r\nHost: " + H + "\r\nX-A: 1\r\n 2\r\n\r\n", 400},
		{"obs-fold after Host", "GET / HTTP/1.1\r\nHost: " + H + "\r\n\tother.localhost\r\n\r\n", 400},
		{"two Host headers", "GET / HTTP/1.1\r\nHost: " + H + "\r\nHost: " + H + "\r\n\r\n", 0},
		{"two different Host headers", "GET / HTTP/1.1\r\nHost: " + H + "\r\nHost: other.localhost\r\n\r\n", 0},
		{"missing Host", "GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", 0},
		{"empty Host", "GET / HTTP/1.1\r\nHost: \r\n\r\n", 0},
		{"bad Host chars", "GET / HTTP/1.1\r\nHost: " + H + "/x\r\n\r\n", 0},
		{"Host with space", "GET / HTTP/1.1\r\nHost: web shop\r\n\r\n", 0},
		{"control char in value", "GET / HTTP/1.1\r\nHost: " + H + "\r\nX-A: a\x01b\r\n\r\n", 400},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: " + H + "\r\nX-A: a\x00b\r\n\r\n", 400},
		{"DEL in value", "GET / HTTP/1.1\r\nHost: " + H + "\r\nX-A: a\x7fb\r\n\r\n", 400},
		{"bad header name", "GET / HTTP/1.1\r\nHost: " + H + "\r\nX(A): 1\r\n\r\n", 400},
		{"empty header name", "GET / HTTP/1.1\r\nHost: " + H + "\r\n: 1\r\n\r\n", 400},
		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: " + H + "\r\n\r\n", 0},
		{"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", 0},
		{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: " + H + "\r\n\r\n", 0},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: " + H + "\r\n\r\n", 0},
		{"lower case version", "GET / http/1.1\r\nHost: " + H + "\r\n\r\n", 0},
		{"absolute-form", "GET http://" + H + "/x HTTP/1.1\r\nHost: other.localhost\r\n\r\n", 0},
		{"asterisk-form", "GET * HTTP/1.1\r\nHost: " + H + "\r\n\r\n", 0},
		{"vertical tab in target", "GET /a\x0bb HTTP/1.1\r\nHost: " + H + "\r\n\r\n", 0},
		{"tab in target", "GET /a\tb HTTP/1.1\r\nHost: " + H + "\r\n\r\n", 0},
		{"quote in target", "GET /a\"b HTTP/1.1\r\nHost: " + H + "\r\n\r\n", 0},
		{"pipe in target", "GET /a|b HTTP/1.1\r\nHost: " + H + "\r\n\r\n", 0},
		{"non-ASCII in target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: " + H + "\r\n\r\n", 0},
		{"bad escape in target", "GET /a%zz HTTP/1.1\r\nHost: " + H + "\r\n\r\n", 0},
		{"truncated escape in target", "GET /a% HTTP/1.1\r\nHost: " + H + "\r\n\r\n", 0},
		{"fragment in target", "GET /a#frag HTTP/1.1\r\nHost: " + H + "\r\n\r\n", 0},
		{"double space", "GET  / HTTP/1.1\r\nHost: " + H + "\r\n\r\n", 0},
		{"trailing space", "GET / HTTP/1.1 \r\nHost: " + H + "\r\n\r\n", 0},
		{"lower case method", "get / HTTP/1.1\r\nHost: " + H + "\r\n\r\n", 0},
		{"leading empty line", "\r\nGET / HTTP/1.1\r\nHost: " + H + "\r\n\r\n", 400},
		{"long target", "GET /" + strings.Repeat("a", 3000) + " HTTP/1.1\r\nHost: " + H + "\r\n\r\n", 0},
		{"head over 4 KiB", rawGet(H, "/", "X-Big: "+strings.Repeat("b", 5000)), 0},
		{"Transfer-Encoding chunked", "GET / HTTP/1.1\r\nHost: " + H + "\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 0},
		{"Transfer-Encoding gzip", "GET / HTTP/1.1\r\nHost: " + H + "\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"Content-Length with body", "GET / HTTP/1.1\r\nHost: " + H + "\r\nContent-Length: 5\r\n\r\nhello", 0},
		{"Content-Length 0", "GET / HTTP/1.1\r\nHost: " + H + "\r\nContent-Length: 0\r\n\r\n", 0},
		{"bad Content-Length", "GET / HTTP/1.1\r\nHost: " + H + "\r\nContent-Length: x\r\n\r\n", 400},
		{"Content-Length and Transfer-Encoding", "GET / HTTP/1.1\r\nHost: " + H + "\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"Upgrade websocket without key", "GET / HTTP/1.1\r\nHost: " + H + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 0},
		{"Upgrade without Connection", "GET / HTTP/1.1\r\nHost: " + H + "\r\nUpgrade: websocket\r\n\r\n", 0},
		{"Expect 100-continue", "GET / HTTP/1.1\r\nHost: " + H + "\r\nExpect: 100-continue\r\n\r\n", 0},
		{"Expect unknown", "GET / HTTP/1.1\r\nHost: " + H + "\r\nExpect: something\r\n\r\n", 0},
		{"TE trailers", "GET / HTTP/1.1\r\nHost: " + H + "\r\nTE: trailers\r\n\r\n", 0},
		{"Trailer", "GET / HTTP/1.1\r\nHost: " + H + "\r\nTrailer: X-A\r\n\r\n", 0},
		{"Connection names a header", "GET / HTTP/1.1\r\nHost: " + H + "\r\nConnection: X-A\r\nX-A: 1\r\n\r\n", 0},
		{"POST", "POST / HTTP/1.1\r\nHost: " + H + "\r\nContent-Length: 2\r\n\r\nhi", 0},
		{"OPTIONS", "OPTIONS / HTTP/1.1\r\nHost: " + H + "\r\n\r\n", 0},
		{"unknown host", "GET / HTTP/1.1\r\nHost: nowhere.localhost\r\n\r\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := rawExchange(t, old.Listener.Addr().String(), tt.raw)
			if tt.refused != 0 {
				want = rawOutcome{Status: tt.refused}
			}
			before := srv.FastRequests()
			got := rawExchange(t, srv.Addr, tt.raw)
			if tt.refused != 0 {
				assert.True(t, strings.HasPrefix(got.Body, fmt.Sprintf("%d %s: ", tt.refused, http.StatusText(tt.refused))), "the edge's page: %q", got.Body)
				got.Body = ""
			}
			assert.Equal(t, want, got, "answer as net/http gives it")
			assert.Equal(t, before, srv.FastRequests(), "not served on the fast path")
		})
	}
}

func TestFastPathTimeout(t *testing.T) {
	slow := newTestBackend(t, "slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	quick := newTestBackend(t, "quick", nil)
	e, srv := newTestEdge(t, Options{},
		Route{Key: "shop/slow", Hosts: []string{"slow.shop.localhost"}, Backends: backendsOf(slow), Timeout: 100 * time.Millisecond},
		Route{Key: "shop/quick", Hosts: []string{"quick.shop.localhost"}, Backends: backendsOf(quick), Timeout: 100 * time.Millisecond})
	rc := dialRaw(t, srv.Addr)
	start := time.Now()
	rc.write(rawGet("slow.shop.localhost", "/"))
	res, body := rc.read(http.MethodGet)
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.Equal(t, http.StatusGatewayTimeout, res.StatusCode)
	assert.Equal(t, ReasonTimeout, res.Header.Get(ErrorHeader))
	assert.Contains(t, body, "did not answer within 100ms")
	assert.Equal(t, int64(1), srv.FastRequests())
	eventually(t, 2*time.Second, func() bool { return e.InFlight("slow") == 0 }, "the timed-out request released its backend")

	rc.write(rawGet("quick.shop.localhost", "/"))
	res, body = rc.read(http.MethodGet)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "quick:", body)
	assert.Equal(t, int64(2), srv.FastRequests())
}

// A kept-alive upstream connection goes back to the pool with its last
// request's deadline (h1's lazy deadlines): the next request on it, on a
// route with no timeout or through the net/http path, must not inherit it.
func TestFastPathTimeoutStaysWithItsRequest(t *testing.T) {
	var mu sync.Mutex
	conns := map[string]bool{}
	b := newTestBackend(t, "b", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
			time.Sleep(d)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "b:"+r.URL.Query().Get("sleep"))
	}))
	_, srv := newTestEdge(t, Options{},
		Route{Key: "shop/timed", Hosts: []string{"timed.shop.localhost"}, Backends: backendsOf(b), Timeout: 200 * time.Millisecond},
		Route{Key: "shop/untimed", Hosts: []string{"untimed.shop.localhost"}, Backends: backendsOf(b)})
	c := testClient(t)
	for i := range 3 {
		res := do(t, c, http.MethodGet, srv.URL, "timed.shop.localhost", "/", "")
		require.Equal(t, http.StatusOK, res.status, res.body)
		res = do(t, c, http.MethodGet, srv.URL, "untimed.shop.localhost", "/?sleep=400ms", "")
		assert.Equal(t, http.StatusOK, res.status, "round %d: a GET with no timeout after one with 200ms: %s", i, res.body)
		assert.Equal(t, "b:400ms", res.body)

		res = do(t, c, http.MethodGet, srv.URL, "timed.shop.localhost", "/", "")
		require.Equal(t, http.StatusOK, res.status, res.body)
		// An unparsable query parameter takes it to net/http's path,
		// whose ReverseProxy sends it on the same pooled connections; the
		// client connection stays with net/http, so it has one of its own.
		res = do(t, testClient(t), http.MethodGet, srv.URL, "untimed.shop.localhost", "/?sleep=400ms&a=1;b", "")
		assert.Equal(t, http.StatusOK, res.status, "round %d: a GET on net/http's path after one with 200ms: %s", i, res.body)
		assert.Equal(t, "b:400ms", res.body)
	}
	mu.Lock()
	assert.Len(t, conns, 1, "every request went on the one kept-alive connection")
	mu.Unlock()
	assert.Equal(t, int64(9), srv.FastRequests(), "the query's GETs went to net/http")

	res := do(t, c, http.MethodGet, srv.URL, "timed.shop.localhost", "/?sleep=400ms", "")
	assert.Equal(t, http.StatusGatewayTimeout, res.status, "the timed route still times out")
}

func TestFastPathRetries(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		good := newTestBackend(t, "good", nil)
		dead := Backend{ID: "dead", Addr: deadAddr(t)}
		e, srv := newTestEdge(t, Options{}, webRoute(dead, good.Backend))
		c := testClient(t)
		for i := range 20 {
			res := do(t, c, http.MethodGet, srv.URL, fastHost, "/", "")
			require.Equal(t, http.StatusOK, res.status, "request %d: %s", i, res.body)
			assert.Equal(t, "good:", res.body)
		}
		assert.Equal(t, int64(20), srv.FastRequests())
		assert.Equal(t, int64(20), good.hits.Load())
		assert.Greater(t, e.states["dead"].ejectedUntil.Load(), clock(), "the dead instance is ejected")
		assert.Zero(t, e.InFlight("dead"))
		assert.Zero(t, e.InFlight("good"))
	})

	t.Run("closed without an answer", func(t *testing.T) {
		var accepted atomic.Int64
		closer := newRawBackendConn(t, "closer", func(c net.Conn, br *bufio.Reader) {
			accepted.Add(1)
			_, _ = http.ReadRequest(br)
		})
		good := newTestBackend(t, "good", nil)
		_, srv := newTestEdge(t, Options{}, webRoute(closer, good.Backend))
		c := testClient(t)
		for i := range 20 {
			res := do(t, c, http.MethodGet, srv.URL, fastHost, "/", "")
			require.Equal(t, http.StatusOK, res.status, "request %d: %s", i, res.body)
			assert.Equal(t, "good:", res.body)
		}
		assert.Equal(t, int64(20), srv.FastRequests())
		assert.Positive(t, accepted.Load(), "the closing instance was tried")
	})

	t.Run("all refused", func(t *testing.T) {
		_, srv := newTestEdge(t, Options{}, webRoute(Backend{ID: "a", Addr: deadAddr(t)}, Backend{ID: "b", Addr: deadAddr(t)}))
		res := do(t, testClient(t), http.MethodGet, srv.URL, fastHost, "/", "")
		assert.Equal(t, http.StatusBadGateway, res.status)
		assert.Equal(t, ReasonUnreachable, res.header.Get(ErrorHeader))
		assert.Contains(t, res.body, "shop/web could not be reached")
		assert.Equal(t, int64(1), srv.FastRequests())
	})

	t.Run("answer cut short is not retried", func(t *testing.T) {
		var calls atomic.Int64
		cut := newRawBackend(t, "cut", func(r *http.Request) (string, bool) {
			calls.Add(1)
			return "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", true
		})
		_, srv := newTestEdge(t, Options{}, webRoute(cut))
		rc := dialRaw(t, srv.Addr)
		rc.write(rawGet(fastHost, "/"))
		res, err := http.ReadResponse(rc.br, nil)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, res.StatusCode)
		_, err = io.ReadAll(res.Body)
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "the client sees the body cut short")
		assert.Equal(t, int64(1), calls.Load())
	})
}

func TestFastPathStaleKeptAliveConnection(t *testing.T) {
	b, cc := newCountedBackend(t, "a", nil)
	e, srv := newTestEdge(t, Options{}, webRoute(b.Backend))
	c := testClient(t)
	require.Equal(t, http.StatusOK, do(t, c, http.MethodGet, srv.URL, fastHost, "/", "").status)
	for i := range 3 {
		b.srv.CloseClientConnections()
		eventually(t, 2*time.Second, func() bool { return cc.closed.Load() == int64(i+1) }, "the instance closed its idle connection")
		res := do(t, c, http.MethodGet, srv.URL, fastHost, "/", "")
		require.Equal(t, http.StatusOK, res.status, res.body)
		assert.Equal(t, "a:", res.body)
	}
	assert.Equal(t, int64(4), srv.FastRequests())
	assert.Equal(t, int64(4), cc.opened.Load(), "a new connection after each close")
	assert.Zero(t, e.states["a"].ejectedUntil.Load(), "not ejected for a closed idle connection")

	// Sequential requests otherwise share one connection.
	for range 5 {
		require.Equal(t, http.StatusOK, do(t, c, http.MethodGet, srv.URL, fastHost, "/", "").status)
	}
	assert.Equal(t, int64(4), cc.opened.Load())
}

func TestFastPathShutdown(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	backend := newTestBackend(t, "web", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		_, _ = io.WriteString(w, "done "+r.URL.Path)
	}))
	e := New(Options{})
	t.Cleanup(e.CloseIdleConnections)
	e.Update(webRoute(backend.Backend))
	s := &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close() })
	addr := ln.Addr().String()

	idle := dialRaw(t, addr)
	idle.write(rawGet(fastHost, "/quick"))
	res, body := idle.read(http.MethodGet)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "done /quick", body)

	busy := dialRaw(t, addr)
	busy.write(rawGet(fastHost, "/slow"))
	select {
	case <-arrived:
	case <-time.After(3 * time.Second):
		t.Fatal("the slow request did not reach the instance")
	}

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(ctx) }()

	idle.expectEOF()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned while a request was in flight: %v", err)
	default:
	}
	_, err = net.DialTimeout("tcp", addr, time.Second)
	assert.Error(t, err, "no new connections once shutting down")

	close(release)
	res, body = busy.read(http.MethodGet)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "done /slow", body)
	busy.expectEOF()

	select {
	case err := <-shut:
		require.NoError(t, err)
	case <-time.After(3 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	select {
	case err := <-served:
		assert.ErrorIs(t, err, http.ErrServerClosed)
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return")
	}
	assert.Equal(t, int64(2), s.FastRequests())
	assert.Zero(t, e.InFlight("web"))
}

func TestFastPathAccessLogAndMetrics(t *testing.T) {
	backend := newTestBackend(t, "web", nil)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	logBuf := &lockedBuffer{}
	_, srv := newTestEdge(t, Options{Metrics: m, AccessLog: logBuf},
		webRoute(backend.Backend),
		Route{Key: "shop/down", Hosts: []string{"down.shop.localhost"}, Backends: []Backend{{ID: "dead", Addr: deadAddr(t)}}})
	c := testClient(t)

	res := do(t, c, http.MethodGet, srv.URL, fastHost+":8080", "/hello/w%6Frld?token=secret", "")
	require.Equal(t, http.StatusOK, res.status)
	res = do(t, c, http.MethodGet, srv.URL, "down.shop.localhost", "/", "")
	require.Equal(t, http.StatusBadGateway, res.status)
	errBytes := len(res.body)
	assert.Equal(t, int64(2), srv.FastRequests())

	var lines []map[string]any
	eventually(t, 2*time.Second, func() bool { return strings.Count(logBuf.String(), "\n") >= 2 }, "two access log lines")
	lines = decodeLines(t, logBuf.String())
	require.Len(t, lines, 2)
	ok := lines[0]
	assert.Equal(t, "shop/web", ok["entrypoint"])
	assert.Equal(t, fastHost, ok["host"])
	assert.Equal(t, "GET", ok["method"])
	assert.Equal(t, "/hello/world", ok["path"], "the decoded path, without the query")
	assert.Equal(t, 200.0, ok["status"])
	assert.Equal(t, float64(len("web:")), ok["bytes"])
	assert.Equal(t, "shop/web", ok["origin"])
	assert.Equal(t, "", ok["error"])
	assert.NotContains(t, logBuf.String(), "secret")
	ts, err := time.Parse(time.RFC3339Nano, ok["time"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), ts, time.Minute)

	failed := lines[1]
	assert.Equal(t, 502.0, failed["status"])
	assert.Equal(t, ReasonUnreachable, failed["error"])
	assert.Equal(t, "shop/down", failed["origin"])
	assert.Equal(t, float64(errBytes), failed["bytes"])

	req := func(ep, origin, code string) float64 {
		return metricValue(t, reg, "berth_edge_requests_total", map[string]string{"entrypoint": ep, "origin": origin, "code": code})
	}
	assert.Equal(t, 1.0, req("shop/web", "shop/web", "2xx"))
	assert.Equal(t, 1.0, req("shop/down", "shop/down", "5xx"))
	assert.Equal(t, 1.0, metricValue(t, reg, "berth_edge_request_duration_seconds", map[string]string{"entrypoint": "shop/web", "origin": "shop/web"}))
	assert.Equal(t, float64(len("web:")), metricValue(t, reg, "berth_edge_response_bytes_total", map[string]string{"entrypoint": "shop/web", "origin": "shop/web"}))
}

func TestFastPathUpdateUnderLoad(t *testing.T) {
	var retiredA, retiredB atomic.Bool
	var late atomic.Int64 // requests that reached an instance after WaitIdle let it go
	guard := func(id string, retired *atomic.Bool) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if retired.Load() {
				late.Add(1)
			}
			_, _ = io.WriteString(w, id)
		})
	}
	a := newTestBackend(t, "a", guard("a", &retiredA))
	b := newTestBackend(t, "b", guard("b", &retiredB))
	e, srv := newTestEdge(t, Options{}, webRoute(a.Backend))

	stop := make(chan struct{})
	switched := make(chan int, 1)
	var waitErr atomic.Pointer[error]
	go func() {
		cur, curRetired, next, nextRetired := a, &retiredA, b, &retiredB
		n := 0
		defer func() { switched <- n }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			nextRetired.Store(false)
			e.Update(webRoute(next.Backend))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := e.WaitIdle(ctx, []string{cur.ID})
			cancel()
			if err != nil {
				waitErr.Store(&err)
				return
			}
			curRetired.Store(true)
			n++
			cur, curRetired, next, nextRetired = next, nextRetired, cur, curRetired
		}
	}()

	const workers, perWorker = 8, 200
	c := testClient(t)
	var failed atomic.Int64
	var firstErr atomic.Pointer[string]
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range perWorker {
				res, err := send(c, http.MethodGet, srv.URL, fastHost, "/", "")
				if err == nil && res.status == http.StatusOK && (res.body == "a" || res.body == "b") {
					continue
				}
				failed.Add(1)
				msg := fmt.Sprintf("status %d body %q err %v", res.status, res.body, err)
				firstErr.CompareAndSwap(nil, &msg)
			}
		})
	}
	wg.Wait()
	close(stop)
	n := <-switched

	if p := firstErr.Load(); p != nil {
		t.Errorf("first failure: %s", *p)
	}
	assert.Zero(t, failed.Load(), "failed requests")
	if p := waitErr.Load(); p != nil {
		t.Errorf("WaitIdle: %v", *p)
	}
	assert.Zero(t, late.Load(), "requests reached an instance after WaitIdle returned for it")
	assert.Greater(t, n, 5, "the route switched while requests ran")
	assert.Equal(t, int64(workers*perWorker), srv.FastRequests())
	assert.Equal(t, int64(workers*perWorker), a.hits.Load()+b.hits.Load())
	assert.Zero(t, e.InFlight("a")+e.InFlight("b"))
}

func TestFastPathRequestLineWithoutTarget(t *testing.T) {
	backend := newTestBackend(t, "web", nil)
	e, srv := newTestEdge(t, Options{}, webRoute(backend.Backend))
	old := httptest.NewServer(e)
	t.Cleanup(old.Close)
	raw := "GET HTTP/1.1\r\nHost: " + fastHost + "\r\n\r\n"
	want := rawExchange(t, old.Listener.Addr().String(), raw)
	assert.Equal(t, want, rawExchange(t, srv.Addr, raw))
	res := do(t, testClient(t), http.MethodGet, srv.URL, fastHost, "/", "")
	assert.Equal(t, http.StatusOK, res.status, "the edge still serves")
}

// blackhole returns a loopback address whose accept queue is full: a
// connection attempt to it is never answered, as to a container whose
// network is gone.
func blackhole(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	require.NoError(t, err)
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, syscall.Listen(fd, 0))
	sa, err := syscall.Getsockname(fd)
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Close(fd) })
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for range 2 { // fill the queue
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			t.Cleanup(func() { _ = c.Close() })
		}
	}
	return addr
}

// A connection attempt that times out is an unreachable instance: ejected
// and retried on another, or 502, never the route's 504.
func TestFastPathDialTimeoutIsUnreachable(t *testing.T) {
	hole := blackhole(t)
	good := newTestBackend(t, "good", nil)
	e, srv := newTestEdge(t, Options{}, webRoute(Backend{ID: "hole", Addr: hole}))
	c := testClient(t)
	res := do(t, c, http.MethodGet, srv.URL, fastHost, "/", "")
	assert.Equal(t, http.StatusBadGateway, res.status)
	assert.Equal(t, ReasonUnreachable, res.header.Get(ErrorHeader))

	// The balancer picks at random between the two until it meets the
	// hole: that request is retried on the good one, and the hole is out.
	e.Update(webRoute(Backend{ID: "hole", Addr: hole}, good.Backend))
	ejected := func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.states["hole"].ejectedUntil.Load() > clock()
	}
	n := 0
	for ; n < 30 && !ejected(); n++ {
		res = do(t, c, http.MethodGet, srv.URL, fastHost, "/", "")
		assert.Equal(t, http.StatusOK, res.status)
	}
	assert.True(t, ejected(), "the unreachable instance is ejected")
	assert.Equal(t, int64(1+n), srv.FastRequests())
}

// What ReverseProxy does that the fast path does not is left to it: a
// compressing entrypoint, and a query it cleans of unparsable parameters.
func TestFastPathLeavesCompressionAndOddQueries(t *testing.T) {
	ext, seen := plainOrigin(t)
	backend := newTestBackend(t, "web", reportHandler(http.StatusOK))
	e, srv := newTestEdge(t, Options{}, webRoute(backend.Backend))
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "gz", Hosts: []string{"gz.example.com"}, Origin: urlOrigin(t, ext.URL), Compress: true}))
	c := testClient(t)

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/"+strings.Repeat("a", 2000), nil)
	require.NoError(t, err)
	req.Host = "gz.example.com"
	req.Header.Set("Accept-Encoding", "gzip")
	tr := &http.Transport{Proxy: nil, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	r, err := (&http.Client{Transport: tr}).Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, r.Body)
	r.Body.Close()
	<-seen
	assert.Equal(t, "gzip", r.Header.Get("Content-Encoding"))

	res := do(t, c, http.MethodGet, srv.URL, fastHost, "/search?b=2&a=1;admin=true", "")
	require.Equal(t, http.StatusOK, res.status)
	assert.Equal(t, "/search?b=2", decodeSeen(t, res.body).URI, "the parameter net/url cannot parse is dropped")
	assert.Zero(t, srv.FastRequests())
}

// A connection that sends nothing is closed after the header timeout, as
// net/http closes it, not kept for the idle timeout.
func TestFastPathSilentConnection(t *testing.T) {
	backend := newTestBackend(t, "web", nil)
	e := New(Options{})
	e.Update(webRoute(backend.Backend))
	srv := startServer(t, &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 200 * time.Millisecond, IdleTimeout: time.Minute}})
	c, err := net.Dial("tcp", srv.Addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetReadDeadline(time.Now().Add(3*time.Second)))
	_, err = c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "closed by the edge")
}
