package edge

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testBackend is a real HTTP server standing in for an instance.
type testBackend struct {
	Backend
	srv  *httptest.Server
	hits atomic.Int64
}

// newTestBackend starts an instance on loopback. A nil handler answers
// "<id>:<request body>" with an X-Backend header.
func newTestBackend(t testing.TB, id string, h http.Handler) *testBackend {
	t.Helper()
	tb := &testBackend{}
	if h == nil {
		h = echoHandler(id)
	}
	tb.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tb.hits.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(tb.srv.Close)
	tb.Backend = Backend{ID: id, Addr: tb.srv.Listener.Addr().String()}
	return tb
}

func echoHandler(id string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("X-Backend", id)
		_, _ = io.WriteString(w, id+":"+string(body))
	})
}

func backendsOf(tbs ...*testBackend) []Backend {
	out := make([]Backend, len(tbs))
	for i, tb := range tbs {
		out[i] = tb.Backend
	}
	return out
}

// newTestEdge runs an Edge behind its fast-path Server on loopback, as the
// daemon serves plain HTTP: requests the fast path takes and those it hands
// to net/http both go through the real listener.
func newTestEdge(t testing.TB, opts Options, routes ...Route) (*Edge, *testServer) {
	t.Helper()
	e := New(opts)
	for _, r := range routes {
		e.Update(r)
	}
	srv := startServer(t, &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}})
	t.Cleanup(e.CloseIdleConnections)
	return e, srv
}

// testServer is a Server listening on loopback.
type testServer struct {
	*Server
	URL  string
	Addr string
}

func startServer(t testing.TB, s *Server) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		_ = s.Close()
		require.ErrorIs(t, <-done, http.ErrServerClosed)
	})
	return &testServer{Server: s, URL: "http://" + ln.Addr().String(), Addr: ln.Addr().String()}
}

// testClient is a keep-alive client for loopback load; it never uses a proxy
// from the environment.
func testClient(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConnsPerHost: 64,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // test server certificate
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// result is a fully read response.
type result struct {
	status int
	header http.Header
	body   string
}

// do sends method to the edge at base with the given Host header and returns
// the response, read to the end. hdr holds header name/value pairs.
func do(t testing.TB, c *http.Client, method, base, host, path string, body string, hdr ...string) result {
	t.Helper()
	res, err := send(c, method, base, host, path, body, hdr...)
	require.NoError(t, err)
	return res
}

// send is do for goroutines other than the test's: it reports errors instead
// of failing the test.
func send(c *http.Client, method, base, host, path string, body string, hdr ...string) (result, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, base+path, rd)
	if err != nil {
		return result{}, err
	}
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		return result{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return result{}, err
	}
	return result{status: res.StatusCode, header: res.Header, body: string(b)}, nil
}

// deadAddr returns a loopback address where nothing listens: connecting to it
// is refused.
func deadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// eventually waits for cond, failing the test after d.
func eventually(t testing.TB, d time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", d, msg)
		}
		time.Sleep(time.Millisecond)
	}
}

// holdHandler blocks every request until release is closed (or the client
// leaves), then answers id.
func holdHandler(id string, release <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, id)
	})
}
