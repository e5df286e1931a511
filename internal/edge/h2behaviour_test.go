package edge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/berth-dev/berth/internal/edge/h2/h2test"
)

// Black-box tests of HTTP/2 on the edge's HTTPS listener (Server.ServeTLS):
// what an HTTP/2 client sees on the wire and what the backend sees,
// whichever HTTP/2 server the edge hands its "h2" connections to. Go's
// HTTP/2 client plays the browser; a raw client over the x/net/http2
// Framer sends what a browser would not (bare RST_STREAM, forbidden
// headers, floods) and watches frames a client library hides (GOAWAY,
// CONTINUATION, SETTINGS). Where RFC 9113 leaves a server a choice, the
// tests accept the whole class of outcomes it allows.

// h2Edge serves an edge with one route, fastHost, to a backend running h,
// on a loopback HTTPS listener; tune adjusts the http.Server first.
func h2Edge(t testing.TB, h http.Handler, tune ...func(*http.Server)) (*Edge, *testServer, *testBackend) {
	t.Helper()
	backend := newTestBackend(t, "web", h)
	e := New(Options{})
	t.Cleanup(e.CloseIdleConnections)
	e.Update(webRoute(backend.Backend))
	hs := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	for _, f := range tune {
		f(hs)
	}
	return e, startTLSServer(t, &Server{Edge: e, HTTP: hs}), backend
}

// h2Request is a request to the edge at srv for fastHost.
func h2Request(t testing.TB, ctx context.Context, srv *testServer, method, path string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, body)
	require.NoError(t, err)
	req.Host = fastHost
	return req
}

// patternBytes returns the first n bytes of the stream that seed names.
func patternBytes(seed byte, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

func TestHTTP2BodiesBothWays(t *testing.T) {
	const up, down = 8 << 20, 16 << 20
	answer := patternBytes(2, down)
	_, srv, _ := h2Edge(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sum":
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			_, _ = fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
		case "/big":
			if r.URL.Query().Has("length") {
				w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
			}
			_, _ = w.Write(answer)
		}
	}))
	c := h2Client(t)

	t.Run("8 MiB request body", func(t *testing.T) {
		body := patternBytes(1, up)
		res, err := c.Do(h2Request(t, t.Context(), srv, http.MethodPost, "/sum", bytes.NewReader(body)))
		require.NoError(t, err)
		defer res.Body.Close()
		got, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		require.Equal(t, 2, res.ProtoMajor)
		require.Equal(t, http.StatusOK, res.StatusCode, string(got))
		assert.Equal(t, fmt.Sprintf("%d %x", up, sha256.Sum256(body)), string(got), "the backend got the body whole")
	})
	t.Run("16 MiB answer to a 16 KiB window", func(t *testing.T) {
		h := dialH2Window(t, srv.Addr, 16<<10)
		h.send(1, http.MethodGet, "/big?length", true)
		st := h.stream(1)
		h.until("the answer", func() bool { return st.ended || st.reset != nil })
		assert.Equal(t, 200, st.status)
		assert.Empty(t, h.overrun, "the server sent past the client's windows")
		assert.True(t, bytes.Equal(answer, st.body), "the client got the answer whole (%d of %d bytes)", len(st.body), len(answer))
	})
	for _, path := range []string{"/big?length", "/big"} {
		t.Run("16 MiB answer "+path, func(t *testing.T) {
			res, err := c.Do(h2Request(t, t.Context(), srv, http.MethodGet, path, nil))
			require.NoError(t, err)
			defer res.Body.Close()
			require.Equal(t, 2, res.ProtoMajor)
			require.Equal(t, http.StatusOK, res.StatusCode)
			h := sha256.New()
			n, err := io.Copy(h, res.Body)
			require.NoError(t, err)
			assert.Equal(t, int64(down), n)
			want := sha256.Sum256(answer)
			assert.Equal(t, hex.EncodeToString(want[:]), hex.EncodeToString(h.Sum(nil)), "the client got the answer whole")
		})
	}
}

// Many streams at once on one connection: the backend answers none until
// it holds all of them, so they are in flight together, and each gets its
// own answer.
func TestHTTP2ConcurrentStreamsOneConnection(t *testing.T) {
	const n = 200
	var arrived atomic.Int32
	all := make(chan struct{})
	_, srv, _ := h2Edge(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if arrived.Add(1) == n {
			close(all)
		}
		select {
		case <-all:
		case <-time.After(5 * time.Second):
			http.Error(w, "the requests did not arrive together", http.StatusServiceUnavailable)
			return
		}
		_, _ = fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Query().Get("i"), body)
	}))
	tc, err := tls.Dial("tcp", srv.Addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}) //nolint:gosec // test server certificate
	require.NoError(t, err)
	t.Cleanup(func() { _ = tc.Close() })
	require.Equal(t, "h2", tc.ConnectionState().NegotiatedProtocol)
	// Strict: a request waits for a stream rather than fail while the
	// client still assumes the 100 streams of RFC 9113 before the
	// server's SETTINGS.
	cc, err := (&http2.Transport{StrictMaxConcurrentStreams: true}).NewClientConn(tc)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	answers := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		// Half GETs, half POSTs with a body: both ways through the edge.
		req := h2Request(t, ctx, srv, http.MethodGet, "/?i="+strconv.Itoa(i), nil)
		if i%2 == 1 {
			req = h2Request(t, ctx, srv, http.MethodPost, "/?i="+strconv.Itoa(i), strings.NewReader("body"+strconv.Itoa(i)))
		}
		wg.Go(func() {
			res, err := cc.RoundTrip(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			answers[i], errs[i] = fmt.Sprintf("%d %s", res.StatusCode, b), err
		})
	}
	wg.Wait()
	for i := range n {
		want := fmt.Sprintf("200 GET %d ", i)
		if i%2 == 1 {
			want = fmt.Sprintf("200 POST %d body%d", i, i)
		}
		if assert.NoError(t, errs[i], i) {
			assert.Equal(t, want, answers[i])
		}
	}
}

