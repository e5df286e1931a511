package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/berth-dev/berth/internal/edge/h1/h1test"
)

// Tests of the framing checks (framing.go) on byte streams; the edge's
// tests check them on every path a request reaches net/http by.

// fuzzFramingSeeds are request streams for FuzzFraming: the refused
// shapes, good ones, and pipelines of both.
func fuzzFramingSeeds() []string {
	seeds := []string{
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
		"GET / HTTP/1.1\nHost: x\n\nGET / HTTP/1.0\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\n\n",
	}
	for _, s := range h1test.FramingShapes {
		seeds = append(seeds, h1test.Shape(s.Raw, "x"))
	}
	return seeds
}

// FuzzFraming checks the framing checks' safety property on the net/http
// path: where they let a request through, net/http reads it the same way,
// head and body ending at the same byte, so the two can never disagree on
// where the next request starts; and what they let through has none of
// the refused shapes. It also checks that the verdict does not depend on
// how the bytes arrive.
func FuzzFraming(f *testing.F) {
	for _, s := range fuzzFramingSeeds() {
		f.Add([]byte(s), uint8(7))
	}
	f.Fuzz(func(t *testing.T, stream []byte, step uint8) {
		// In one piece.
		whole := framer{maxHead: 1 << 16}
		passed, v := whole.scan(stream)
		if passed < 0 || passed > len(stream) {
			t.Fatalf("passed %d of %d bytes", passed, len(stream))
		}
		// In pieces of step bytes, as reads would bring them.
		pieces := framer{maxHead: 1 << 16}
		got, pv := 0, scanMore
		for end := 0; end < len(stream); {
			end = min(end+int(step%16)+1, len(stream))
			n, v := pieces.scan(stream[got:end])
			got += n
			if pv = v; v != scanMore {
				break
			}
		}
		if got != passed || pv != v {
			t.Fatalf("%q: in one piece %d bytes (%d), in pieces %d (%d)", stream, passed, v, got, pv)
		}

		// net/http reads what passed the same way.
		cr := &countingReader{r: bytes.NewReader(stream[:passed])}
		br := bufio.NewReader(cr)
		ends := messageEnds(stream[:passed])
		for _, end := range ends {
			req, err := http.ReadRequest(br)
			if err != nil {
				return // net/http refuses it and closes the connection
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				return
			}
			if at := cr.n - br.Buffered(); at != end {
				t.Fatalf("%q: net/http ends a request at %d, the framing checks at %d", stream[:passed], at, end)
			}
			if req.Header.Get("Upgrade") != "" {
				return // the framing checks hold what follows
			}
		}
	})
}

// messageEnds returns where each whole request in stream, which passed
// the framing checks, ends, by scanning it again a byte more at a time.
func messageEnds(stream []byte) []int {
	var ends []int
	f := framer{maxHead: 1 << 16}
	got, open := 0, false
	for at := 1; at <= len(stream); at++ {
		heads := f.heads
		n, _ := f.scan(stream[got:at])
		got += n
		if f.heads > heads {
			open = true
		}
		if open && (f.state == inHead || f.state == upgrading) {
			ends = append(ends, got)
			open = false
		}
	}
	return ends
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
