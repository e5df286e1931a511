package edge

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/edge/h1/h1test"
)

// Tests of the framing checks (h1/framing.go): requests nginx answers 400
// (or 501) get the same answer from the edge on every path, and nothing of
// them reaches an instance.

// seenPaths is an instance that records the paths it was asked for.
type seenPaths struct {
	mu    sync.Mutex
	paths []string
}

func (s *seenPaths) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.paths = append(s.paths, r.URL.Path)
		s.mu.Unlock()
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, "ok:"+string(b))
	})
}

func (s *seenPaths) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...)
}

// expectRefused reads the edge's refusal from rc and checks that the
// connection is closed after it.
func expectRefused(t *testing.T, rc *rawConn, status int) {
	t.Helper()
	res, body := rc.read(http.MethodGet)
	assert.Equal(t, status, res.StatusCode, body)
	assert.Equal(t, ReasonBadRequest, res.Header.Get(ErrorHeader), "the edge's own page")
	assert.True(t, res.Close, "Connection: close")
	assert.Contains(t, body, http.StatusText(status)+": ")
	rc.expectEOF()
}

func TestFramingRefusedOnEveryPath(t *testing.T) {
	var seen seenPaths
	backend := newTestBackend(t, "web", seen.handler())
	e, srv := newTestEdge(t, Options{}, webRoute(backend.Backend))
	tlsSrv := startTLSServer(t, &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}})

	// Each path reaches the refused request its own way: as the first
	// request on a plain connection (the fast path's loop reads it and
	// hands it over), after a request net/http served on the same
	// connection, pipelined behind a request the fast path served, and
	// on HTTPS.
	paths := []struct {
		name string
		run  func(t *testing.T, raw string, status int)
	}{
		{"first request", func(t *testing.T, raw string, status int) {
			rc := dialRaw(t, srv.Addr)
			rc.write(h1test.Shape(raw, fastHost))
			expectRefused(t, rc, status)
		}},
		{"after a request net/http served", func(t *testing.T, raw string, status int) {
			rc := dialRaw(t, srv.Addr)
			rc.write("POST /first HTTP/1.1\r\nHost: " + fastHost + "\r\nContent-Length: 2\r\n\r\nhi")
			res, body := rc.read(http.MethodPost)
			require.Equal(t, http.StatusOK, res.StatusCode)
			require.Equal(t, "ok:hi", body)
			rc.write(h1test.Shape(raw, fastHost))
			expectRefused(t, rc, status)
		}},
		{"pipelined after a fast request", func(t *testing.T, raw string, status int) {
			rc := dialRaw(t, srv.Addr)
			rc.write(rawGet(fastHost, "/first") + h1test.Shape(raw, fastHost))
			res, body := rc.read(http.MethodGet)
			require.Equal(t, http.StatusOK, res.StatusCode)
			require.Equal(t, "ok:", body)
			expectRefused(t, rc, status)
		}},
		{"pipelined after a POST", func(t *testing.T, raw string, status int) {
			rc := dialRaw(t, srv.Addr)
			rc.write("POST /first HTTP/1.1\r\nHost: " + fastHost + "\r\nContent-Length: 2\r\n\r\nhi" + h1test.Shape(raw, fastHost))
			res, body := rc.read(http.MethodPost)
			require.Equal(t, http.StatusOK, res.StatusCode)
			require.Equal(t, "ok:hi", body)
			expectRefused(t, rc, status)
		}},
		{"HTTPS", func(t *testing.T, raw string, status int) {
			rc := dialTLS(t, tlsSrv.Addr)
			rc.write("GET /first HTTP/1.1\r\nHost: " + fastHost + "\r\n\r\n")
			res, _ := rc.read(http.MethodGet)
			require.Equal(t, http.StatusOK, res.StatusCode)
			rc.write(h1test.Shape(raw, fastHost))
			expectRefused(t, rc, status)
		}},
	}
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			for _, s := range h1test.FramingShapes {
				t.Run(s.Name, func(t *testing.T) { p.run(t, s.Raw, s.Status) })
			}
		})
	}
	for _, path := range seen.list() {
		assert.Equal(t, "/first", path, "only the good requests reach the instance")
	}
}

// dialTLS opens an HTTP/1.1 connection over TLS, read and written raw.
func dialTLS(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}) //nolint:gosec // test server certificate
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