// Trailers from the backend, announced (gRPC's) or not (http.TrailerPrefix),
// reach the HTTP/2 client as trailers.
func TestHTTP2Trailers(t *testing.T) {
	_, srv, _ := h2Edge(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
		w.Header().Set("Content-Type", "application/grpc")
		_, _ = io.WriteString(w, "\x00\x00\x00\x00\x02hi")
		_ = http.NewResponseController(w).Flush()
		w.Header().Set("Grpc-Status", "0")
		w.Header().Set("Grpc-Message", "all good")
		w.Header().Set(http.TrailerPrefix+"X-Checksum", "c0ffee")
	}))
	c := h2Client(t)
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		t.Run(method, func(t *testing.T) {
			var body io.Reader
			if method == http.MethodPost {
				body = strings.NewReader("\x00\x00\x00\x00\x02yo")
			}
			req := h2Request(t, t.Context(), srv, method, "/pkg.Service/Call", body)
			req.Header.Set("Content-Type", "application/grpc")
			req.Header.Set("Te", "trailers")
			res, err := c.Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			got, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			require.Equal(t, 2, res.ProtoMajor)
			assert.Equal(t, http.StatusOK, res.StatusCode)
			assert.Equal(t, "\x00\x00\x00\x00\x02hi", string(got))
			assert.Equal(t, "0", res.Trailer.Get("Grpc-Status"), "trailers: %v", res.Trailer)
			assert.Equal(t, "all good", res.Trailer.Get("Grpc-Message"))
			assert.Equal(t, "c0ffee", res.Trailer.Get("X-Checksum"), "an undeclared trailer")
			assert.Empty(t, res.Header.Get("Grpc-Status"), "a trailer is not a header")
		})
	}
	t.Run("on the wire", func(t *testing.T) {
		// Trailers are a header block after the DATA, ending the stream.
		h := dialH2(t, srv.Addr)
		h.send(1, http.MethodPost, "/pkg.Service/Call", false, "content-type", "application/grpc", "te", "trailers")
		h.data(1, true, []byte("\x00\x00\x00\x00\x02yo"))
		st := h.stream(1)
		h.until("the answer", func() bool { return st.ended || st.reset != nil })
		assert.Equal(t, 200, st.status)
		assert.Equal(t, "\x00\x00\x00\x00\x02hi", string(st.body))
		assert.Equal(t, http.Header{"Grpc-Status": {"0"}, "Grpc-Message": {"all good"}, "X-Checksum": {"c0ffee"}}, st.trailer)
	})
}

// A streamed answer reaches the client as the backend flushes it, not when
// the backend is done.
func TestHTTP2StreamedAnswer(t *testing.T) {
	release := map[string]chan struct{}{http.MethodGet: make(chan struct{}), http.MethodPost: make(chan struct{})}
	_, srv, _ := h2Edge(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: one\n\n")
		_ = http.NewResponseController(w).Flush()
		select {
		case <-release[r.Method]:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "data: two\n\n")
	}))
	c := h2Client(t)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			var body io.Reader
			if method == http.MethodPost {
				body = strings.NewReader("subscribe")
			}
			res, err := c.Do(h2Request(t, t.Context(), srv, method, "/events", body))
			require.NoError(t, err)
			defer res.Body.Close()
			require.Equal(t, 2, res.ProtoMajor)
			assert.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
			first := make(chan string, 1)
			go func() {
				b := make([]byte, len("data: one\n\n"))
				if _, err := io.ReadFull(res.Body, b); err != nil {
					first <- err.Error()
					return
				}
				first <- string(b)
			}()
			select {
			case ev := <-first:
				require.Equal(t, "data: one\n\n", ev)
			case <-time.After(5 * time.Second):
				t.Fatal("the first event did not reach the client while the backend was still answering")
			}
			close(release[method])
			rest, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			assert.Equal(t, "data: two\n\n", string(rest))
		})
	}
}

