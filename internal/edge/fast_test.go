package edge

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http/httpguts"
)

// Tests of the fast path (fast.go, fastproxy.go, fastproto.go): what it
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
	var b strings.Builder
	b.WriteString("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n")
	for _, l := range lines {
		b.WriteString(l + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
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
			before := srv.fastReqs.Load()
			res := do(t, c, http.MethodGet, srv.URL, fastHost+":8080", path, "", tt.hdr...)
			assert.Equal(t, before+1, srv.fastReqs.Load(), "served on the fast path")
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
	assert.Equal(t, int64(2), srv.fastReqs.Load())
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
		assert.Equal(t, int64(1), srv.fastReqs.Load())
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
			before := srv.fastReqs.Load()
			rc.write(rawGet(fastHost, path))
			res, body := rc.read(http.MethodGet)
			require.Equal(t, http.StatusOK, res.StatusCode)
			assert.Equal(t, before+1, srv.fastReqs.Load())
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
	assert.Equal(t, int64(1), srv.fastReqs.Load())

	rc.write("POST /two HTTP/1.1\r\nHost: " + fastHost + "\r\nContent-Length: 5\r\n\r\nhello")
	res, body = rc.read(http.MethodPost)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "web:hello", body)

	rc.write(rawGet(fastHost, "/three"))
	res, body = rc.read(http.MethodGet)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "web:", body)
	assert.Equal(t, int64(1), srv.fastReqs.Load(), "the connection stays with net/http")
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
	assert.Zero(t, srv.fastReqs.Load())
	assert.Zero(t, e.InFlight("web"), "the sticky route's count was given back")

	// A fresh connection still takes the fast path.
	res = do(t, testClient(t), http.MethodGet, srv.URL, fastHost, "/", "")
	assert.Equal(t, "web:", res.body)
	assert.Equal(t, int64(1), srv.fastReqs.Load())
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
	assert.Equal(t, int64(2), srv.fastReqs.Load())

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
	assert.Equal(t, int64(3), srv.fastReqs.Load())
}

func TestFastPathClientConnectionClose(t *testing.T) {
	backend := newTestBackend(t, "web", nil)
	_, srv := newTestEdge(t, Options{}, webRoute(backend.Backend))
	rc := dialRaw(t, srv.Addr)
	rc.write(rawGet(fastHost, "/", "Connection: close"))
	res, body := rc.read(http.MethodGet)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "web:", body)
	assert.Equal(t, int64(1), srv.fastReqs.Load())
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
	assert.Zero(t, srv.fastReqs.Load())
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
	// refused: the framing checks (framing.go) answer it with this status,
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
			before := srv.fastReqs.Load()
			got := rawExchange(t, srv.Addr, tt.raw)
			if tt.refused != 0 {
				assert.True(t, strings.HasPrefix(got.Body, fmt.Sprintf("%d %s: ", tt.refused, http.StatusText(tt.refused))), "the edge's page: %q", got.Body)
				got.Body = ""
			}
			assert.Equal(t, want, got, "answer as net/http gives it")
			assert.Equal(t, before, srv.fastReqs.Load(), "not served on the fast path")
		})
	}
}

