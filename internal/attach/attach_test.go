package attach

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/testutil"
)

func TestFrameRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		typ     Type
		payload []byte
	}{
		{"empty", CloseStdin, nil},
		{"bytes", Stdout, []byte("hello\r\n")},
		{"resize", Resize, EncodeResize(Size{Height: 40, Width: 120})},
		{"exit", Exit, EncodeExit(137, "stopped")},
		{"largest", Stdin, bytes.Repeat([]byte("x"), MaxPayload)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			require.NoError(t, WriteFrame(&buf, tt.typ, tt.payload))
			f, err := ReadFrame(&buf)
			require.NoError(t, err)
			assert.Equal(t, tt.typ, f.Type)
			assert.Equal(t, len(tt.payload), len(f.Payload))
			assert.True(t, bytes.Equal(tt.payload, f.Payload))
			assert.Zero(t, buf.Len())
		})
	}
}

func TestFrameErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"eof", nil, io.EOF},
		{"short header", []byte{2, 0}, io.ErrUnexpectedEOF},
		{"short payload", []byte{2, 0, 0, 0, 5, 'a'}, io.ErrUnexpectedEOF},
		{"too large", []byte{2, 0xff, 0xff, 0xff, 0xff}, ErrFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadFrame(bytes.NewReader(tt.in))
			assert.ErrorIs(t, err, tt.want)
		})
	}
	assert.ErrorIs(t, WriteFrame(io.Discard, Stdout, make([]byte, MaxPayload+1)), ErrFrameTooLarge)
	_, err := DecodeResize([]byte{1})
	assert.ErrorIs(t, err, ErrBadFrame)
	_, _, err = DecodeExit(nil)
	assert.ErrorIs(t, err, ErrBadFrame)
	code, note, err := DecodeExit(EncodeExit(-1, ""))
	require.NoError(t, err)
	assert.Equal(t, -1, code)
	assert.Empty(t, note)
}

// fakeDaemon answers a session on the other end of a pipe: it echoes stdin
// to stdout until CloseStdin, reports resizes on stderr, and exits 3.
func fakeDaemon(t *testing.T, nc net.Conn) {
	c := NewConn(nc, nil)
	defer c.Close()
	require.NoError(t, c.Write(Started, []byte("task-1")))
	for {
		f, err := c.Read()
		if err != nil {
			return
		}
		switch f.Type {
		case Stdin:
			_ = c.Write(Stdout, f.Payload)
		case Resize:
			s, err := DecodeResize(f.Payload)
			require.NoError(t, err)
			_ = c.Write(Stderr, []byte(strings.Repeat("r", int(s.Height))))
		case CloseStdin:
			_ = c.Write(Exit, EncodeExit(3, "done"))
			return
		}
	}
}

func TestPump(t *testing.T) {
	a, b := net.Pipe()
	go fakeDaemon(t, b)
	resizes := make(chan Size, 1)
	resizes <- Size{Height: 2, Width: 80}
	var stdout, stderr testutil.SyncBuffer
	// The resize goes out before stdin ends only if stdin waits for it.
	stdin := &slowReader{r: strings.NewReader("hello"), wait: func() bool { return stderr.Len() > 0 }}
	res, err := NewConn(a, nil).Pump(context.Background(), stdin, false, &stdout, &stderr, resizes)
	require.NoError(t, err)
	assert.Equal(t, Result{ID: "task-1", Code: 3, Note: "done"}, res)
	assert.Equal(t, "hello", stdout.String())
	assert.Equal(t, "rr", stderr.String())
}

func TestPumpErrors(t *testing.T) {
	t.Run("error frame", func(t *testing.T) {
		a, b := net.Pipe()
		go func() {
			c := NewConn(b, nil)
			_ = c.Write(Error, []byte("no such task"))
			c.Close()
		}()
		_, err := NewConn(a, nil).Pump(context.Background(), nil, false, io.Discard, io.Discard, nil)
		var re *RemoteError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, "no such task", re.Message)
	})
	t.Run("connection lost", func(t *testing.T) {
		a, b := net.Pipe()
		go func() {
			c := NewConn(b, nil)
			_, _ = c.Read() // the CloseStdin
			c.Close()
		}()
		_, err := NewConn(a, nil).Pump(context.Background(), nil, false, io.Discard, io.Discard, nil)
		assert.ErrorIs(t, err, ErrBroken)
	})
	t.Run("cancelled", func(t *testing.T) {
		a, b := net.Pipe()
		gone := make(chan struct{})
		go func() {
			c := NewConn(b, nil)
			for {
				if _, err := c.Read(); err != nil {
					close(gone)
					return
				}
			}
		}()
		why := errors.New("interrupted")
		ctx, cancel := context.WithCancelCause(context.Background())
		time.AfterFunc(50*time.Millisecond, func() { cancel(why) })
		_, err := NewConn(a, nil).Pump(ctx, nil, false, io.Discard, io.Discard, nil)
		assert.ErrorIs(t, err, why)
		select {
		case <-gone:
		case <-time.After(5 * time.Second):
			t.Fatal("the daemon side did not see the client go")
		}
	})
}

type slowReader struct {
	r    io.Reader
	wait func() bool
}

func (s *slowReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		for !s.wait() {
			time.Sleep(time.Millisecond)
		}
	}
	return n, err
}