// A client that resets its stream has the request cancelled at the
// backend, and its connection keeps serving.
func TestHTTP2ClientCancel(t *testing.T) {
	arrived := make(chan string, 4)
	cancelled := make(chan string, 4)
	e, srv, _ := h2Edge(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/quick" {
			_, _ = io.WriteString(w, "quick")
			return
		}
		if r.URL.Path == "/streaming" {
			_, _ = io.WriteString(w, "data: one\n\n")
			_ = http.NewResponseController(w).Flush()
		}
		// Read to the end: a server learns that its client left only
		// once it reads past the request.
		_, _ = io.Copy(io.Discard, r.Body)
		arrived <- r.Method + " " + r.URL.Path
		select {
		case <-r.Context().Done():
			cancelled <- r.Method + " " + r.URL.Path
		case <-time.After(5 * time.Second): // fail, not hang
		}
	}))
	tests := []struct {
		name, method, path string
		body               string
		readFirst          bool // reset after the first bytes of the answer
	}{
		{"GET waiting", http.MethodGet, "/wait", "", false},
		{"POST waiting", http.MethodPost, "/wait", "payload", false},
		{"GET while streaming", http.MethodGet, "/streaming", "", true},
	}
	h := dialH2(t, srv.Addr)
	for i, tt := range tests {
		id := uint32(1 + 4*i)
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			h.send(id, tt.method, tt.path, tt.body == "")
			if tt.body != "" {
				h.data(id, true, []byte(tt.body))
			}
			if tt.readFirst {
				st := h.stream(id)
				h.until("the first event", func() bool { return len(st.body) > 0 })
			}
			select {
			case got := <-arrived:
				require.Equal(t, tt.method+" "+tt.path, got)
			case <-time.After(5 * time.Second):
				t.Fatal("the request did not reach the backend")
			}
			h.rst(id, http2.ErrCodeCancel)
			select {
			case got := <-cancelled:
				assert.Equal(t, tt.method+" "+tt.path, got)
			case <-time.After(3 * time.Second):
				t.Fatal("the backend still works for a client that reset its stream")
			}
			// The connection still serves.
			h.send(id+2, http.MethodGet, "/quick", true)
			st := h.stream(id + 2)
			h.until("the next answer", func() bool { return st.ended })
			assert.Equal(t, 200, st.status)
			assert.Equal(t, "quick", string(st.body))
		})
	}
	eventually(t, 3*time.Second, func() bool { return e.InFlight("web") == 0 }, "the cancelled requests released their backend")
}

// Server.Shutdown during an HTTP/2 request: the client gets GOAWAY at once,
// the request in flight completes with its whole answer, a new request on
// that connection is not served, a new connection is refused, and
// Shutdown returns once the request is done.
func TestHTTP2Shutdown(t *testing.T) {
	answer := patternBytes(3, 256<<10)
	release := make(chan struct{})
	arrived := make(chan string, 4)
	_, srv, _ := h2Edge(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- r.URL.Path
		if r.URL.Path == "/hold" {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		_, _ = w.Write(answer)
	}))
	h := dialH2(t, srv.Addr)
	h.send(1, http.MethodGet, "/hold", true)
	require.Equal(t, "/hold", <-arrived)

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdown <- srv.Shutdown(ctx)
	}()
	h.until("GOAWAY", func() bool { return len(h.goaways) > 0 })
	ga := h.goaways[0]
	assert.Equal(t, http2.ErrCodeNo, ga.code, "a graceful GOAWAY")
	assert.GreaterOrEqual(t, ga.last, uint32(1), "GOAWAY keeps the stream in flight")

	// New connections are refused once the shutdown began.
	eventually(t, 2*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", srv.Addr, time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err != nil
	}, "new connections refused during the shutdown")
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	default:
	}

	// A new request on the connection that got GOAWAY.
	h.send(3, http.MethodGet, "/new", true)
	close(release)
	st1, st3 := h.stream(1), h.stream(3)
	h.until("the answer in flight", func() bool { return st1.ended || st1.reset != nil })
	assert.Nil(t, st1.reset, "the request in flight was reset")
	assert.Equal(t, 200, st1.status)
	assert.True(t, bytes.Equal(answer, st1.body), "the answer in flight arrived whole (%d of %d bytes)", len(st1.body), len(answer))

	h.until("the connection closed", func() bool { return h.closed != nil })
	last := h.goaways[len(h.goaways)-1].last
	t.Logf("GOAWAYs %v; stream 3: %s", h.goaways, h.outcome(st3))
	if last < 3 {
		// Above the GOAWAY's last stream: not processed, the client
		// may retry it elsewhere.
		assert.Zero(t, st3.status, "stream 3, above GOAWAY's last stream %d, was answered", last)
		select {
		case p := <-arrived:
			t.Errorf("%s reached the backend after GOAWAY", p)
		default:
		}
	} else {
		// A server that announced it would still process it must.
		assert.Equal(t, 200, st3.status, "stream 3 is within GOAWAY's last stream %d", last)
	}

	select {
	case err := <-shutdown:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the last request")
	}
}

// An HTTP/2 connection idle past http.Server.IdleTimeout is closed; one
// that keeps working is not.
func TestHTTP2IdleTimeout(t *testing.T) {
	const idle = 600 * time.Millisecond
	_, srv, _ := h2Edge(t, echoHandler("web"), func(hs *http.Server) { hs.IdleTimeout = idle })
	h := dialH2(t, srv.Addr)
	start := time.Now()
	var lastAnswer time.Time
	for id := uint32(1); time.Since(start) < 2*idle; id += 2 {
		h.send(id, http.MethodGet, "/", true)
		st := h.stream(id)
		h.until("an answer", func() bool { return st.ended })
		require.Equal(t, 200, st.status, "request %d, %s after the first", id, time.Since(start))
		lastAnswer = time.Now()
		time.Sleep(idle / 6)
	}
	h.until("the idle connection closed", func() bool { return h.closed != nil })
	quiet := time.Since(lastAnswer)
	assert.GreaterOrEqual(t, quiet, idle/2, "closed before it was idle for IdleTimeout")
	assert.Less(t, quiet, idle+3*time.Second)
	for _, ga := range h.goaways {
		assert.Equal(t, http2.ErrCodeNo, ga.code, "an idle close is no error")
	}
}

