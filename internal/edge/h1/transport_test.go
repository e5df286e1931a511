package h1

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An idle connection in the pool is closed once it has waited longer than
// the fallback's IdleConnTimeout, so an upstream that gets no more
// requests keeps no socket open.
func TestTransportIdleConnectionsAgeOut(t *testing.T) {
	var opened, closed atomic.Int64
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	backend.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			closed.Add(1)
		}
	}
	backend.Start()
	t.Cleanup(backend.Close)
	tr := NewTransport(&http.Transport{DialContext: (&net.Dialer{}).DialContext, MaxIdleConnsPerHost: 4, IdleConnTimeout: 50 * time.Millisecond})
	t.Cleanup(tr.CloseIdleConnections)

	for range 3 {
		req, err := http.NewRequest(http.MethodGet, backend.URL+"/", nil)
		require.NoError(t, err)
		res, err := tr.RoundTrip(req)
		require.NoError(t, err)
		_, err = io.Copy(io.Discard, res.Body) // read to the end: the connection goes back to the pool
		require.NoError(t, err)
		require.NoError(t, res.Body.Close())
		require.Equal(t, http.StatusOK, res.StatusCode)
	}
	assert.Equal(t, int64(1), opened.Load(), "one kept-alive connection for the three requests")
	eventually(t, 2*time.Second, func() bool { return closed.Load() == 1 }, "the idle connection was closed")
}
