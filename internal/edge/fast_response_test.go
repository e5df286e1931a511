package edge

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of the fast path's answers: every framing an instance may answer
// with, streams, and clients that leave while an answer comes, each as the
// net/http path behaves.

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
	e, plainSrv := newTestEdge(t, Options{}, webRoute(backend))
	tlsSrv := startTLSServer(t, &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}})
	srv := plainSrv

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
	// Over plain HTTP and over TLS, where the fast loop reads the same.
	for _, over := range []struct {
		name string
		srv  *testServer
		dial func(t testing.TB, addr string) *rawConn
	}{{"plain", plainSrv, dialRaw}, {"HTTPS", tlsSrv, dialTLS}} {
		srv := over.srv
		for _, tt := range tests {
			t.Run(over.name+"/"+strings.TrimPrefix(tt.path, "/"), func(t *testing.T) {
				method := cmp.Or(tt.method, http.MethodGet)
				rc := over.dial(t, srv.Addr)
				before := srv.FastRequests()
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
				assert.Equal(t, before+2, srv.FastRequests())
			})
		}
	}
	assert.Equal(t, int64(2), head.Load())

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
		before := srv.FastRequests()
		res, err := testClient(t).Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		assert.Equal(t, 200, res.StatusCode)
		assert.Equal(t, "ok", string(body))
		assert.Equal(t, []string{"103 </s.css>; rel=preload"}, hints)
		assert.Equal(t, before+1, srv.FastRequests())
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
			before := srv.FastRequests()
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/events", nil)
			require.NoError(t, err)
			req.Host = tt.host
			res, err := testClient(t).Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			require.Equal(t, 200, res.StatusCode)
			assert.Equal(t, before+1, srv.FastRequests())
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
	assert.Equal(t, int64(1), srv.FastRequests())
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
	require.Equal(t, int64(1), srv.FastRequests())
	require.NoError(t, rc.c.Close())
	select {
	case <-cancelled:
	case <-time.After(3 * time.Second):
		t.Fatal("the instance still streams to a client that left")
	}
	eventually(t, 2*time.Second, func() bool { return e.InFlight("web") == 0 }, "the stream released its backend")
}