func TestFastPathResponseFramings(t *testing.T) {
	bigValue := strings.Repeat("v", 6<<10)
	type answer struct {
		resp       string
		closeAfter bool
	}
	answers := map[string]answer{
		"/length":  {resp: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-B: 1\r\n\r\nhello"},
		"/chunked": {resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n"},
		"/close":   {resp: "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the instance closes", closeAfter: true},
		"/http10":  {resp: "HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nold!", closeAfter: true},
		"/http10-close": {
			resp: "HTTP/1.0 200 OK\r\nX-B: 1\r\n\r\nold until close", closeAfter: true,
		},
		"/http10-keepalive": {resp: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\nold!"},
		"/204":              {resp: "HTTP/1.1 204 No Content\r\nX-B: 1\r\n\r\n"},
		"/304":              {resp: "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 10\r\n\r\n"},
		"/hints":            {resp: "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
		"/big-head":         {resp: "HTTP/1.1 200 OK\r\nX-Big: " + bigValue + "\r\nContent-Length: 3\r\n\r\nbig"},
		"/big-head-chunked": {resp: "HTTP/1.1 200 OK\r\nX-Big: " + bigValue + "\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nbig\r\n0\r\n\r\n"},
		"/switch":           {resp: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"},
		"/no-reason":        {resp: "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"},
		"/dated":            {resp: "HTTP/1.1 200 OK\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\nContent-Length: 2\r\n\r\nok"},
	}
	var head atomic.Int64
	backend := newRawBackend(t, "web", func(r *http.Request) (string, bool) {
		if r.Method == http.MethodHead {
			head.Add(1)
			return "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-B: 1\r\n\r\n", false
		}
		a, ok := answers[r.URL.Path]
		if !ok {
			return "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false
		}
		return a.resp, a.closeAfter
	})
	_, srv := newTestEdge(t, Options{}, webRoute(backend))

	tests := []struct {
		path    string
		method  string
		status  int
		body    string
		chunked bool // re-framed for the client
		check   func(t *testing.T, res *http.Response)
	}{
		{path: "/length", status: 200, body: "hello", check: func(t *testing.T, res *http.Response) {
			assert.Equal(t, int64(5), res.ContentLength)
			assert.Equal(t, "1", res.Header.Get("X-B"))
		}},
		{path: "/chunked", status: 200, body: "hello world", chunked: true, check: func(t *testing.T, res *http.Response) {
			assert.Equal(t, "42", res.Trailer.Get("X-Sum"), "the trailer reaches the client")
		}},
		{path: "/close", status: 200, body: "until the instance closes", chunked: true},
		{path: "/http10", status: 200, body: "old!", check: func(t *testing.T, res *http.Response) {
			assert.Equal(t, 1, res.ProtoMajor)
			assert.Equal(t, 1, res.ProtoMinor, "answered as HTTP/1.1")
		}},
		{path: "/http10-close", status: 200, body: "old until close", chunked: true},
		{path: "/http10-keepalive", status: 200, body: "old!"},
		{path: "/204", status: 204, check: func(t *testing.T, res *http.Response) {
			assert.Equal(t, "1", res.Header.Get("X-B"))
		}},
		{path: "/304", status: 304, check: func(t *testing.T, res *http.Response) {
			assert.Equal(t, `"v1"`, res.Header.Get("ETag"))
		}},
		{path: "/head", method: http.MethodHead, status: 200, check: func(t *testing.T, res *http.Response) {
			assert.Equal(t, int64(5), res.ContentLength)
			assert.Equal(t, "1", res.Header.Get("X-B"))
		}},
		{path: "/big-head", status: 200, body: "big", check: func(t *testing.T, res *http.Response) {
			assert.Equal(t, bigValue, res.Header.Get("X-Big"))
		}},
		{path: "/big-head-chunked", status: 200, body: "big", chunked: true, check: func(t *testing.T, res *http.Response) {
			assert.Equal(t, bigValue, res.Header.Get("X-Big"))
		}},
		{path: "/switch", status: http.StatusBadGateway, body: "502 Bad Gateway: The service shop/web failed to answer.\n", check: func(t *testing.T, res *http.Response) {
			assert.Equal(t, ReasonUpstreamError, res.Header.Get(ErrorHeader))
			assert.Empty(t, res.Header.Get("Upgrade"))
		}},
		{path: "/no-reason", status: 200, body: "ok"},
		{path: "/dated", status: 200, body: "ok", check: func(t *testing.T, res *http.Response) {
			assert.Equal(t, []string{"Mon, 02 Jan 2006 15:04:05 GMT"}, res.Header.Values("Date"), "the instance's Date, once")
		}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.path, "/"), func(t *testing.T) {
			method := cmp.Or(tt.method, http.MethodGet)
			rc := dialRaw(t, srv.Addr)
			before := srv.fastReqs.Load()
			rc.write(method + " " + tt.path + " HTTP/1.1\r\nHost: " + fastHost + "\r\n\r\n")
			res, body := rc.read(method)
			require.Equal(t, tt.status, res.StatusCode, body)
			assert.Equal(t, tt.body, body)
			if tt.chunked {
				assert.Equal(t, []string{"chunked"}, res.TransferEncoding)
			}
			assert.NotEmpty(t, res.Header.Get("Date"))
			if tt.check != nil {
				tt.check(t, res)
			}
			assert.False(t, res.Close, "the client connection stays open")
			// The connection carries the next request in step.
			rc.write(rawGet(fastHost, "/length"))
			res, body = rc.read(http.MethodGet)
			assert.Equal(t, http.StatusOK, res.StatusCode)
			assert.Equal(t, "hello", body)
			assert.Equal(t, before+2, srv.fastReqs.Load())
		})
	}
	assert.Equal(t, int64(1), head.Load())

	t.Run("early hints", func(t *testing.T) {
		var hints []string
		ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{
			Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				hints = append(hints, fmt.Sprint(code, " ", h.Get("Link")))
				return nil
			},
		})
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/hints", nil)
		require.NoError(t, err)
		req.Host = fastHost
		before := srv.fastReqs.Load()
		res, err := testClient(t).Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		assert.Equal(t, 200, res.StatusCode)
		assert.Equal(t, "ok", string(body))
		assert.Equal(t, []string{"103 </s.css>; rel=preload"}, hints)
		assert.Equal(t, before+1, srv.fastReqs.Load())
	})
}

func TestFastPathStreams(t *testing.T) {
	readEvent := func(t *testing.T, rd *bufio.Reader) string {
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
	release := make(chan struct{})
	var released atomic.Bool
	sse := newTestBackend(t, "sse", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		_, _ = io.WriteString(w, "data: one\n\n")
		_ = rc.Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		case <-time.After(5 * time.Second): // fail, not hang
		}
		released.Store(true)
		_, _ = io.WriteString(w, "data: two\n\n")
	}))
	releaseRaw := make(chan struct{})
	var rawReleased atomic.Bool
	raw := newRawBackendConn(t, "raw", func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: one\n\n")
		select {
		case <-releaseRaw:
		case <-time.After(5 * time.Second):
		}
		rawReleased.Store(true)
		_, _ = io.WriteString(c, "data: two\n\n")
	})
	_, srv := newTestEdge(t, Options{},
		Route{Key: "shop/sse", Hosts: []string{"sse.shop.localhost"}, Backends: backendsOf(sse), Timeout: time.Minute},
		Route{Key: "shop/raw", Hosts: []string{"raw.shop.localhost"}, Backends: []Backend{raw}, Timeout: time.Minute})

	tests := []struct {
		name     string
		host     string
		release  chan struct{}
		released *atomic.Bool
	}{
		{name: "chunked", host: "sse.shop.localhost", release: release, released: &released},
		{name: "until close", host: "raw.shop.localhost", release: releaseRaw, released: &rawReleased},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := srv.fastReqs.Load()
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/events", nil)
			require.NoError(t, err)
			req.Host = tt.host
			res, err := testClient(t).Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			require.Equal(t, 200, res.StatusCode)
			assert.Equal(t, before+1, srv.fastReqs.Load())
			rd := bufio.NewReader(res.Body)
			assert.Equal(t, "data: one\n", readEvent(t, rd))
			assert.False(t, tt.released.Load(), "the first event arrived while the instance held the stream")
			close(tt.release)
			assert.Equal(t, "data: two\n", readEvent(t, rd))
			_, err = rd.ReadByte()
			assert.ErrorIs(t, err, io.EOF)
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
	assert.Equal(t, int64(1), srv.fastReqs.Load())
	eventually(t, 2*time.Second, func() bool { return e.InFlight("slow") == 0 }, "the timed-out request released its backend")

	rc.write(rawGet("quick.shop.localhost", "/"))
	res, body = rc.read(http.MethodGet)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "quick:", body)
	assert.Equal(t, int64(2), srv.fastReqs.Load())
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
		assert.Equal(t, int64(20), srv.fastReqs.Load())
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
		assert.Equal(t, int64(20), srv.fastReqs.Load())
		assert.Positive(t, accepted.Load(), "the closing instance was tried")
	})

	t.Run("all refused", func(t *testing.T) {
		_, srv := newTestEdge(t, Options{}, webRoute(Backend{ID: "a", Addr: deadAddr(t)}, Backend{ID: "b", Addr: deadAddr(t)}))
		res := do(t, testClient(t), http.MethodGet, srv.URL, fastHost, "/", "")
		assert.Equal(t, http.StatusBadGateway, res.status)
		assert.Equal(t, ReasonUnreachable, res.header.Get(ErrorHeader))
		assert.Contains(t, res.body, "shop/web could not be reached")
		assert.Equal(t, int64(1), srv.fastReqs.Load())
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
	assert.Equal(t, int64(4), srv.fastReqs.Load())
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
	assert.Equal(t, int64(2), s.fastReqs.Load())
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
	assert.Equal(t, int64(2), srv.fastReqs.Load())

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
	assert.Equal(t, int64(workers*perWorker), srv.fastReqs.Load())
	assert.Equal(t, int64(workers*perWorker), a.hits.Load()+b.hits.Load())
	assert.Zero(t, e.InFlight("a")+e.InFlight("b"))
}

// fuzzRequestSeeds are request heads for FuzzParseRequest, valid and not.
var fuzzRequestSeeds = []string{
	"GET HTTP/1.1\r\nHost: x\r\n\r\n", // no target: once a panic
	"GET / HTTP/1.1\r\nHost: web.shop.localhost\r\n\r\n",
	"HEAD /x?y=1 HTTP/1.1\r\nHost: a:8080\r\nAccept: text/html\r\n\r\n",
	"GET /a%20b/%2F?q=%zz HTTP/1.1\r\nHost: [::1]:80\r\nConnection: keep-alive, close\r\n\r\n",
	"GET / HTTP/1.1\r\nhost: x\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\nForwarded: for=x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nConnection: ,\r\nKeep-Alive: 5\r\nProxy-Connection: x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX-A:\t v \t\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX-A: \x80\xff\r\n\r\n",
	"GET / HTTP/1.1\nHost: x\n\n",
	"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\n y\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n",
	"GET / HTTP/1.0\r\nHost: x\r\n\r\n",
	"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
	"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nConnection: X-A\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nCONNECTION: CLOSE\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nConnection: closed\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n",
	"GET /%00 HTTP/1.1\r\nHost: x.\r\n\r\n",
	"GET //x/../y HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nPragma: no-cache\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x_y-z.\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\n\r",
	"GET / HT",
	"HEAD",
}

// FuzzParseRequest checks the fast parser's safety property: a head it
// takes is one net/http reads the same way, so the two paths cannot
// disagree on where a request ends or what it asks for.
func FuzzParseRequest(f *testing.F) {
	for _, s := range fuzzRequestSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	// The shapes the edge refuses (framing_test.go), on the fast path.
	for _, s := range framingShapes {
		f.Add([]byte(shape(strings.Replace(s.raw, "POST ", "GET ", 1), fastHost)), false)
	}
	f.Fuzz(func(t *testing.T, buf []byte, trust bool) {
		var h reqHead
		n, v := parseRequest(buf, &h, trust)
		if v != headOK {
			if n != 0 {
				t.Fatalf("verdict %d with length %d", v, n)
			}
			return
		}
		if n <= 0 || n > len(buf) {
			t.Fatalf("length %d of %d bytes", n, len(buf))
		}
		head := buf[:n]
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			t.Fatalf("fast parser took %q; net/http: %v", head, err)
		}
		method := http.MethodGet
		if h.head {
			method = http.MethodHead
		}
		target := string(h.target.of(buf))
		switch {
		case req.Method != method:
			t.Fatalf("%q: method %q, net/http %q", head, method, req.Method)
		case req.RequestURI != target:
			t.Fatalf("%q: target %q, net/http %q", head, target, req.RequestURI)
		case req.Host != string(h.host.of(buf)):
			t.Fatalf("%q: host %q, net/http %q", head, h.host.of(buf), req.Host)
		case req.ContentLength != 0 || len(req.TransferEncoding) != 0:
			t.Fatalf("%q: net/http sees a body: length %d, encoding %q", head, req.ContentLength, req.TransferEncoding)
		case req.Close != h.close:
			t.Fatalf("%q: close %v, net/http %v", head, h.close, req.Close)
		case !req.ProtoAtLeast(1, 1):
			t.Fatalf("%q: net/http reads %s", head, req.Proto)
		}
		// What net/http's server checks beyond ReadRequest.
		if !httpguts.ValidHostHeader(req.Host) {
			t.Fatalf("%q: net/http's server refuses Host %q", head, req.Host)
		}
		// The path routed on is net/http's URL.Path.
		if path := targetPath(h.target.of(buf)); path != req.URL.Path {
			t.Fatalf("%q: path %q, net/http %q", head, path, req.URL.Path)
		}
		// net/http ends the head where the fast parser does.
		rd := bytes.NewReader(buf)
		br := bufio.NewReader(rd)
		if _, err := http.ReadRequest(br); err != nil {
			t.Fatalf("%q: net/http fails on the whole buffer: %v", buf, err)
		}
		if used := len(buf) - rd.Len() - br.Buffered(); used != n {
			t.Fatalf("%q: head of %d bytes, net/http took %d", buf, n, used)
		}
		// The fast path takes no head the framing checks of the
		// net/http path refuse (framing.go), and none with a body.
		fr, refused := checkHead(head)
		if !refused.ok() || fr.length != 0 || fr.chunked {
			t.Fatalf("%q: fast path took it; framing checks: %+v, %q", head, fr, refused.msg)
		}
	})
}