func TestHTTP2HeadAndEarlyHints(t *testing.T) {
	hinted := make(chan struct{}, 1)
	_, srv, _ := h2Edge(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hints" {
			w.Header().Set("Link", "</style.css>; rel=preload; as=style")
			w.WriteHeader(http.StatusEarlyHints)
			// The final answer waits for the client to see the hint:
			// a hint held back until then would be no use.
			select {
			case <-hinted:
				_, _ = io.WriteString(w, "page")
			case <-time.After(3 * time.Second):
				_, _ = io.WriteString(w, "hint held back")
			}
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "11")
		_, _ = io.WriteString(w, "hello world")
	}))

	t.Run("HEAD", func(t *testing.T) {
		h := dialH2(t, srv.Addr)
		h.send(1, http.MethodHead, "/doc", true)
		st := h.stream(1)
		h.until("the answer", func() bool { return st.ended || st.reset != nil })
		assert.Nil(t, st.reset)
		assert.Equal(t, 200, st.status)
		assert.Equal(t, "11", st.header.Get("Content-Length"))
		assert.Equal(t, "text/plain", st.header.Get("Content-Type"))
		assert.Empty(t, st.body, "HEAD has no body")
		// The same through a client library.
		got := fetch(t, h2Client(t), http.MethodHead, srv.URL+"/doc", fastHost)
		require.NoError(t, got.err)
		assert.Equal(t, 200, got.status)
		assert.Equal(t, "11", got.header.Get("Content-Length"))
		assert.Empty(t, got.body)
	})
	t.Run("103 Early Hints on the wire", func(t *testing.T) {
		h := dialH2(t, srv.Addr)
		h.send(1, http.MethodGet, "/hints", true)
		st := h.stream(1)
		h.until("the hint", func() bool { return len(st.info) > 0 || st.ended || st.reset != nil })
		assert.Equal(t, []int{http.StatusEarlyHints}, st.info)
		assert.Zero(t, st.status, "the final answer came before the hint")
		hinted <- struct{}{}
		h.until("the final answer", func() bool { return st.ended || st.reset != nil })
		assert.Equal(t, 200, st.status)
		assert.Equal(t, "page", string(st.body))
	})
	t.Run("103 Early Hints", func(t *testing.T) {
		var hints []string
		ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{
			Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				hints = append(hints, fmt.Sprint(code, " ", h.Get("Link")))
				select {
				case hinted <- struct{}{}:
				default:
				}
				return nil
			},
		})
		res, err := h2Client(t).Do(h2Request(t, ctx, srv, http.MethodGet, "/hints", nil))
		require.NoError(t, err)
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		assert.Equal(t, 2, res.ProtoMajor)
		assert.Equal(t, []string{"103 </style.css>; rel=preload; as=style"}, hints)
		assert.Equal(t, http.StatusOK, res.StatusCode)
		assert.Equal(t, "page", string(body), "the hint reached the client before the final answer")
	})
}

// A request with a connection-specific header field is malformed in
// HTTP/2 (RFC 9113 8.2.2): the server refuses it, by a stream or
// connection error or a 4xx answer of its own, and it never reaches the
// backend. "te: trailers", the one allowed, goes through.
func TestHTTP2ConnectionSpecificHeaders(t *testing.T) {
	var seen seenPaths
	_, srv, _ := h2Edge(t, seen.handler())
	for _, hdr := range [][2]string{
		{"connection", "keep-alive"},
		{"te", "gzip"},
		{"transfer-encoding", "chunked"},
		{"upgrade", "websocket"},
		{"keep-alive", "timeout=5"},
		{"proxy-connection", "keep-alive"},
	} {
		t.Run(hdr[0]+": "+hdr[1], func(t *testing.T) {
			h := dialH2(t, srv.Addr)
			path := "/" + hdr[0]
			h.send(1, http.MethodGet, path, true, hdr[0], hdr[1])
			st := h.stream(1)
			h.until("an answer", func() bool { return st.ended || st.reset != nil || len(h.goaways) > 0 || h.closed != nil })
			h.assertRefused(st)
			assert.NotContains(t, seen.list(), path, "the malformed request reached the backend")
		})
	}
	t.Run("te: trailers", func(t *testing.T) {
		h := dialH2(t, srv.Addr)
		h.send(1, http.MethodGet, "/te-trailers", true, "te", "trailers")
		st := h.stream(1)
		h.until("an answer", func() bool { return st.ended || st.reset != nil || h.closed != nil })
		assert.Equal(t, 200, st.status)
		assert.Contains(t, seen.list(), "/te-trailers")
	})
}

