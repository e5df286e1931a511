package edge

import (
	"context"
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

// connCounter counts the connections a test backend accepts and closes.
type connCounter struct{ opened, closed atomic.Int64 }

func (c *connCounter) hook(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		c.opened.Add(1)
	case http.StateClosed, http.StateHijacked:
		c.closed.Add(1)
	}
}

// newCountedBackend is newTestBackend with a count of its connections.
func newCountedBackend(t testing.TB, id string, h http.Handler) (*testBackend, *connCounter) {
	t.Helper()
	var cc connCounter
	if h == nil {
		h = echoHandler(id)
	}
	tb := &testBackend{}
	tb.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tb.hits.Add(1)
		h.ServeHTTP(w, r)
	}))
	tb.srv.Config.ConnState = cc.hook
	tb.srv.Start()
	t.Cleanup(tb.srv.Close)
	tb.Backend = Backend{ID: id, Addr: tb.srv.Listener.Addr().String()}
	return tb, &cc
}

func TestShortPathKeepsConnectionsAlive(t *testing.T) {
	b, cc := newCountedBackend(t, "a", nil)
	_, srv := newTestEdge(t, Options{}, Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(b)})
	c := testClient(t)
	for _, method := range []string{http.MethodGet, http.MethodOptions, http.MethodGet} {
		for range 10 {
			res := do(t, c, method, srv.URL, "web.shop.localhost", "/", "")
			require.Equal(t, http.StatusOK, res.status)
			assert.Equal(t, "a:", res.body)
		}
	}
	assert.Equal(t, int64(1), cc.opened.Load(), "sequential requests share one kept-alive connection")

	// HEAD answers without a body, and its connection is not reused.
	res := do(t, c, http.MethodHead, srv.URL, "web.shop.localhost", "/", "")
	require.Equal(t, http.StatusOK, res.status)
	assert.Empty(t, res.body)
	assert.Equal(t, "a", res.header.Get("X-Backend"))
	require.Equal(t, http.StatusOK, do(t, c, http.MethodGet, srv.URL, "web.shop.localhost", "/", "").status)
	assert.Equal(t, int64(2), cc.opened.Load())
}

func TestShortPathClosedIdleConnectionIsNotAFailure(t *testing.T) {
	// The instance closes its idle connections (its keep-alive timeout):
	// the next GET goes out on a new connection, and the instance is not
	// ejected for it.
	b, cc := newCountedBackend(t, "a", nil)
	e, srv := newTestEdge(t, Options{}, Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(b)})
	c := testClient(t)
	require.Equal(t, http.StatusOK, do(t, c, http.MethodGet, srv.URL, "web.shop.localhost", "/", "").status)
	b.srv.CloseClientConnections()
	eventually(t, 2*time.Second, func() bool { return cc.closed.Load() == 1 }, "the instance closed the idle connection")
	res := do(t, c, http.MethodGet, srv.URL, "web.shop.localhost", "/", "")
	require.Equal(t, http.StatusOK, res.status, res.body)
	assert.Equal(t, int64(2), cc.opened.Load())

	// A request head larger than the write buffer meets the closed
	// connection while it is written.
	b.srv.CloseClientConnections()
	eventually(t, 2*time.Second, func() bool { return cc.closed.Load() == 2 }, "the instance closed the idle connection")
	res = do(t, c, http.MethodGet, srv.URL, "web.shop.localhost", "/", "", "X-Large", strings.Repeat("x", 8<<10))
	require.Equal(t, http.StatusOK, res.status, res.body)
	assert.Equal(t, int64(3), cc.opened.Load())
	assert.Zero(t, e.snap.Load().routes["shop/web"].backends[0].st.ejectedUntil.Load(), "not ejected")
}

func TestShortPathConnectionClose(t *testing.T) {
	b, cc := newCountedBackend(t, "a", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		_, _ = io.WriteString(w, "bye")
	}))
	_, srv := newTestEdge(t, Options{}, Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(b)})
	c := testClient(t)
	for range 3 {
		res := do(t, c, http.MethodGet, srv.URL, "web.shop.localhost", "/", "")
		require.Equal(t, http.StatusOK, res.status)
		assert.Equal(t, "bye", res.body)
	}
	assert.Equal(t, int64(3), cc.opened.Load(), "a connection the instance closes is not reused")
}

func TestShortPathEarlyHintsAndTrailers(t *testing.T) {
	b := newTestBackend(t, "a", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("Trailer", "X-Checksum")
		_, _ = io.WriteString(w, "streamed")
		w.(http.Flusher).Flush() // no Content-Length: chunked
		w.Header().Set("X-Checksum", "42")
	}))
	_, srv := newTestEdge(t, Options{}, Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(b)})
	var hints []string
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			hints = append(hints, h.Get("Link"))
			return nil
		},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/", nil)
	require.NoError(t, err)
	req.Host = "web.shop.localhost"
	res, err := testClient(t).Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	assert.Equal(t, "streamed", string(body))
	assert.Equal(t, []string{"</style.css>; rel=preload"}, hints)
	assert.Equal(t, "42", res.Trailer.Get("X-Checksum"))
}

func TestShortPathClientGoneCancelsUpstream(t *testing.T) {
	cancelled := make(chan struct{})
	b := newTestBackend(t, "a", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(5 * time.Second): // fail, not hang
		}
	}))
	e, srv := newTestEdge(t, Options{}, Route{Key: "shop/web", Hosts: []string{"web.shop.localhost"}, Backends: backendsOf(b)})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/", nil)
	require.NoError(t, err)
	req.Host = "web.shop.localhost"
	_, err = testClient(t).Do(req)
	require.Error(t, err)
	select {
	case <-cancelled:
	case <-time.After(3 * time.Second):
		t.Fatal("the instance still serves a request whose client left")
	}
	eventually(t, 2*time.Second, func() bool { return e.InFlight("a") == 0 }, "the request released its backend")
}