// fuzzResponseSeeds are response heads for FuzzParseResponse.
var fuzzResponseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\nTrailer: X\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 05\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.0 200 OK\r\n\r\nbody",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n",
	"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n",
	"HTTP/1.1 200 OK\r\nConnection: close, X-A\r\n\r\n",
	"HTTP/1.1 200 OK\r\nKeep-Alive: 5\r\nDate: x\r\n\r\n",
	"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
	"HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-A: \x01\r\n\r\n",
	"HTTP/1.1 099 X\r\n\r\n",
	"HTTP/1.1 999 X\r\n\r\n",
	"HTTP/1.1 2000 OK\r\n\r\n",
	"HTTP/1.1 200OK\r\n\r\n",
	"HTTP/1.2 200 OK\r\n\r\n",
	"HTTP/2.0 200 OK\r\n\r\n",
	"HTTP/1.1 200 \x01\r\n\r\n",
	"HTTP/1.1 200 OK\r\n",
}

// FuzzParseResponse checks that an answer head the fast parser takes is
// one net/http reads with the same status and length.
func FuzzParseResponse(f *testing.F) {
	for _, s := range fuzzResponseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, buf []byte) {
		var rh respHead
		n, v := parseResponse(buf, &rh)
		if v != headOK {
			return
		}
		if n <= 0 || n > len(buf) {
			t.Fatalf("length %d of %d bytes", n, len(buf))
		}
		head := buf[:n]
		res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(head)), &http.Request{Method: http.MethodGet})
		if err != nil {
			t.Fatalf("fast parser took %q; net/http: %v", head, err)
		}
		if res.StatusCode != rh.status {
			t.Fatalf("%q: status %d, net/http %d", head, rh.status, res.StatusCode)
		}
		bodyless := rh.status < 200 || rh.status == http.StatusNoContent || rh.status == http.StatusNotModified
		if rh.length >= 0 && !rh.chunked && !bodyless && res.ContentLength != rh.length {
			t.Fatalf("%q: length %d, net/http %d", head, rh.length, res.ContentLength)
		}
		if rh.close && !res.Close {
			t.Fatalf("%q: fast parser closes, net/http keeps the connection", head)
		}
	})
}