// startTLSServer serves s on a loopback HTTPS listener, with the
// certificate httptest makes for 127.0.0.1.
func startTLSServer(t testing.TB, s *Server) *testServer {
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
	return &testServer{Server: s, URL: "https://" + ln.Addr().String(), Addr: ln.Addr().String()}
}

func TestFramingGoodRequestsPass(t *testing.T) {
	var seen seenPaths
	backend := newTestBackend(t, "web", seen.handler())
	e, srv := newTestEdge(t, Options{}, webRoute(backend.Backend))
	tlsSrv := startTLSServer(t, &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}})

	// One connection carries every framing the edge takes, pipelined, so
	// that each request starts where the framing checks say the one
	// before ended.
	reqs := []struct{ raw, method, body string }{
		{"POST /a HTTP/1.1\r\nHost: H\r\nContent-Length: 5\r\n\r\nhello", http.MethodPost, "ok:hello"},
		{"POST /b HTTP/1.1\r\nHost: H\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n", http.MethodPost, "ok:hello world"},
		{"POST /c HTTP/1.1\r\nHost: H\r\ntransfer-encoding: Chunked\r\n\r\n0\r\n\r\n", http.MethodPost, "ok:"},
		{"GET /d HTTP/1.1\nHost: H\n\n", http.MethodGet, "ok:"},
		{"HEAD /e HTTP/1.1\r\nHost: H\r\nContent-Length: 0\r\n\r\n", http.MethodHead, ""},
		{"PUT /f HTTP/1.0\r\nHost: H\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc", http.MethodPut, "ok:abc"},
		{"GET /g HTTP/1.1\r\nHost: H\r\nX-Long: " + strings.Repeat("v", 8000) + "\r\n\r\n", http.MethodGet, "ok:"},
	}
	var all strings.Builder
	for _, r := range reqs {
		all.WriteString(strings.ReplaceAll(r.raw, "H\r", fastHost+"\r"))
	}
	stream := strings.ReplaceAll(all.String(), "Host: H\n", "Host: "+fastHost+"\n")
	for name, dial := range map[string]func() *rawConn{
		"plain": func() *rawConn { return dialRaw(t, srv.Addr) },
		"HTTPS": func() *rawConn { return dialTLS(t, tlsSrv.Addr) },
	} {
		t.Run(name, func(t *testing.T) {
			rc := dial()
			// Byte by byte too, so that every boundary falls inside a read.
			half := len(stream) / 2
			rc.write(stream[:half])
			for i := half; i < half+300 && i < len(stream); i++ {
				rc.write(stream[i : i+1])
			}
			rc.write(stream[min(half+300, len(stream)):])
			for _, r := range reqs {
				res, body := rc.read(r.method)
				assert.Equal(t, http.StatusOK, res.StatusCode, r.raw)
				assert.Equal(t, r.body, body, r.raw)
			}
		})
	}
}

func TestFramingMalformedChunkIsTheClientsFault(t *testing.T) {
	var seen seenPaths
	backend := newTestBackend(t, "web", seen.handler())
	e, srv := newTestEdge(t, Options{}, webRoute(backend.Backend))
	tlsSrv := startTLSServer(t, &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}})

	chunks := []struct{ name, body string }{
		{"not a hex size", "5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n"},
		{"no CRLF after the data", "5\r\nhelloXX0\r\n\r\n"},
		{"bare LF after the size", "5\nhello\r\n0\r\n\r\n"},
		{"size too large", "ffffffffffffffffff\r\nhello\r\n0\r\n\r\n"},
		{"obs-fold in a trailer", "5\r\nhello\r\n0\r\nX-T: 1\r\n 2\r\n\r\n"},
		{"control character in an extension", "5;a=\x01\r\nhello\r\n0\r\n\r\n"},
	}
	for _, path := range []struct {
		name string
		dial func() *rawConn
	}{
		{"plain", func() *rawConn { return dialRaw(t, srv.Addr) }},
		{"HTTPS", func() *rawConn { return dialTLS(t, tlsSrv.Addr) }},
	} {
		t.Run(path.name, func(t *testing.T) {
			for _, c := range chunks {
				t.Run(c.name, func(t *testing.T) {
					rc := path.dial()
					rc.write("POST /chunked HTTP/1.1\r\nHost: " + fastHost + "\r\nTransfer-Encoding: chunked\r\n\r\n" + c.body + rawGet(fastHost, "/after"))
					res, body := rc.read(http.MethodPost)
					assert.Equal(t, http.StatusBadRequest, res.StatusCode, body)
					assert.Equal(t, ReasonBadRequest, res.Header.Get(ErrorHeader))
					assert.True(t, res.Close, "Connection: close")
					rc.expectEOF()
				})
			}
		})
	}
	assert.NotContains(t, seen.list(), "/after")
	// The instance did nothing wrong: it is still in rotation and
	// answers the next request.
	c := testClient(t)
	for range 5 {
		res := do(t, c, http.MethodPost, srv.URL, fastHost, "/next", "x")
		assert.Equal(t, http.StatusOK, res.status)
		assert.Equal(t, "ok:x", res.body)
	}
}

