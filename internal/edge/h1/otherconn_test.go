package h1

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// otherListener hands out connections that are not TCP sockets to the
// Server (wrapSock leaves them), as a listener of another kind would: they
// are served by the goroutine loop that reads through net.Conn, not by
// serveLoop.
type otherListener struct{ net.Listener }

type otherConn struct{ net.Conn }

func (l otherListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return otherConn{c}, nil
}

// The fast path serves connections that are not TCP sockets as it serves
// sockets: keep-alive, pipelining with a hand-over to net/http, and a
// client that leaves while its request waits, which the client watch sees
// by reading the connection.
func TestServerServesOtherConns(t *testing.T) {
	cancelled := make(chan string, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			select {
			case <-r.Context().Done():
				cancelled <- r.URL.Path
			case <-time.After(5 * time.Second):
			}
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, r.Method+" "+r.URL.Path)
	}))
	t.Cleanup(backend.Close)
	s, _ := newServer(t, backend)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Serve(otherListener{ln}) }()
	t.Cleanup(func() {
		_ = s.Close()
		require.ErrorIs(t, <-done, http.ErrServerClosed)
	})
	addr := ln.Addr().String()

	rc := dialRaw(t, addr)
	for _, p := range []string{"/one", "/two"} {
		rc.write(rawGet(testHost, p))
		_, body := rc.read(http.MethodGet)
		assert.Equal(t, "GET "+p, body)
	}
	rc.write(rawGet(testHost, "/three") +
		"POST /four HTTP/1.1\r\nHost: " + testHost + "\r\nContent-Length: 3\r\n\r\nabc" +
		rawGet(testHost, "/five"))
	for _, want := range []string{"GET /three", "POST /four", "GET /five"} {
		_, body := rc.read(http.MethodGet)
		assert.Equal(t, want, body)
	}
	assert.Equal(t, int64(3), s.FastRequests(), "the fast path served up to the POST")

	rc = dialRaw(t, addr)
	rc.write(rawGet(testHost, "/wait"))
	time.Sleep(2 * clientWatchAfter)
	require.NoError(t, rc.c.Close())
	select {
	case got := <-cancelled:
		assert.Equal(t, "/wait", got)
	case <-time.After(3 * time.Second):
		t.Fatal("the request still waits at the backend for a client that left")
	}
}