func TestFastPathRequestLineWithoutTarget(t *testing.T) {
	for _, line := range []string{"GET HTTP/1.1\r\n", "HEAD HTTP/1.1\r\n"} {
		var h reqHead
		_, v := parseRequest([]byte(line+"Host: x\r\n\r\n"), &h, false)
		assert.Equal(t, headUnsupported, v, "%q", line)
	}

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

func TestFastPathClientGoneMidStreamCancelsUpstream(t *testing.T) {
	cancelled := make(chan struct{})
	sse := newTestBackend(t, "sse", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: one\n\n")
		_ = http.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(5 * time.Second): // fail, not hang
		}
	}))
	e, srv := newTestEdge(t, Options{}, Route{Key: "shop/sse", Hosts: []string{"sse.shop.localhost"}, Backends: backendsOf(sse)})
	rc := dialRaw(t, srv.Addr)
	rc.write(rawGet("sse.shop.localhost", "/events"))
	res, err := http.ReadResponse(rc.br, nil)
	require.NoError(t, err)
	ev := make([]byte, len("data: one\n\n"))
	_, err = io.ReadFull(res.Body, ev)
	require.NoError(t, err)
	assert.Equal(t, int64(1), srv.fastReqs.Load())
	assert.Equal(t, 1, e.InFlight("sse"))

	require.NoError(t, rc.c.Close())
	select {
	case <-cancelled:
	case <-time.After(2 * time.Second):
		t.Fatal("the instance still streams to a client that left")
	}
	eventually(t, 2*time.Second, func() bool { return e.InFlight("sse") == 0 }, "the stream released its backend")
}

