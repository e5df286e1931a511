package h1

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
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

// FuzzWriteRequest checks that writeRequest writes what Request.Write
// writes, byte for byte, or fails where it fails.
func FuzzWriteRequest(f *testing.F) {
	f.Add(true, "web.shop.localhost", "/p/a%20b?q=1", "X-A", "1", "", false)
	f.Add(false, "127.0.0.1:8080", "/", "User-Agent", "", "close", true)
	f.Add(true, "[::1]:80", "/x", "User-Agent", "a\r\nb", "keep-alive, close", true)
	f.Add(true, "bücher.example", "/", "X-B", "v", "", false)
	f.Add(true, "h", "/\x01", "X-C", "a\nb", "", false)
	f.Add(true, "[fe80::1%25en0]:80", "/", "Cookie", "a=1", "", false)
	f.Add(false, "h:1", "/?a=1;b", "Host", "other", "x close", true)
	f.Fuzz(func(t *testing.T, get bool, host, target, name, value, connection string, closeIt bool) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		method := http.MethodHead
		if get {
			method = http.MethodGet
		}
		u.Scheme, u.Host = "http", "upstream:80"
		req := &http.Request{Method: method, URL: u, Host: host, Header: http.Header{}, Close: closeIt,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
		req.Header[name] = []string{value}
		if connection != "" {
			req.Header["Connection"] = []string{connection}
		}
		var want, got bytes.Buffer
		werr := req.Write(&want)
		bw := bufio.NewWriter(&got)
		gerr := writeRequest(bw, req)
		_ = bw.Flush()
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("Request.Write: %v; writeRequest: %v", werr, gerr)
		}
		if werr == nil && want.String() != got.String() {
			t.Fatalf("Request.Write:\n%q\nwriteRequest:\n%q", want.String(), got.String())
		}
	})
}
