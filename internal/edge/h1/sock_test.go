package h1

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
)

// sockPair is a loopback TCP connection with raw reads and writes at both
// ends.
func sockPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	c, up := tcpPair(t)
	a, b = wrapSock(c), wrapSock(up)
	require.IsType(t, &sockConn{}, a)
	require.IsType(t, &sockConn{}, b)
	return a, b
}

// The conformance suite of golang.org/x/net for net.Conn implementations:
// reads and writes of every size, concurrent ones, deadlines in the past
// and the future, Close waking a blocked Read or Write.
func TestSockConnIsANetConn(t *testing.T) {
	nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
		a, b := sockPair(t)
		return a, b, func() { a.Close(); b.Close() }, nil
	})
}

// A write larger than the socket's buffer and than one raw call waits for
// the reader and arrives whole and in order.
func TestSockConnLargeWrite(t *testing.T) {
	a, b := sockPair(t)
	defer a.Close()
	defer b.Close()
	payload := make([]byte, 8<<20+123)
	_, _ = rand.Read(payload)
	done := make(chan error, 1)
	go func() {
		n, err := a.Write(payload)
		if err == nil && n != len(payload) {
			err = io.ErrShortWrite
		}
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // the writer fills the buffers and waits
	require.NoError(t, b.SetReadDeadline(time.Now().Add(10*time.Second)))
	got, err := io.ReadAll(io.LimitReader(b, int64(len(payload))))
	require.NoError(t, err)
	require.NoError(t, <-done)
	assert.True(t, bytes.Equal(payload, got), "the bytes read are not the bytes written")
}

// Errors read as the TCPConn's own: io.EOF at the peer's close, a timeout
// as a net.Error with Op "read", a reset as an *os.SyscallError, a closed
// connection as net.ErrClosed.
func TestSockConnErrors(t *testing.T) {
	t.Run("EOF", func(t *testing.T) {
		a, b := sockPair(t)
		defer a.Close()
		require.NoError(t, b.Close())
		n, err := a.Read(make([]byte, 8))
		assert.Equal(t, 0, n)
		assert.Equal(t, io.EOF, err)
	})
	t.Run("deadline", func(t *testing.T) {
		a, b := sockPair(t)
		defer a.Close()
		defer b.Close()
		require.NoError(t, a.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
		_, err := a.Read(make([]byte, 8))
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		assert.True(t, ne.Timeout())
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
		var oe *net.OpError
		require.ErrorAs(t, err, &oe)
		assert.Equal(t, "read", oe.Op)
		assert.Equal(t, a.LocalAddr(), oe.Source)
		assert.Equal(t, a.RemoteAddr(), oe.Addr)
	})
	t.Run("reset", func(t *testing.T) {
		a, b := sockPair(t)
		defer a.Close()
		require.NoError(t, b.(*sockConn).SetLinger(0))
		require.NoError(t, b.Close()) // an RST, not a FIN
		time.Sleep(20 * time.Millisecond)
		_, err := a.Read(make([]byte, 8))
		require.ErrorIs(t, err, syscall.ECONNRESET)
		var se *os.SyscallError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "read", se.Syscall)
		_, err = a.Write([]byte("after the reset"))
		assert.Error(t, err)
	})
	t.Run("closed", func(t *testing.T) {
		a, b := sockPair(t)
		defer b.Close()
		require.NoError(t, a.Close())
		_, err := a.Read(make([]byte, 8))
		assert.ErrorIs(t, err, net.ErrClosed)
		_, err = a.Write([]byte("x"))
		assert.ErrorIs(t, err, net.ErrClosed)
	})
}

// Only TCP connections get raw calls; others are left as they are.
func TestWrapSockLeavesOtherConns(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	assert.Same(t, a, wrapSock(a))
}

// A read, a write and a request written then its answer read cost no
// allocation: the functions RawConn runs are made once per connection.
func TestSockConnCallsDoNotAllocate(t *testing.T) {
	a, b := sockPair(t)
	msg := []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	go func() { // echoes each message
		buf := make([]byte, len(msg))
		for {
			if _, err := io.ReadFull(b, buf); err != nil {
				return
			}
			if _, err := b.Write(buf); err != nil {
				return
			}
		}
	}()
	p := make([]byte, 64)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := a.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(a, p[:len(msg)]); err != nil {
			t.Fatal(err)
		}
		n, err := a.(*sockConn).writeThenRead(msg, p[:len(msg)])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(a, p[n:len(msg)]); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}