func TestFastPathHTTP10ChunkedResponseAsNetHTTP(t *testing.T) {
	for _, head := range []string{
		"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
	} {
		var rh respHead
		_, v := parseResponse([]byte(head), &rh)
		assert.Equal(t, headUnsupported, v, "%q: net/http reads it", head)
	}

	backend := newRawBackendConn(t, "web", func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err == nil {
			_, _ = io.WriteString(c, "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
		}
	})
	e, srv := newTestEdge(t, Options{}, webRoute(backend))
	old := httptest.NewServer(e)
	t.Cleanup(old.Close)

	// net/http reads the body until the instance closes, codings and all.
	raw := rawGet(fastHost, "/close")
	want := rawExchange(t, old.Listener.Addr().String(), raw)
	assert.Equal(t, want, rawExchange(t, srv.Addr, raw), "the answer net/http gives")

	// An HTTP/1.0 answer that says keep-alive and chunked has, to
	// net/http, a body up to a close that never comes: both paths wait for
	// it, so it is not exercised here.
}

// originSaw is what an origin saw of a request.
type originSaw struct {
	host, uri, forwardedHost, forwardedFor string
}

// plainOrigin is an external origin over plain HTTP that reports what it
// saw.
func plainOrigin(t testing.TB) (*httptest.Server, chan originSaw) {
	t.Helper()
	seen := make(chan originSaw, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- originSaw{r.Host, r.RequestURI, r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Forwarded-For")}
		w.Header().Set("X-Origin", "plain")
		w.Header().Set("X-Internal", "secret")
		_, _ = io.WriteString(w, "plain:"+r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

func TestFastPathEntrypointURLOrigin(t *testing.T) {
	ext, seen := plainOrigin(t)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	logBuf := &lockedBuffer{}
	e, srv := newTestEdge(t, Options{Metrics: m, AccessLog: logBuf})
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "www", Hosts: []string{"www.example.com"},
		Origin: urlOrigin(t, ext.URL+"/base/"), Controls: Controls{Timeout: time.Minute}}))
	old := httptest.NewServer(e) // net/http and ReverseProxy only
	t.Cleanup(old.Close)
	c := testClient(t)

	// The same request through both paths: the origin sees the same.
	var got [2]originSaw
	for i, base := range []string{srv.URL, old.URL} {
		res := do(t, c, http.MethodGet, base, "www.example.com:8080", "/a%2Fb/c?q=1", "")
		require.Equal(t, http.StatusOK, res.status)
		assert.Equal(t, "plain:/base/a/b/c", res.body)
		assert.Equal(t, "plain", res.header.Get("X-Origin"))
		got[i] = <-seen
	}
	assert.Equal(t, int64(1), srv.fastReqs.Load(), "the fast path took the first")
	assert.Equal(t, got[1], got[0], "what the origin saw, fast path and net/http")
	assert.Equal(t, strings.TrimPrefix(ext.URL, "http://"), got[0].host, "the Host is the origin's own")
	assert.Equal(t, "/base/a%2Fb/c?q=1", got[0].uri)
	assert.Equal(t, "www.example.com:8080", got[0].forwardedHost)
	assert.Equal(t, "127.0.0.1", got[0].forwardedFor)

	eventually(t, 2*time.Second, func() bool { return strings.Count(logBuf.String(), "\n") >= 2 }, "two access log lines")
	lines := decodeLines(t, logBuf.String())
	for _, l := range lines {
		assert.Equal(t, "www", l["entrypoint"])
		assert.Equal(t, ext.URL, l["origin"], "the origin's label")
		assert.Equal(t, 200.0, l["status"])
	}
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var requests float64
	for _, mf := range mfs {
		if mf.GetName() == "berth_edge_requests_total" {
			for _, mt := range mf.GetMetric() {
				requests += mt.GetCounter().GetValue()
			}
		}
	}
	assert.Equal(t, 2.0, requests, "both requests counted")
}

func TestFastPathEntrypointServiceOrigin(t *testing.T) {
	good := newTestBackend(t, "a", nil)
	e, srv := newTestEdge(t, Options{}, Route{Key: "shop/web", Backends: []Backend{{ID: "dead", Addr: deadAddr(t)}, good.Backend}})
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "www", Hosts: []string{"www.example.com"}, Origin: serviceOrigin("shop/web")}))
	c := testClient(t)
	for range 10 {
		res := do(t, c, http.MethodGet, srv.URL, "www.example.com", "/x", "")
		require.Equal(t, http.StatusOK, res.status)
		assert.Equal(t, "a", res.header.Get("X-Backend"))
	}
	assert.Equal(t, int64(10), srv.fastReqs.Load())
	assert.Zero(t, e.InFlight("a"))
}

