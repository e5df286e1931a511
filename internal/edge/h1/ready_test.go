package h1

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tcpPair returns the two ends of a loopback TCP connection: c, the
// edge's, and the upstream's.
func tcpPair(t *testing.T) (c *net.TCPConn, up *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		a, _ := ln.Accept()
		accepted <- a
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	a := <-accepted
	require.NotNil(t, a)
	t.Cleanup(func() { _ = d.Close(); _ = a.Close() })
	return d.(*net.TCPConn), a.(*net.TCPConn)
}

// writeThenRead is what a kept-alive upstream connection's Read does with
// a request head queued: each way it can end must end as a read on the
// connection ends, so that the fast path's retries and failures tell
// them apart as before.
func TestWriteThenRead(t *testing.T) {
	req := []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	// upstream reads the request whole, then does what the case says.
	upstream := func(up *net.TCPConn, then func()) chan []byte {
		got := make(chan []byte, 1)
		go func() {
			b := make([]byte, len(req))
			_, err := io.ReadFull(up, b)
			if err != nil {
				b = nil
			}
			got <- b
			then()
		}()
		return got
	}
	t.Run("the answer", func(t *testing.T) {
		c, up := tcpPair(t)
		got := upstream(up, func() {
			time.Sleep(20 * time.Millisecond) // the edge waits, not reads
			_, _ = up.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
		})
		p := make([]byte, 64)
		n, err := sockOf(c).writeThenRead(req, p)
		require.NoError(t, err)
		assert.Equal(t, "HTTP/1.1 204 No Content\r\n\r\n", string(p[:n]))
		assert.Equal(t, req, <-got, "the request went whole")
	})
	t.Run("closed after the request", func(t *testing.T) {
		c, up := tcpPair(t)
		upstream(up, func() { _ = up.CloseWrite() })
		n, err := sockOf(c).writeThenRead(req, make([]byte, 64))
		assert.Zero(t, n)
		assert.Equal(t, io.EOF, err)
		assert.True(t, BrokeBeforeAnswer(err))
	})
	t.Run("reset after the request", func(t *testing.T) {
		c, up := tcpPair(t)
		upstream(up, func() {
			_ = up.SetLinger(0)
			_ = up.Close()
		})
		_, err := sockOf(c).writeThenRead(req, make([]byte, 64))
		assert.ErrorIs(t, err, syscall.ECONNRESET)
		assert.True(t, BrokeBeforeAnswer(err), "a reset before any answer may be retried: %v", err)
		var op *net.OpError
		assert.True(t, errors.As(err, &op) && op.Op == "read", "a read error, as net.Conn's: %v", err)
	})
	t.Run("closed before the request", func(t *testing.T) {
		// A pooled connection the upstream closed while it was idle:
		// its end came before the wait began, and the reset that
		// answers the request ends the wait.
		c, up := tcpPair(t)
		require.NoError(t, up.Close())
		time.Sleep(20 * time.Millisecond)
		done := make(chan error, 1)
		go func() {
			_, err := sockOf(c).writeThenRead(req, make([]byte, 64))
			done <- err
		}()
		select {
		case err := <-done:
			assert.True(t, BrokeBeforeAnswer(err), "stale: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("the wait on a connection closed before the request did not end")
		}
	})
	t.Run("deadline", func(t *testing.T) {
		c, up := tcpPair(t)
		upstream(up, func() {})
		require.NoError(t, c.SetDeadline(time.Now().Add(50*time.Millisecond)))
		start := time.Now()
		_, err := sockOf(c).writeThenRead(req, make([]byte, 64))
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
		assert.True(t, isTimeout(err))
		assert.Less(t, time.Since(start), 3*time.Second)
	})
	t.Run("a write that fails", func(t *testing.T) {
		c, _ := tcpPair(t)
		s := sockOf(c)
		require.NoError(t, c.CloseWrite())
		_, err := s.writeThenRead(req, make([]byte, 64))
		var op *net.OpError
		require.True(t, errors.As(err, &op), "%v", err)
		assert.Equal(t, "write", op.Op)
	})
	t.Run("not TCP", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		assert.Nil(t, sockOf(a), "net.Pipe has no socket: requests are written at once")
	})
}