// The server advertises SETTINGS_MAX_CONCURRENT_STREAMS, and streams
// opened past it are refused (RFC 9113 5.1.2: a stream error,
// PROTOCOL_ERROR or REFUSED_STREAM) while the others are answered.
func TestHTTP2MaxConcurrentStreams(t *testing.T) {
	var arrived atomic.Int32
	release := make(chan struct{})
	_, srv, _ := h2Edge(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, r.URL.Query().Get("i"))
	}))
	h := dialH2(t, srv.Addr)
	limit, ok := h.settings[http2.SettingMaxConcurrentStreams]
	require.True(t, ok, "the server advertises no SETTINGS_MAX_CONCURRENT_STREAMS: %v", h.settings)
	require.GreaterOrEqual(t, limit, uint32(100), "RFC 9113 recommends at least 100")
	require.LessOrEqual(t, limit, uint32(1000), "a limit this test cannot fill")
	const extra = 10
	n := int(limit) + extra
	h.write(func(fr *http2.Framer) error {
		for i := range n {
			if err := h.writeRequest(fr, uint32(2*i+1), http.MethodGet, "/?i="+strconv.Itoa(i), true); err != nil {
				return err
			}
		}
		return nil
	})
	h.until("the extra streams refused", func() bool {
		refused := 0
		for _, st := range h.streams {
			if st.reset != nil {
				refused++
			}
		}
		return refused >= extra
	})
	eventually(t, 5*time.Second, func() bool { return arrived.Load() == int32(limit) }, "the backend holds the streams within the limit")
	for i := range n {
		st := h.stream(uint32(2*i + 1))
		if i < int(limit) {
			assert.Nil(t, st.reset, "stream %d within the limit was reset", i)
			continue
		}
		if assert.NotNil(t, st.reset, "stream %d past the limit %d was not refused", i, limit) && i == int(limit) {
			t.Logf("limit %d; stream %d: %s", limit, i, h.outcome(st))
		}
		if st.reset != nil {
			assert.Contains(t, []http2.ErrCode{http2.ErrCodeRefusedStream, http2.ErrCodeProtocol}, *st.reset)
		}
	}
	close(release)
	h.until("the answers", func() bool {
		for i := range int(limit) {
			if !h.stream(uint32(2*i + 1)).ended {
				return false
			}
		}
		return true
	})
	for i := range int(limit) {
		st := h.stream(uint32(2*i + 1))
		assert.Equal(t, 200, st.status)
		assert.Equal(t, strconv.Itoa(i), string(st.body))
	}
	assert.Equal(t, int32(limit), arrived.Load(), "a refused stream reached the backend")
	assert.Empty(t, h.goaways, "refusing a stream is no connection error")
}

// A rapid-reset flood (CVE-2023-44487): streams opened and reset at once,
// by the thousand. The server's goroutines stay bounded, come back down
// afterwards, and other connections are still answered.
func TestHTTP2RapidReset(t *testing.T) {
	var reached atomic.Int64
	_, srv, _ := h2Edge(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/flood" {
			reached.Add(1)
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
			return
		}
		_, _ = io.WriteString(w, "still here")
	}))
	other := dialH2(t, srv.Addr) // a connection already open before the flood
	baseline := runtime.NumGoroutine()

	var peak atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if g := int64(runtime.NumGoroutine()); g > peak.Load() {
				peak.Store(g)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()

	const streams = 5000
	flood := dialH2(t, srv.Addr)
	_ = flood.tc.SetReadDeadline(time.Time{}) // reading ends with the connection
	pinged := make(chan struct{})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		defer close(pinged)
		for flood.step() == nil && len(flood.pings) == 0 {
		}
	}()
	start := time.Now()
	sent := 0
	for sent < streams {
		err := flood.tryWrite(func(fr *http2.Framer) error {
			for range 50 {
				id := uint32(2*sent + 1)
				if err := flood.writeRequest(fr, id, http.MethodGet, "/flood", true); err != nil {
					return err
				}
				if err := fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
					return err
				}
				sent++
			}
			return nil
		})
		if err != nil {
			break // the server hung up on the flood: allowed
		}
	}
	// The server read the whole flood once it answers a PING sent after it
	// (or it hung up).
	_ = flood.tryWrite(func(fr *http2.Framer) error { return fr.WritePing(false, [8]byte{'f', 'l', 'o', 'o', 'd'}) })
	select {
	case <-pinged:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not read the flood")
	}
	took := time.Since(start)
	_ = flood.tc.Close()
	<-drained
	eventually(t, 5*time.Second, func() bool { return runtime.NumGoroutine() < baseline+50 }, "goroutines back near where they were")
	close(stopSampling)
	<-sampled
	t.Logf("sent %d open+reset pairs in %s, %d reached the backend (server's GOAWAY: %v); goroutines: %d before, peak %d",
		sent, took, reached.Load(), flood.goaways, baseline, peak.Load())
	assert.Less(t, peak.Load()-int64(baseline), int64(streams/4), "goroutines grew with the flood")

	// Others are still served, on an old connection and a new one.
	for _, h := range []*h2Conn{other, dialH2(t, srv.Addr)} {
		h.send(1, http.MethodGet, "/", true)
		st := h.stream(1)
		h.until("an answer after the flood", func() bool { return st.ended || st.reset != nil })
		assert.Equal(t, 200, st.status)
		assert.Equal(t, "still here", string(st.body))
	}
}

