package h1

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/edge/h1/h1test"
)

const testHost = "web.shop.localhost"

// oneUpstream is a Handler that sends every request the fast path parsed to
// one backend (unless leave says net/http must have it), and keeps the
// results its exchanges were told.
type oneUpstream struct {
	addr  string
	tr    *Transport
	leave func(req *Request) bool
	// target, when set, changes the Target after addr and tr are set.
	target func(t *Target)

	mu      sync.Mutex
	results []Result
}

func (u *oneUpstream) Route(req *Request, t *Target) Exchange {
	if u.leave != nil && u.leave(req) {
		return nil
	}
	t.Addr, t.Transport = u.addr, u.tr
	if u.target != nil {
		u.target(t)
	}
	return (*oneExchange)(u)
}

func (u *oneUpstream) done() []Result {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Result(nil), u.results...)
}

// oneExchange follows a request of oneUpstream: there is no other
// address to retry, and a failure is worded by its kind.
type oneExchange oneUpstream

func (*oneExchange) Answered(int)               {}
func (*oneExchange) Retry(error) (string, bool) { return "", false }
func (*oneExchange) Failed(f Failure, _ error) (int, string, string) {
	if f == TimedOut {
		return http.StatusGatewayTimeout, "timeout", "no answer in time"
	}
	return http.StatusBadGateway, "upstream", "no answer"
}

func (x *oneExchange) Done(res *Result) {
	if res != nil {
		x.mu.Lock()
		x.results = append(x.results, *res)
		x.mu.Unlock()
	}
}

// newServer returns a Server whose fast path sends everything to backend,
// and whose net/http server proxies what it is handed to backend too.
func newServer(t testing.TB, backend *httptest.Server) (*Server, *oneUpstream) {
	t.Helper()
	tr := NewTransport(&http.Transport{DialContext: (&net.Dialer{Timeout: time.Second}).DialContext, MaxIdleConnsPerHost: 16, IdleConnTimeout: time.Minute})
	t.Cleanup(tr.CloseIdleConnections)
	u, err := url.Parse(backend.URL)
	require.NoError(t, err)
	up := &oneUpstream{addr: u.Host, tr: tr}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = tr
	return &Server{Handler: up, HTTP: &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}}, up
}

// serve runs s on a loopback listener and returns its address.
func serve(t testing.TB, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		_ = s.Close()
		require.ErrorIs(t, <-done, http.ErrServerClosed)
	})
	return ln.Addr().String()
}

// serveTLS runs s on a loopback HTTPS listener, with a test certificate,
// and returns its address.
func serveTLS(t testing.TB, s *Server) string {
	t.Helper()
	cs := httptest.NewUnstartedServer(http.NotFoundHandler())
	cs.StartTLS()
	cert := cs.TLS.Certificates[0]
	cs.Close()
	s.HTTP.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.ServeTLS(ln) }()
	t.Cleanup(func() {
		_ = s.Close()
		require.ErrorIs(t, <-done, http.ErrServerClosed)
	})
	return ln.Addr().String()
}

// rawConn is a client connection written and read byte by byte.
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

var rawGet = h1test.RawGet

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
