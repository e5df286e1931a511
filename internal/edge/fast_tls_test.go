package edge

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of the fast path over HTTPS: an HTTP/1.1 connection is served by
// the fast loop over TLS, and its answers are the net/http path's over
// TLS (forwarding headers with https, HSTS, no redirect to HTTPS).

// oldTLSServer is the edge behind net/http's own HTTPS server only, the
// reference the fast path over TLS is compared with.
func oldTLSServer(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	old := httptest.NewUnstartedServer(h)
	old.StartTLS()
	t.Cleanup(old.Close)
	return old
}

// h1Client is a keep-alive HTTPS client that speaks HTTP/1.1 only.
func h1Client(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{
		Proxy:               nil,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}, //nolint:gosec // test server certificate
		ForceAttemptHTTP2:   false,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		MaxIdleConnsPerHost: 64,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func TestFastPathOverTLSServiceRoute(t *testing.T) {
	backend := newTestBackend(t, "web", reportHandler(http.StatusAccepted))
	for _, trust := range []bool{false, true} {
		e := New(Options{TrustForwarded: trust})
		e.Update(webRoute(backend.Backend))
		t.Cleanup(e.CloseIdleConnections)
		srv := startTLSServer(t, &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}})
		old := oldTLSServer(t, e)
		c := h1Client(t)
		hdr := []string{"X-Forwarded-For", "6.6.6.6", "X-Forwarded-Host", "evil.example", "X-Other", "kept"}

		before := srv.FastRequests()
		res := do(t, c, http.MethodGet, srv.URL, fastHost, "/p/a%20b?q=1", "", hdr...)
		require.Equal(t, http.StatusAccepted, res.status, res.body)
		assert.Equal(t, before+1, srv.FastRequests(), "served on the fast path over TLS")
		ref := do(t, c, http.MethodGet, old.URL, fastHost, "/p/a%20b?q=1", "", hdr...)
		require.Equal(t, http.StatusAccepted, ref.status, ref.body)

		got, want := decodeSeen(t, res.body), decodeSeen(t, ref.body)
		assert.Equal(t, []string{"https"}, got.Header["X-Forwarded-Proto"], "trust=%v", trust)
		assert.Equal(t, want.URI, got.URI)
		for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-Ip", "X-Other"} {
			assert.Equal(t, want.Header[k], got.Header[k], "%s as the net/http path sends it (trust=%v)", k, trust)
		}
		assert.Equal(t, ref.header.Get("Content-Type"), res.header.Get("Content-Type"))
		assert.Equal(t, ref.header.Get("X-App"), res.header.Get("X-App"))

		// A request the fast path does not take hands the TLS connection
		// to net/http, which still sees it as HTTPS.
		res = do(t, c, http.MethodPost, srv.URL, fastHost, "/post", "body", hdr...)
		require.Equal(t, http.StatusAccepted, res.status, res.body)
		assert.Equal(t, []string{"https"}, decodeSeen(t, res.body).Header["X-Forwarded-Proto"])
	}
}

// Pipelined requests over TLS, each in a record of its own and all sent
// before the first answer, are all answered, and then a request the fast
// path does not take goes to net/http with the records behind it: what
// crypto/tls read ahead of the fast path's reader is not lost, and the
// loop does not wait for a socket it has already read (h1's serveLoop).
func TestFastPathOverTLSPipelining(t *testing.T) {
	backend := newTestBackend(t, "web", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "path="+r.URL.Path)
	}))
	e := New(Options{})
	e.Update(webRoute(backend.Backend))
	t.Cleanup(e.CloseIdleConnections)
	srv := startTLSServer(t, &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}})
	rc := dialTLS(t, srv.Addr)
	var want []string
	for i := range 40 {
		path := fmt.Sprintf("/%02d", i)
		if i == 30 {
			rc.write("POST " + path + " HTTP/1.1\r\nHost: " + fastHost + "\r\nContent-Length: 3\r\n\r\nabc")
		} else {
			rc.write(rawGet(fastHost, path, "X-Pad: "+strings.Repeat("p", 100)))
		}
		want = append(want, "path="+path)
	}
	for i, w := range want {
		res, body := rc.read(http.MethodGet)
		require.Equal(t, http.StatusOK, res.StatusCode, "answer %d", i)
		require.Equal(t, w, body)
	}
	assert.Equal(t, int64(30), srv.FastRequests(), "the fast path served up to the POST, net/http the rest")
}