// PING is answered with an ACK carrying the same data.
func TestHTTP2Ping(t *testing.T) {
	_, srv, _ := h2Edge(t, nil)
	h := dialH2(t, srv.Addr)
	var sent [][8]byte
	for i := range 3 {
		data := [8]byte{'b', 'e', 'r', 't', 'h', byte(i), 0xff, 0}
		sent = append(sent, data)
		h.write(func(fr *http2.Framer) error { return fr.WritePing(false, data) })
	}
	h.until("3 PING ACKs", func() bool { return len(h.pings) >= 3 })
	assert.Equal(t, sent, h.pings)
}

// An answer whose header block exceeds the client's frame size arrives
// whole, as HEADERS and CONTINUATION frames.
func TestHTTP2LargeResponseHeaders(t *testing.T) {
	want := make(http.Header)
	rnd := rand.New(rand.NewPCG(4, 4))
	// Characters whose Huffman codes are 8 bits or more: the block
	// cannot shrink below the 20 KiB of values, past the client's
	// 16 KiB frames.
	const alphabet = "XZ&*;,"
	for i := range 20 {
		v := make([]byte, 1024)
		for j := range v {
			v[j] = alphabet[rnd.IntN(len(alphabet))]
		}
		want.Set(fmt.Sprintf("X-Big-%02d", i), string(v))
	}
	_, srv, _ := h2Edge(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range want {
			w.Header()[k] = v
		}
		_, _ = io.WriteString(w, "big head")
	}))

	h := dialH2(t, srv.Addr)
	h.send(1, http.MethodGet, "/", true)
	st := h.stream(1)
	h.until("the answer", func() bool { return st.ended || st.reset != nil })
	require.Equal(t, 200, st.status)
	assert.Equal(t, "big head", string(st.body))
	for k := range want {
		assert.Equal(t, want.Get(k), st.header.Get(k), k)
	}
	assert.Greater(t, st.headerFrames, 1, "a header block past 16 KiB comes as HEADERS and CONTINUATION")

	res := fetch(t, h2Client(t), http.MethodGet, srv.URL+"/", fastHost)
	require.NoError(t, res.err)
	for k := range want {
		assert.Equal(t, want.Get(k), res.header.Get(k), k)
	}
}

// A request whose headers exceed the server's limit
// (http.Server.MaxHeaderBytes), a little or by far, is refused, never
// reaches the backend, and hurts no other request: not one in flight on
// another connection, nor (when the server keeps the connection) the next
// one on the same connection.
func TestHTTP2LargeRequestHeaders(t *testing.T) {
	const limit = 8 << 10
	var seen seenPaths
	release := make(chan struct{})
	_, srv, _ := h2Edge(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		seen.handler().ServeHTTP(w, r)
	}), func(hs *http.Server) { hs.MaxHeaderBytes = limit })

	other := dialH2(t, srv.Addr)
	other.send(1, http.MethodGet, "/hold", true)
	// The server may advertise its limit, in HTTP/2's units (with 32
	// bytes a field); what it advertises, it must not take either.
	adv := max(other.settings[http2.SettingMaxHeaderListSize], limit)
	for _, tt := range []struct {
		name string
		size int
	}{
		{"a little over", int(adv) + 2<<10}, // in one HEADERS frame
		{"by far", 32 * int(adv)},           // HEADERS and CONTINUATIONs
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := dialH2(t, srv.Addr)
			var extra []string
			rnd := rand.New(rand.NewPCG(5, uint64(tt.size)))
			for i := 0; i < tt.size; i += 1024 {
				v := make([]byte, 1024-32-len("x-large-0000"))
				for j := range v {
					v[j] = byte('a' + rnd.IntN(26))
				}
				extra = append(extra, fmt.Sprintf("x-large-%04d", i/1024), string(v))
			}
			h.send(1, http.MethodGet, "/large", true, extra...)
			st := h.stream(1)
			h.until("an answer", func() bool { return st.ended || st.reset != nil || len(h.goaways) > 0 || h.closed != nil })
			h.assertRefused(st)
			if st.status != 0 {
				assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, st.status)
			}
			if len(h.goaways) == 0 && h.closed == nil {
				// Kept: its header compression is still in step.
				h.send(3, http.MethodGet, "/after", true, "x-small", "1")
				st3 := h.stream(3)
				h.until("the next answer", func() bool { return st3.ended || st3.reset != nil || h.closed != nil })
				assert.Equal(t, 200, st3.status, "the next request on the same connection")
			}
		})
	}

	close(release)
	held := other.stream(1)
	other.until("the answer held", func() bool { return held.ended || held.reset != nil })
	assert.Equal(t, 200, held.status, "a request in flight on another connection")
	res := fetch(t, h2Client(t), http.MethodGet, srv.URL+"/fresh", fastHost)
	require.NoError(t, res.err)
	assert.Equal(t, 200, res.status, "a new connection")
	assert.NotContains(t, seen.list(), "/large")
	assert.Contains(t, seen.list(), "/fresh")
}