// An entrypoint's header controls apply on the fast path as on net/http,
// to the origin's answers and to the edge's own.
func TestFastPathEntrypointHeaderControls(t *testing.T) {
	ext, seen := plainOrigin(t)
	ctl := Controls{AddHeaders: map[string]string{"X-Edge": "berth", "X-Origin": "replaced"}, RemoveHeaders: []string{"X-Internal"}}
	e, srv := newTestEdge(t, Options{})
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "hdr", Hosts: []string{"hdr.example.com"}, Origin: urlOrigin(t, ext.URL), Controls: ctl}))
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "gone", Hosts: []string{"gone.example.com"}, Origin: urlOrigin(t, "http://"+deadAddr(t)), Controls: ctl}))
	old := httptest.NewServer(e)
	t.Cleanup(old.Close)
	c := testClient(t)
	for _, base := range []string{srv.URL, old.URL} {
		res := do(t, c, http.MethodGet, base, "hdr.example.com", "/", "")
		<-seen
		assert.Equal(t, http.StatusOK, res.status, base)
		assert.Equal(t, "berth", res.header.Get("X-Edge"), base)
		assert.Equal(t, []string{"replaced"}, res.header.Values("X-Origin"), base)
		assert.Empty(t, res.header.Values("X-Internal"), base)
		assert.Equal(t, "plain:/", res.body, base)

		res = do(t, c, http.MethodGet, base, "gone.example.com", "/", "")
		assert.Equal(t, http.StatusBadGateway, res.status, base)
		assert.Equal(t, "berth", res.header.Get("X-Edge"), "the edge's own page too: %s", base)
	}
	assert.Equal(t, int64(2), srv.fastReqs.Load())
}

