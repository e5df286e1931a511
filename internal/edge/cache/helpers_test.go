package cache

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testEpoch is where every test clock starts: a whole second, so that Date
// headers written from the clock lose nothing.
var testEpoch = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// clock is a test clock that moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: testEpoch} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// originFunc answers the n-th (1-based) request to reach the origin; clk is
// the stack's clock, for Date and Last-Modified.
type originFunc func(n int64, clk *clock, w http.ResponseWriter, r *http.Request)

// origin is a real HTTP server standing in for the origin; it counts the
// requests that reach it.
type origin struct {
	srv  *httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	reqs []*http.Request // headers of every request received
}

func newOrigin(t testing.TB, clk *clock, h originFunc) *origin {
	t.Helper()
	o := &origin{}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := o.hits.Add(1)
		o.mu.Lock()
		o.reqs = append(o.reqs, r.Clone(r.Context()))
		o.mu.Unlock()
		h(n, clk, w, r)
	}))
	t.Cleanup(o.srv.Close)
	return o
}

// lastRequest returns the last request the origin received.
func (o *origin) lastRequest() *http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.reqs) == 0 {
		return nil
	}
	return o.reqs[len(o.reqs)-1]
}

// stack is an origin behind a reverse proxy behind the cache, served by a
// real server on loopback.
type stack struct {
	origin *origin
	cache  *Cache
	clock  *clock
	front  *httptest.Server
	client *http.Client
}

// layout arranges the cache and the proxy into the front server's handler.
type layout func(c *Cache, proxy http.Handler) http.Handler

// newStack builds origin ← httputil.ReverseProxy ← Cache.Handler ← server;
// a layout, when given, arranges the handler otherwise (e.g. with Compress).
func newStack(t testing.TB, opts Options, h originFunc, lay ...layout) *stack {
	t.Helper()
	s := &stack{clock: newClock()}
	s.origin = newOrigin(t, s.clock, h)
	if opts.Now == nil {
		opts.Now = s.clock.Now
	}
	c, err := New(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	s.cache = c
	proxy := proxyTo(t, s.origin.srv.URL)
	handler := c.Handler(proxy)
	if len(lay) > 0 {
		handler = lay[0](c, proxy)
	}
	s.front = httptest.NewServer(handler)
	t.Cleanup(s.front.Close)
	s.client = testClient(t)
	return s
}

// proxyTo is a reverse proxy to rawURL that keeps the client's Host, as the
// edge does, and passes bodies through as encoded.
func proxyTo(t testing.TB, rawURL string) http.Handler {
	t.Helper()
	target, err := url.Parse(rawURL)
	require.NoError(t, err)
	tr := &http.Transport{Proxy: nil, DisableCompression: true, MaxIdleConnsPerHost: 128}
	t.Cleanup(tr.CloseIdleConnections)
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
		},
		Transport: tr,
		ErrorLog:  log.New(io.Discard, "", 0),
	}
}

// testClient is a keep-alive client that never uses a proxy from the
// environment and never asks for compression by itself.
func testClient(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{Proxy: nil, DisableCompression: true, MaxIdleConnsPerHost: 128}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// result is a response with its body read.
type result struct {
	*http.Response
	body string
}

// do sends one request through the stack. header may carry "Host".
func (s *stack) do(t testing.TB, method, path string, header map[string]string) result {
	t.Helper()
	req, err := http.NewRequest(method, s.front.URL+path, nil)
	require.NoError(t, err)
	for k, v := range header {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return result{resp, string(b)}
}

func (s *stack) get(t testing.TB, path string) result {
	t.Helper()
	return s.do(t, http.MethodGet, path, nil)
}

// setDate writes the Date header from the test clock, as an origin whose
// clock agrees with the cache's would.
func setDate(w http.ResponseWriter, c *clock) {
	w.Header().Set("Date", c.Now().Format(http.TimeFormat))
}