func TestFramingDeclinedUpgradeThenRefused(t *testing.T) {
	// An instance that declines every upgrade: the connection stays
	// HTTP, and the framing checks go on after the upgrade request.
	var seen seenPaths
	backend := newTestBackend(t, "web", seen.handler())
	_, srv := newTestEdge(t, Options{}, webRoute(backend.Backend))

	rc := dialRaw(t, srv.Addr)
	rc.write("GET /first HTTP/1.1\r\nHost: " + fastHost + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" +
		h1test.Shape(h1test.FramingShapes[0].Raw, fastHost))
	res, _ := rc.read(http.MethodGet)
	require.Equal(t, http.StatusOK, res.StatusCode)
	expectRefused(t, rc, http.StatusBadRequest)
	assert.Equal(t, []string{"/first"}, seen.list())
}

func TestTLSServerSpeaksHTTP2AndSetsTLS(t *testing.T) {
	backend := newTestBackend(t, "web", reportHandler(http.StatusOK))
	e := New(Options{})
	e.Update(webRoute(backend.Backend))
	tlsSrv := startTLSServer(t, &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}})

	for _, h2 := range []bool{true, false} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: h2} //nolint:gosec // test server certificate
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		t.Cleanup(tr.CloseIdleConnections)
		req, err := http.NewRequest(http.MethodGet, tlsSrv.URL+"/x", nil)
		require.NoError(t, err)
		req.Host = fastHost
		res, err := tr.RoundTrip(req)
		require.NoError(t, err)
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		_ = res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode)
		if h2 {
			assert.Equal(t, 2, res.ProtoMajor)
		} else {
			assert.Equal(t, 1, res.ProtoMajor)
		}
		seen := decodeSeen(t, string(b))
		assert.Equal(t, "https", seen.Header.Get("X-Forwarded-Proto"), "Request.TLS is set")
	}
}

func TestXRealIPIsThePeer(t *testing.T) {
	for _, trust := range []bool{false, true} {
		backend := newTestBackend(t, "web", reportHandler(http.StatusOK))
		e, srv := newTestEdge(t, Options{TrustForwarded: trust}, webRoute(backend.Backend))
		tlsSrv := startTLSServer(t, &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}})
		c := testClient(t)
		want := "127.0.0.1"
		if trust {
			want = "203.0.113.9" // a proxy in front of the edge said so
		}
		for _, tc := range []struct{ name, base, method string }{
			{"fast path", srv.URL, http.MethodGet},
			{"net/http", srv.URL, http.MethodPost},
			{"HTTPS", tlsSrv.URL, http.MethodGet},
		} {
			before := srv.FastRequests()
			res := do(t, c, tc.method, tc.base, fastHost, "/", "", "X-Real-IP", "203.0.113.9")
			require.Equal(t, http.StatusOK, res.status)
			seen := decodeSeen(t, res.body)
			assert.Equal(t, []string{want}, seen.Header["X-Real-Ip"], "%s, trust %v", tc.name, trust)
			if tc.name == "fast path" {
				assert.Equal(t, before+1, srv.FastRequests(), "served on the fast path")
			}
			// Without a client's value, the peer's address.
			res = do(t, c, tc.method, tc.base, fastHost, "/", "")
			seen = decodeSeen(t, res.body)
			assert.Equal(t, []string{"127.0.0.1"}, seen.Header["X-Real-Ip"], tc.name)
		}
	}
}

