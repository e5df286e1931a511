// Package h2test is the writing half of a raw HTTP/2 client for tests: a
// TLS connection that negotiated h2, frames written as a test says under
// one lock, header blocks encoded in the order they go out. Reading is
// the test's own (its Framer is Conn.FR).
package h2test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Conn is a client connection that has sent its preface.
type Conn struct {
	TC *tls.Conn
	// FR reads and writes frames: writes only inside Write.
	FR *http2.Framer

	mu  sync.Mutex // writes, with the header encoder
	bw  *bufio.Writer
	enc *hpack.Encoder
	eb  bytes.Buffer
}

// Dial connects to addr over TLS offering only h2 (the server's
// certificate unchecked), and sends the client preface with settings.
// The connection closes with the test. Its Framer may write frames that
// break the protocol, for tests that provoke errors.
func Dial(t testing.TB, addr string, settings ...http2.Setting) (*Conn, error) {
	t.Helper()
	tc, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}) //nolint:gosec // test server certificate
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = tc.Close() })
	c := &Conn{TC: tc, bw: bufio.NewWriterSize(tc, 64<<10)}
	c.FR = http2.NewFramer(c.bw, tc)
	c.FR.AllowIllegalWrites = true
	c.enc = hpack.NewEncoder(&c.eb)
	err = c.Write(func(fr *http2.Framer) error {
		if _, err := io.WriteString(c.bw, http2.ClientPreface); err != nil {
			return err
		}
		return fr.WriteSettings(settings...)
	})
	return c, err
}

// Write runs f with the Framer and flushes what it wrote, all under the
// write lock, within 10 s.
func (c *Conn) Write(f func(fr *http2.Framer) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.TC.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := f(c.FR); err != nil {
		return err
	}
	return c.bw.Flush()
}

// WriteHeaders writes a header block of name/value pairs, as they are, on
// stream id: HEADERS and as many CONTINUATION frames as frames of the
// default size need. Call it inside Write, so that blocks are encoded in
// the order they go out.
func (c *Conn) WriteHeaders(fr *http2.Framer, id uint32, end bool, kv ...string) error {
	c.eb.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		if err := c.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]}); err != nil {
			return err
		}
	}
	block := c.eb.Bytes()
	const frame = 16 << 10
	first := block[:min(len(block), frame)]
	block = block[len(first):]
	err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: end, EndHeaders: len(block) == 0})
	for err == nil && len(block) > 0 {
		chunk := block[:min(len(block), frame)]
		block = block[len(chunk):]
		err = fr.WriteContinuation(id, len(block) == 0, chunk)
	}
	return err
}