// curl, an HTTP/2 client other than Go's, gets the backend's answers.
func TestHTTP2Curl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	if v, err := exec.Command(curl, "-V").Output(); err != nil || !strings.Contains(string(v), "HTTP2") {
		t.Skip("curl without HTTP/2")
	}
	_, srv, _ := h2Edge(t, nil)
	_, port, err := net.SplitHostPort(srv.Addr)
	require.NoError(t, err)
	url := "https://" + fastHost + ":" + port + "/curl"
	for _, args := range [][]string{{}, {"--data-binary", "from curl"}} {
		cmd := append([]string{"-q", "--http2", "-k", "-sS", "--noproxy", "*", "--resolve", fastHost + ":" + port + ":127.0.0.1",
			"-D", "-", "-w", "\n%{http_version}"}, args...)
		out, err := exec.CommandContext(t.Context(), curl, append(cmd, url)...).CombinedOutput()
		require.NoError(t, err, string(out))
		s := string(out)
		assert.True(t, strings.HasPrefix(s, "HTTP/2 200"), s)
		assert.Contains(t, strings.ToLower(s), "x-backend: web")
		body := "web:"
		if len(args) > 0 {
			body += "from curl"
		}
		assert.True(t, strings.HasSuffix(s, "\r\n\r\n"+body+"\n2"), s)
	}
}

// h2Conn is a raw HTTP/2 client connection over TLS, written and read
// frame by frame. It acknowledges the server's SETTINGS and PINGs, and
// keeps what came on each stream.
type h2Conn struct {
	*h2test.Conn
	t  testing.TB
	tc *tls.Conn
	fr *http2.Framer

	dec      *hpack.Decoder
	settings map[http2.SettingID]uint32 // the server's
	acked    bool                       // the server acknowledged our SETTINGS
	streams  map[uint32]*h2Stream
	pings    [][8]byte // PING ACKs' data
	goaways  []h2GoAway
	closed   error // why reading ended
	// Flow control of what the server sends: the windows it may still
	// fill, and whether the client gives back what it read at once
	// (a small window) or never needs to (a large one).
	window       int64
	refill       bool
	streamWindow int64    // a new stream's
	overrun      []string // the first DATA frames past a window
	block        []byte
	blockID      uint32
	blockEnd     bool // the header block ends its stream
	blockN       int  // frames in the header block
}

// h2Stream is what a stream brought.
type h2Stream struct {
	status       int // the final one
	info         []int
	header       http.Header
	trailer      http.Header
	body         []byte
	ended        bool
	window       int64 // the server may still send
	reset        *http2.ErrCode
	headerFrames int // frames in the largest header block
}

type h2GoAway struct {
	last uint32
	code http2.ErrCode
}

// dialH2 connects to addr, negotiates h2, and makes the opening exchange
// of SETTINGS, with windows large enough that the tests need no
// WINDOW_UPDATE.
func dialH2(t testing.TB, addr string) *h2Conn {
	t.Helper()
	return dialH2Window(t, addr, 0)
}

// dialH2Window is dialH2 with a window of window bytes for each stream
// (and the connection's default, 65,535 bytes), which the client refills
// as it reads; 0 is dialH2's large windows.
func dialH2Window(t testing.TB, addr string, window uint32) *h2Conn {
	t.Helper()
	const large = 1 << 30
	refill := window != 0
	if window == 0 {
		window = large
	}
	c, err := h2test.Dial(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: window})
	require.NoError(t, err)
	require.Equal(t, "h2", c.TC.ConnectionState().NegotiatedProtocol)
	h := &h2Conn{Conn: c, t: t, tc: c.TC, fr: c.FR, settings: map[http2.SettingID]uint32{}, streams: map[uint32]*h2Stream{}}
	h.dec = hpack.NewDecoder(4096, nil)
	h.window, h.refill = 65535, refill
	h.streamWindow = int64(window)
	if !refill {
		h.window += large
		h.write(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(0, large) })
	}
	gotSettings := false
	h.until("the server's SETTINGS", func() bool {
		gotSettings = gotSettings || len(h.settings) > 0
		return gotSettings && h.acked
	})
	return h
}

// write writes frames, flushed together.
func (h *h2Conn) write(f func(fr *http2.Framer) error) {
	h.t.Helper()
	require.NoError(h.t, h.tryWrite(f))
}

func (h *h2Conn) tryWrite(f func(fr *http2.Framer) error) error { return h.Write(f) }

// send opens stream id with a request for fastHost; hdr holds further
// header field name/value pairs, written as they are.
func (h *h2Conn) send(id uint32, method, path string, endStream bool, hdr ...string) {
	h.t.Helper()
	h.write(func(fr *http2.Framer) error { return h.writeRequest(fr, id, method, path, endStream, hdr...) })
}

// writeRequest writes the header block of a request, as HEADERS and as many
// CONTINUATION frames as the default frame size needs; inside write.
func (h *h2Conn) writeRequest(fr *http2.Framer, id uint32, method, path string, endStream bool, hdr ...string) error {
	fields := []string{":method", method, ":scheme", "https", ":authority", fastHost, ":path", path}
	return h.WriteHeaders(fr, id, endStream, append(fields, hdr...)...)
}

// data sends a request body on stream id.
func (h *h2Conn) data(id uint32, endStream bool, b []byte) {
	h.t.Helper()
	h.write(func(fr *http2.Framer) error { return fr.WriteData(id, endStream, b) })
}

// rst resets stream id.
func (h *h2Conn) rst(id uint32, code http2.ErrCode) {
	h.t.Helper()
	h.write(func(fr *http2.Framer) error { return fr.WriteRSTStream(id, code) })
}