func TestForwardingHeadersWithUnderscoresAreStripped(t *testing.T) {
	// Many app servers (CGI, WSGI, ASGI, Rack) read X_Real_IP as
	// X-Real-IP (both become HTTP_X_REAL_IP), and join the two: a client
	// that spells a forwarding header with underscores must not get its
	// value past an edge that does not trust it, as nginx drops such
	// names.
	backend := newTestBackend(t, "web", reportHandler(http.StatusOK))
	e, srv := newTestEdge(t, Options{}, webRoute(backend.Backend))
	tlsSrv := startTLSServer(t, &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}})
	c := testClient(t)
	for _, tc := range []struct{ name, base, method string }{
		{"fast path", srv.URL, http.MethodGet},
		{"net/http", srv.URL, http.MethodPost},
		{"HTTPS", tlsSrv.URL, http.MethodGet},
	} {
		before := srv.FastRequests()
		res := do(t, c, tc.method, tc.base, fastHost, "/", "",
			"X_Real_IP", "203.0.113.9", "X_Forwarded_For", "203.0.113.9", "x_forwarded_host", "evil.example", "X_FORWARDED_PROTO", "https")
		require.Equal(t, http.StatusOK, res.status)
		seen := decodeSeen(t, res.body)
		for name := range seen.Header {
			assert.NotContains(t, name, "_", "%s: %s reached the instance", tc.name, name)
		}
		assert.Equal(t, []string{"127.0.0.1"}, seen.Header["X-Real-Ip"], tc.name)
		assert.Equal(t, []string{"127.0.0.1"}, seen.Header["X-Forwarded-For"], tc.name)
		assert.Equal(t, []string{fastHost}, seen.Header["X-Forwarded-Host"], tc.name)
		if tc.name == "fast path" {
			assert.Equal(t, before+1, srv.FastRequests(), "served on the fast path")
		}
	}
}

func TestFramingWebSocketOverHTTPS(t *testing.T) {
	// After the 101 the connection carries WebSocket frames, which the
	// framing checks must pass on untouched.
	ws := newTestBackend(t, "ws", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		for {
			typ, msg, err := conn.Read(r.Context())
			if err != nil {
				return
			}
			if err := conn.Write(r.Context(), typ, append([]byte("echo "), msg...)); err != nil {
				return
			}
		}
	}))
	e := New(Options{})
	e.Update(Route{Key: "shop/ws", Hosts: []string{"ws.shop.localhost"}, Backends: backendsOf(ws)})
	tlsSrv := startTLSServer(t, &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}})
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // test server certificate
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	t.Cleanup(tr.CloseIdleConnections)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, res, err := websocket.Dial(ctx, "wss"+strings.TrimPrefix(tlsSrv.URL, "https")+"/socket", &websocket.DialOptions{Host: "ws.shop.localhost", HTTPClient: &http.Client{Transport: tr}})
	require.NoError(t, err)
	defer conn.CloseNow()
	assert.Equal(t, http.StatusSwitchingProtocols, res.StatusCode)
	for _, msg := range []string{"hello", "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"} {
		require.NoError(t, conn.Write(ctx, websocket.MessageText, []byte(msg)))
		_, got, err := conn.Read(ctx)
		require.NoError(t, err)
		assert.Equal(t, "echo "+msg, string(got))
	}
	require.NoError(t, conn.Close(websocket.StatusNormalClosure, ""))
}

func TestFramingHoldsBytesSentBeforeTheSwitch(t *testing.T) {
	// A client that sends its first bytes of the new protocol right
	// behind the upgrade request: the framing checks hold them until the
	// switch, then pass them on as they are, though they are not HTTP.
	echo := newTestBackend(t, "up", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		_, _ = io.Copy(c, brw)
	}))
	_, srv := newTestEdge(t, Options{}, webRoute(echo.Backend))
	const early = "Content-Length: 1\r\n Transfer-Encoding: chunked\r\n\r\n"
	rc := dialRaw(t, srv.Addr)
	rc.write("GET /up HTTP/1.1\r\nHost: " + fastHost + "\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n" + early)
	res, err := http.ReadResponse(rc.br, &http.Request{Method: http.MethodGet})
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, res.StatusCode)
	got := make([]byte, len(early))
	_, err = io.ReadFull(rc.br, got)
	require.NoError(t, err)
	assert.Equal(t, early, string(got))
}