func TestFastPathOverTLSEntrypoint(t *testing.T) {
	ext, seen := plainOrigin(t)
	e := New(Options{HTTPSPort: "8443"})
	t.Cleanup(e.CloseIdleConnections)
	ctl := Controls{AddHeaders: map[string]string{"X-Edge": "berth", "Strict-Transport-Security": "max-age=1"}, RemoveHeaders: []string{"X-Internal"}}
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "site", Hosts: []string{"site.example.com"}, Origin: urlOrigin(t, ext.URL),
		RedirectHTTPS: true, HSTS: 24 * time.Hour, Controls: ctl}))
	require.NoError(t, e.SetEntrypoint(Entrypoint{Name: "gone", Hosts: []string{"gone.example.com"}, Origin: urlOrigin(t, "http://"+deadAddr(t)),
		HSTS: time.Hour}))
	srv := startTLSServer(t, &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}})
	old := oldTLSServer(t, e)
	c := h1Client(t)

	var answers [2]result
	for i, base := range []string{srv.URL, old.URL} {
		res := do(t, c, http.MethodGet, base, "site.example.com", "/x", "")
		<-seen
		assert.Equal(t, http.StatusOK, res.status, "no redirect over HTTPS: %s", base)
		assert.Equal(t, "plain:/x", res.body)
		assert.Equal(t, []string{"max-age=86400"}, res.header.Values("Strict-Transport-Security"), base)
		assert.Equal(t, "berth", res.header.Get("X-Edge"), base)
		assert.Empty(t, res.header.Values("X-Internal"), base)
		answers[i] = res

		res = do(t, c, http.MethodGet, base, "gone.example.com", "/", "")
		assert.Equal(t, http.StatusBadGateway, res.status, base)
		assert.Equal(t, []string{"max-age=3600"}, res.header.Values("Strict-Transport-Security"), "the edge's own page too: %s", base)
	}
	assert.Equal(t, int64(2), srv.FastRequests())
	for _, k := range []string{"Content-Type", "Content-Length", "X-Origin"} {
		assert.Equal(t, answers[1].header.Values(k), answers[0].header.Values(k), k)
	}

	// Plain HTTP on the same edge is still redirected, by net/http.
	plain := startServer(t, &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}})
	req, err := http.NewRequest(http.MethodGet, plain.URL+"/x", nil)
	require.NoError(t, err)
	req.Host = "site.example.com"
	nc := testClient(t)
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	hres, err := nc.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, hres.Body)
	hres.Body.Close()
	assert.Equal(t, http.StatusPermanentRedirect, hres.StatusCode)
	assert.Equal(t, []string{"max-age=1"}, hres.Header.Values("Strict-Transport-Security"), "over plain HTTP the controls' value, not HSTS")
	assert.Zero(t, plain.FastRequests())
}

// HTTP/2 clients still get HTTP/2, from net/http, on the server whose
// HTTP/1.1 connections the fast loop serves.
func TestFastPathOverTLSLeavesHTTP2(t *testing.T) {
	backend := newTestBackend(t, "web", reportHandler(http.StatusOK))
	e := New(Options{})
	e.Update(webRoute(backend.Backend))
	t.Cleanup(e.CloseIdleConnections)
	srv := startTLSServer(t, &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}})
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true} //nolint:gosec // test server certificate
	t.Cleanup(tr.CloseIdleConnections)
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	require.NoError(t, err)
	req.Host = fastHost
	res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, 2, res.ProtoMajor)
	assert.Equal(t, []string{"https"}, decodeSeen(t, string(body)).Header["X-Forwarded-Proto"])
	assert.Zero(t, srv.FastRequests())
}

// A client over TLS that leaves while its request waits for an answer, or
// while an answer streams, has its request cancelled at the instance, as
// on plain HTTP: the client watch reads the TLS connection, and a read
// it interrupts leaves the connection usable.
func TestFastPathOverTLSClientGone(t *testing.T) {
	cancelled := make(chan string, 2)
	backend := newTestBackend(t, "app", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/events" {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: one\n\n")
			_ = http.NewResponseController(w).Flush()
		}
		if r.URL.Path == "/quick" {
			time.Sleep(300 * time.Millisecond) // past the client watch's start
			_, _ = io.WriteString(w, "quick")
			return
		}
		select {
		case <-r.Context().Done():
			cancelled <- r.URL.Path
		case <-time.After(5 * time.Second): // fail, not hang
		}
	}))
	e := New(Options{})
	e.Update(webRoute(backend.Backend))
	t.Cleanup(e.CloseIdleConnections)
	srv := startTLSServer(t, &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}})

	// The watch interrupts its read when the answer comes: the same
	// TLS connection carries the next request.
	rc := dialTLS(t, srv.Addr)
	rc.write(rawGet(fastHost, "/quick"))
	_, body := rc.read(http.MethodGet)
	assert.Equal(t, "quick", body)
	rc.write(rawGet(fastHost, "/quick"))
	_, body = rc.read(http.MethodGet)
	assert.Equal(t, "quick", body)
	assert.Equal(t, int64(2), srv.FastRequests())

	for _, path := range []string{"/wait", "/events"} {
		rc := dialTLS(t, srv.Addr)
		rc.write(rawGet(fastHost, path))
		if path == "/events" {
			res, err := http.ReadResponse(rc.br, nil)
			require.NoError(t, err)
			ev := make([]byte, len("data: one\n\n"))
			_, err = io.ReadFull(res.Body, ev)
			require.NoError(t, err)
		} else {
			time.Sleep(300 * time.Millisecond) // the request waits at the instance
		}
		require.NoError(t, rc.c.Close())
		select {
		case got := <-cancelled:
			assert.Equal(t, path, got)
		case <-time.After(3 * time.Second):
			t.Fatalf("%s: the instance still works for a client that left", path)
		}
	}
	eventually(t, 2*time.Second, func() bool { return e.InFlight("app") == 0 }, "the requests released their backend")
}
