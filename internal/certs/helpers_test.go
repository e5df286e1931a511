package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testLogger writes through t.Log until the test ends; certmagic's background
// goroutines may log after that, which t.Log would turn into a panic.
// BERTH_TEST_DEBUG=1 shows debug logs too.
func testLogger(t testing.TB) *slog.Logger {
	t.Helper()
	w := &tbWriter{t: t}
	t.Cleanup(w.stop)
	level := slog.LevelInfo
	if os.Getenv("BERTH_TEST_DEBUG") == "1" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type tbWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *tbWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// newTestManager opens a Manager on a fresh data directory whose ACME CA is a
// closed port, so no test reaches a real CA by accident.
func newTestManager(t testing.TB, opts Options) *Manager {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	if opts.ACMECA == "" {
		opts.ACMECA = "https://127.0.0.1:1/directory"
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	m, err := New(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// appHandler stands in for the edge: it names the protocol and host it saw.
var appHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = fmt.Fprintf(w, "app proto=%s host=%s path=%s", r.Proto, r.Host, r.URL.RequestURI())
})

// listen opens a TCP listener on a free loopback port.
func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

func portOf(t testing.TB, ln net.Listener) int {
	t.Helper()
	return ln.Addr().(*net.TCPAddr).Port
}

// serveTLS serves h over TLS on ln the way the daemon does: http.Server with
// TLSConfig and ServeTLS, which enables HTTP/2.
func serveTLS(t testing.TB, ln net.Listener, cfg *tls.Config, h http.Handler) string {
	t.Helper()
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         cfg,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(testLogger(t).Handler(), slog.LevelWarn),
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// serveHTTP serves h in plain HTTP on ln.
func serveHTTP(t testing.TB, ln net.Listener, h http.Handler) string {
	t.Helper()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// newClient returns a client that sends every request to addr whatever the
// URL's host (as if DNS said so), trusts roots only, speaks HTTP/2 when h2 is
// set and HTTP/1.1 otherwise, and does not follow redirects.
func newClient(t testing.TB, roots *x509.CertPool, addr string, h2 bool) *http.Client {
	t.Helper()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	protos := new(http.Protocols)
	if h2 {
		protos.SetHTTP2(true)
	} else {
		protos.SetHTTP1(true)
	}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
		Protocols: protos,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func poolOf(t testing.TB, pemData ...[]byte) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	for _, p := range pemData {
		require.True(t, pool.AppendCertsFromPEM(p), "no certificate in PEM")
	}
	return pool
}

// get does a GET and returns the response with its body read.
func get(t testing.TB, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

// hello is a ClientHelloInfo for direct GetCertificate calls, with a
// loopback connection as a real handshake has (certmagic logs its addresses).
func hello(name string, protos ...string) *tls.ClientHelloInfo {
	return &tls.ClientHelloInfo{ServerName: name, SupportedProtos: protos, Conn: loopbackConn{}}
}

// loopbackConn is a net.Conn that only knows its addresses.
type loopbackConn struct{ net.Conn }

func (loopbackConn) LocalAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8443} }
func (loopbackConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}
}