// stream returns what stream id brought so far.
func (h *h2Conn) stream(id uint32) *h2Stream {
	st := h.streams[id]
	if st == nil {
		st = &h2Stream{window: h.streamWindow}
		h.streams[id] = st
	}
	return st
}

// until reads frames until cond holds, failing the test if the connection
// ends first or nothing satisfies it within 10 s.
func (h *h2Conn) until(what string, cond func() bool) {
	h.t.Helper()
	_ = h.tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !cond() {
		if h.closed != nil {
			h.t.Fatalf("waiting for %s: the connection ended: %v", what, h.closed)
		}
		if err := h.step(); err != nil && !cond() {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				h.t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
}

// step reads one frame and keeps what it says. It returns the error that
// ended the connection.
func (h *h2Conn) step() error {
	if h.closed != nil {
		return h.closed
	}
	f, err := h.fr.ReadFrame()
	if err != nil {
		h.closed = err
		return err
	}
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if f.IsAck() {
			h.acked = true
			break
		}
		_ = f.ForeachSetting(func(s http2.Setting) error {
			h.settings[s.ID] = s.Val
			return nil
		})
		_ = h.tryWrite(func(fr *http2.Framer) error { return fr.WriteSettingsAck() })
	case *http2.HeadersFrame:
		h.block = append(h.block[:0], f.HeaderBlockFragment()...)
		h.blockID, h.blockEnd, h.blockN = f.StreamID, f.StreamEnded(), 1
		if f.HeadersEnded() {
			h.endBlock()
		}
	case *http2.ContinuationFrame:
		h.block = append(h.block, f.HeaderBlockFragment()...)
		h.blockN++
		if f.HeadersEnded() {
			h.endBlock()
		}
	case *http2.DataFrame:
		st := h.stream(f.StreamID)
		st.body = append(st.body, f.Data()...)
		st.ended = st.ended || f.StreamEnded()
		n := int64(f.Length) // padding included
		st.window -= n
		h.window -= n
		if (st.window < 0 || h.window < 0) && len(h.overrun) < 3 {
			h.overrun = append(h.overrun, fmt.Sprintf("a DATA frame of %d bytes on stream %d left windows of %d (stream) and %d (connection)",
				n, f.StreamID, st.window, h.window))
		}
		if h.refill && n > 0 {
			st.window += n
			h.window += n
			id := f.StreamID
			_ = h.tryWrite(func(fr *http2.Framer) error {
				if !st.ended {
					if err := fr.WriteWindowUpdate(id, uint32(n)); err != nil {
						return err
					}
				}
				return fr.WriteWindowUpdate(0, uint32(n))
			})
		}
	case *http2.RSTStreamFrame:
		code := f.ErrCode
		h.stream(f.StreamID).reset = &code
	case *http2.GoAwayFrame:
		h.goaways = append(h.goaways, h2GoAway{last: f.LastStreamID, code: f.ErrCode})
	case *http2.PingFrame:
		if f.IsAck() {
			h.pings = append(h.pings, f.Data)
			break
		}
		data := f.Data
		_ = h.tryWrite(func(fr *http2.Framer) error { return fr.WritePing(true, data) })
	}
	return nil
}

// endBlock decodes a complete header block: an informational answer, the
// final one, or trailers.
func (h *h2Conn) endBlock() {
	fields, err := h.dec.DecodeFull(h.block)
	if err != nil {
		h.closed = fmt.Errorf("decoding the server's header block: %w", err)
		return
	}
	st := h.stream(h.blockID)
	st.headerFrames = max(st.headerFrames, h.blockN)
	hdr := make(http.Header)
	status := 0
	for _, f := range fields {
		if f.Name == ":status" {
			status, _ = strconv.Atoi(f.Value)
			continue
		}
		hdr.Add(f.Name, f.Value)
	}
	switch {
	case status >= 100 && status < 200:
		st.info = append(st.info, status)
	case status != 0:
		st.status, st.header = status, hdr
	default:
		st.trailer = hdr
	}
	st.ended = st.ended || h.blockEnd
}

// assertRefused checks that the server refused the request on st: a reset
// of the stream, a GOAWAY or close of the connection, or a 4xx answer of
// its own.
func (h *h2Conn) assertRefused(st *h2Stream) {
	h.t.Helper()
	h.t.Logf("refused with: %s", h.outcome(st))
	switch {
	case st.reset != nil, len(h.goaways) > 0, h.closed != nil && st.status == 0:
	case st.status >= 400 && st.status < 500:
	default:
		h.t.Errorf("not refused: %s", h.outcome(st))
	}
}

// outcome says what became of st and its connection.
func (h *h2Conn) outcome(st *h2Stream) string {
	var out []string
	if st.status != 0 {
		out = append(out, fmt.Sprintf("status %d %q", st.status, st.body))
	}
	if st.reset != nil {
		out = append(out, "RST_STREAM "+st.reset.String())
	}
	for _, ga := range h.goaways {
		out = append(out, fmt.Sprintf("GOAWAY %s last stream %d", ga.code, ga.last))
	}
	if h.closed != nil {
		out = append(out, fmt.Sprintf("connection ended (%v)", h.closed))
	}
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, ", ")
}
