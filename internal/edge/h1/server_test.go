package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/edge/h1/h1test"
)

// Tests of the connection loop (server.go, conn.go): what the fast path
// serves through its Handler, what it hands to net/http, and Shutdown.

func TestServerServesThroughItsHandler(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Drop", "1")
		w.Header().Set("X-Keep", "1")
		_, _ = fmt.Fprintf(w, "seen %s %s host=%s xff=%s", r.Method, r.URL.Path, r.Host, r.Header.Get("X-Forwarded-For"))
	}))
	t.Cleanup(backend.Close)
	s, up := newServer(t, backend)
	up.leave = func(req *Request) bool { return req.Path == "/net" }
	up.target = func(t *Target) {
		t.Controls = &HeaderControls{Remove: []string{"X-Drop"}, Add: []HeaderValue{{Key: "X-Added", Values: []string{"yes"}}}}
	}
	rc := dialRaw(t, serve(t, s))

	rc.write(rawGet(testHost, "/fast"))
	res, body := rc.read(http.MethodGet)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "seen GET /fast host="+testHost+" xff=127.0.0.1", body)
	assert.Empty(t, res.Header.Get("X-Drop"), "removed by the target's controls")
	assert.Equal(t, "yes", res.Header.Get("X-Added"))
	assert.Equal(t, "1", res.Header.Get("X-Keep"))
	assert.Equal(t, int64(1), s.FastRequests())
	assert.Equal(t, []Result{{Status: http.StatusOK, Bytes: int64(len(body))}}, up.done())

	// The Handler leaves it: net/http serves it, and the connection.
	rc.write(rawGet(testHost, "/net"))
	res, body = rc.read(http.MethodGet)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "seen GET /net host="+testHost+" xff=127.0.0.1", body)
	rc.write(rawGet(testHost, "/after"))
	_, body = rc.read(http.MethodGet)
	assert.Equal(t, "seen GET /after host="+testHost+" xff=127.0.0.1", body)
	assert.Equal(t, int64(1), s.FastRequests(), "the connection stays with net/http")

	// A request with a body never reaches the Handler.
	rc = dialRaw(t, serve(t, s))
	rc.write("POST /body HTTP/1.1\r\nHost: " + testHost + "\r\nContent-Length: 2\r\n\r\nhi")
	res, body = rc.read(http.MethodPost)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "seen POST /body host="+testHost+" xff=127.0.0.1", body)
	assert.Equal(t, int64(1), s.FastRequests())
}

// The server's own answers, to a request that got none in time and to one
// whose framing it refuses, are written by its ErrorPage, with the reason
// the Exchange (or the refusal) gives.
func TestServerErrorPages(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(backend.Close)
	s, up := newServer(t, backend)
	up.target = func(t *Target) { t.Timeout = 100 * time.Millisecond }
	s.ErrorPage = func(w http.ResponseWriter, r *http.Request, status int, reason, msg string) {
		w.Header().Set("X-Reason", reason)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, r.Method+": "+msg)
	}
	addr := serve(t, s)

	rc := dialRaw(t, addr)
	rc.write(rawGet(testHost, "/slow"))
	res, body := rc.read(http.MethodGet)
	assert.Equal(t, http.StatusGatewayTimeout, res.StatusCode)
	assert.Equal(t, "timeout", res.Header.Get("X-Reason"))
	assert.Equal(t, "GET: no answer in time", body)
	assert.Equal(t, []Result{{Status: http.StatusGatewayTimeout, Bytes: int64(len(body)), Reason: "timeout"}}, up.done())

	shape := h1test.FramingShapes[0]
	rc = dialRaw(t, addr)
	rc.write(h1test.Shape(shape.Raw, testHost))
	res, _ = rc.read(http.MethodGet)
	assert.Equal(t, shape.Status, res.StatusCode)
	assert.Equal(t, ReasonBadRequest, res.Header.Get("X-Reason"))
	assert.True(t, res.Close)
	rc.expectEOF()
}

// A connection accepted just before Shutdown (its client already
// connected, its request not yet read) is served, on the fast path and
// when handed to net/http, as net/http does with a new connection; only
// connections idle between requests are closed, which clients retry. This
// is what a berth server upgrade relies on to lose no request.
func TestShutdownAnswersAcceptedConnections(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "done "+r.Method+" "+r.URL.Path)
	}))
	t.Cleanup(backend.Close)
	s, _ := newServer(t, backend)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close() })
	addr := ln.Addr().String()

	fast := dialRaw(t, addr)
	slow := dialRaw(t, addr) // its POST goes to net/http
	kept := dialRaw(t, addr)
	kept.write(rawGet(testHost, "/first"))
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

	fast.write(rawGet(testHost, "/fast"))
	res, body := fast.read(http.MethodGet)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "done GET /fast", body)
	fast.expectEOF()

	slow.write("POST /slow HTTP/1.1\r\nHost: " + testHost + "\r\nContent-Length: 2\r\n\r\nhi")
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

// A client that connected before a Shutdown (a restart handing its
// sockets on) but whose TLS handshake is not done yet gets its request
// answered, as on plain HTTP and as net/http's ServeTLS did: its client
// cannot know to retry.
func TestTLSShutdownAnswersAcceptedConnections(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "done "+r.Proto+" "+r.URL.Path)
	}))
	t.Cleanup(backend.Close)
	s, _ := newServer(t, backend)
	addr := serveTLS(t, s)

	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
		return c
	}
	c1, c2 := dial(), dial()
	eventually(t, 3*time.Second, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.shaking) == 2
	}, "two connections accepted")

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	time.Sleep(100 * time.Millisecond)

	// HTTP/1.1, read raw.
	tc := tls.Client(c1, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}) //nolint:gosec // test server certificate
	rc := &rawConn{t: t, c: tc, br: bufio.NewReader(tc)}
	rc.write("GET /one HTTP/1.1\r\nHost: " + testHost + "\r\n\r\n")
	res, body := rc.read(http.MethodGet)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "done HTTP/1.1 /one", body)

	// HTTP/2, with a real client.
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // test server certificate
		ForceAttemptHTTP2: true,
		DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c := tls.Client(c2, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}) //nolint:gosec // test server certificate
			return c, c.HandshakeContext(ctx)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	req, err := http.NewRequest(http.MethodGet, "https://"+addr+"/two", nil)
	require.NoError(t, err)
	req.Host = testHost
	hres, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
	if assert.NoError(t, err) {
		b, _ := io.ReadAll(hres.Body)
		hres.Body.Close()
		assert.Equal(t, http.StatusOK, hres.StatusCode)
		assert.Equal(t, 2, hres.ProtoMajor, "HTTP/2 between the client and the server")
		assert.True(t, strings.HasPrefix(string(b), "done HTTP/1.1 /two"), string(b))
	}

	select {
	case err := <-shut:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
}