// The fast path leaves what it does not do for entrypoints to net/http,
// which does it.
func TestFastPathEntrypointHandsOver(t *testing.T) {
	ext, _ := plainOrigin(t)
	e, srv := newTestEdge(t, Options{})
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "pages", Hosts: []string{"pages.example.com"}, Origin: urlOrigin(t, "http://"+deadAddr(t)),
		ErrorPages: map[int][]byte{http.StatusBadGateway: []byte("<p>sorry</p>")}}))
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "down", Hosts: []string{"down.example.com"}, Origin: urlOrigin(t, ext.URL), Maintenance: true}))
	c := testClient(t)
	res := do(t, c, http.MethodGet, srv.URL, "pages.example.com", "/", "")
	assert.Equal(t, http.StatusBadGateway, res.status)
	assert.Equal(t, "<p>sorry</p>", res.body)
	res = do(t, c, http.MethodGet, srv.URL, "down.example.com", "/", "")
	assert.Equal(t, http.StatusServiceUnavailable, res.status)
	assert.Equal(t, ReasonMaintenance, res.header.Get(ErrorHeader))
	assert.Zero(t, srv.fastReqs.Load())
}

func TestFastPathEntrypointErrorsAsNetHTTP(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	e, srv := newTestEdge(t, Options{})
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "gone", Hosts: []string{"gone.example.com"}, Origin: urlOrigin(t, "http://"+deadAddr(t))}))
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "slow", Hosts: []string{"slow.example.com"}, Origin: urlOrigin(t, slow.URL),
		Controls: Controls{Timeout: 100 * time.Millisecond}}))
	old := httptest.NewServer(e)
	t.Cleanup(old.Close)
	c := testClient(t)
	for _, tc := range []struct {
		host   string
		status int
		reason string
	}{
		{"gone.example.com", http.StatusBadGateway, ReasonUnreachable},
		{"slow.example.com", http.StatusGatewayTimeout, ReasonTimeout},
	} {
		fast := do(t, c, http.MethodGet, srv.URL, tc.host, "/", "")
		viaNetHTTP := do(t, c, http.MethodGet, old.URL, tc.host, "/", "")
		assert.Equal(t, tc.status, fast.status, tc.host)
		assert.Equal(t, tc.reason, fast.header.Get(ErrorHeader), tc.host)
		assert.Equal(t, viaNetHTTP.status, fast.status, tc.host)
		assert.Equal(t, viaNetHTTP.body, fast.body, tc.host)
	}
	assert.Equal(t, int64(2), srv.fastReqs.Load())
}

// An answer whose head goes to net/http (larger than the fast parser's
// buffer) is streamed under the same watch: a client that leaves ends the
// request at the instance.
func TestFastPathSlowRelayClientGone(t *testing.T) {
	cancelled := make(chan struct{})
	backend := newTestBackend(t, "web", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Big", strings.Repeat("v", 6<<10))
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: one\n\n")
		_ = http.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(5 * time.Second):
		}
	}))
	e, srv := newTestEdge(t, Options{}, webRoute(backend.Backend))
	rc := dialRaw(t, srv.Addr)
	rc.write(rawGet(fastHost, "/events"))
	res, err := http.ReadResponse(rc.br, nil)
	require.NoError(t, err)
	ev := make([]byte, len("data: one\n\n"))
	_, err = io.ReadFull(res.Body, ev)
	require.NoError(t, err)
	require.Equal(t, int64(1), srv.fastReqs.Load())
	require.NoError(t, rc.c.Close())
	select {
	case <-cancelled:
	case <-time.After(3 * time.Second):
		t.Fatal("the instance still streams to a client that left")
	}
	eventually(t, 2*time.Second, func() bool { return e.InFlight("web") == 0 }, "the stream released its backend")
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
	assert.Equal(t, int64(1+n), srv.fastReqs.Load())
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
	assert.Zero(t, srv.fastReqs.Load())
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

// Whether an instance closes its connection after an answer is read as
// net/http reads it, whatever the order of the tokens.
func TestParseResponseConnectionAsNetHTTP(t *testing.T) {
	for _, head := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: close, keep-alive\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
	} {
		var rh respHead
		n, v := parseResponse([]byte(head), &rh)
		require.Equal(t, headOK, v, "%q", head)
		res, err := http.ReadResponse(bufio.NewReader(strings.NewReader(head[:n])), nil)
		require.NoError(t, err)
		assert.Equal(t, res.Close, rh.close, "%q", head)
	}
}

// TestFastPathShutdownAnswersAcceptedConnections: a connection accepted
// just before Shutdown (its client already connected, its request not yet
// read) is served, on the fast path and when handed to net/http, as
// net/http does with a new connection; only connections idle between
// requests are closed, which clients retry. This is what a berth server
// upgrade relies on to lose no request.
func TestFastPathShutdownAnswersAcceptedConnections(t *testing.T) {
	backend := newTestBackend(t, "web", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "done "+r.Method+" "+r.URL.Path)
	}))
	e := New(Options{})
	t.Cleanup(e.CloseIdleConnections)
	e.Update(webRoute(backend.Backend))
	s := &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close() })
	addr := ln.Addr().String()

	fast := dialRaw(t, addr)
	slow := dialRaw(t, addr) // its POST goes to net/http
	kept := dialRaw(t, addr)
	kept.write(rawGet(fastHost, "/first"))
	res, _ := kept.read(http.MethodGet)
	require.Equal(t, http.StatusOK, res.StatusCode)
	eventually(t, 3*time.Second, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) == 3
	}, "three connections accepted")

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	kept.expectEOF() // idle between requests: closed
	time.Sleep(50 * time.Millisecond)

	fast.write(rawGet(fastHost, "/fast"))
	res, body := fast.read(http.MethodGet)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "done GET /fast", body)
	fast.expectEOF()

	slow.write("POST /slow HTTP/1.1\r\nHost: " + fastHost + "\r\nContent-Length: 2\r\n\r\nhi")
	res, body = slow.read(http.MethodPost)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "done POST /slow", body)
	slow.expectEOF()

	select {
	case err := <-shut:
		require.NoError(t, err)
	case <-time.After(3 * time.Second):
		t.Fatal("Shutdown did not return")
	}
}
