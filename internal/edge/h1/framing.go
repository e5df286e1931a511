package h1

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// The edge refuses, with 400 and a closed connection as nginx does, every
// HTTP/1.x request whose framing is ambiguous or malformed (RFC 9112 6.3,
// 5.2, 7.1): Content-Length together with Transfer-Encoding, more than one
// Content-Length or Transfer-Encoding line, a length that is not a plain
// number, Transfer-Encoding on HTTP/1.0, obs-fold (a line continuing the
// previous one), a field line without a proper name, and a chunked body
// whose chunks or trailers are malformed. A Transfer-Encoding other than
// "chunked" gets 501, as in nginx. None of it is forwarded.
//
// Why a connection wrapper and not a check in the handler: net/http reads
// many of these shapes and then erases the evidence before a handler sees
// the request. It drops Content-Length when Transfer-Encoding is present,
// folds continuation lines into the previous value, merges equal
// Content-Length lines into one and ignores Transfer-Encoding on HTTP/1.0.
// So the check must see the bytes before net/http does: framingConn sits
// between the client connection and net/http's server, on every HTTP/1.x
// connection net/http serves (those the fast path hands over, and every
// HTTPS connection that did not negotiate HTTP/2, whose framing is binary).
// It follows the request stream as net/http will read it (head, then a
// Content-Length or chunked body, then the next head) and passes on only
// what it has checked. A refused head is never passed on: net/http first
// answers the requests before it (pipelined), then framingConn writes the
// edge's 400 page (Server.ErrorPage) and ends the stream.
//
// It learns from net/http's ConnState hook (which Server installs) when a
// request has been answered (StateIdle), to answer the refused one in
// order, and when a handler took the connection over (StateHijacked, a
// WebSocket), after which the bytes are not HTTP any more. After a request
// that asks to switch protocols it holds what follows until it knows which.

// Outcomes of a scan of the bytes read ahead.
type scanVerdict uint8

const (
	scanMore    scanVerdict = iota // more bytes are needed
	scanHold                       // nothing passes until an upgrade is settled
	scanRefused                    // a request head is refused
	scanBadBody                    // a chunked body is malformed
)

// framer states: where in the request stream the next byte is.
type frameState uint8

const (
	inHead      frameState = iota // a request head
	inBody                        // remain bytes of a Content-Length body
	inChunkSize                   // a chunk-size line
	inChunkData                   // remain bytes of chunk data
	inChunkEnd                    // the CRLF after chunk data
	inTrailer                     // the trailer section after the last chunk
	upgrading                     // after a request asking to switch protocols
	opaque                        // not HTTP any more (switched protocols)
)

// Limits of what the framer holds before passing it on.
const (
	// maxChunkLine bounds a chunk-size line and a trailer line, as
	// net/http does.
	maxChunkLine = 4096
	// maxHeldUpgrade bounds what a client may send after an upgrade
	// request before the answer.
	maxHeldUpgrade = 64 << 10
)

// refusal is the edge's answer to a request it will not pass on.
type refusal struct {
	status int
	msg    string
}

// framer follows a stream of HTTP/1.x requests and checks their framing.
type framer struct {
	state  frameState
	remain uint64 // body or chunk bytes left
	// heads is the number of request heads passed on.
	heads int64
	// upgrade: the current request asks to switch protocols.
	upgrade bool
	// searched is how far into the pending head the end was looked for,
	// so a head that arrives a byte at a time is not scanned again each
	// time.
	searched int
	// maxHead bounds a request head, as net/http's MaxHeaderBytes does.
	maxHead int
	refused refusal
}

// scan checks the bytes at the start of b, which follow everything
// scanned before, and returns how many of them may pass on and why it
// stopped there.
func (f *framer) scan(b []byte) (int, scanVerdict) {
	n := 0
	for {
		rest := b[n:]
		switch f.state {
		case inHead:
			end := f.headEnd(rest)
			if end < 0 {
				if len(rest) > f.maxHead {
					f.refused = refusal{http.StatusRequestHeaderFieldsTooLarge, "The request head is larger than " + strconv.Itoa(f.maxHead) + " bytes."}
					return n, scanRefused
				}
				return n, scanMore
			}
			fr, ok := checkHead(rest[:end])
			if !ok.ok() {
				f.refused = ok
				return n, scanRefused
			}
			n += end
			f.heads++
			f.upgrade = fr.upgrade
			switch {
			case fr.chunked:
				f.state = inChunkSize
			case fr.length > 0:
				f.state, f.remain = inBody, uint64(fr.length)
			default:
				f.endMessage()
			}
		case inBody, inChunkData:
			if len(rest) == 0 {
				return n, scanMore
			}
			k := min(uint64(len(rest)), f.remain)
			n += int(k)
			f.remain -= k
			if f.remain > 0 {
				return n, scanMore
			}
			f.bodyDone()
		case inChunkEnd:
			if len(rest) < 2 {
				return n, scanMore
			}
			if rest[0] != '\r' || rest[1] != '\n' {
				return n, scanBadBody
			}
			n += 2
			f.state = inChunkSize
		case inChunkSize:
			line, size, bad := chunkLine(rest)
			if bad {
				return n, scanBadBody
			}
			if size == 0 {
				return n, scanMore
			}
			sz, ok := parseChunkSize(line)
			if !ok {
				return n, scanBadBody
			}
			n += size
			if sz == 0 {
				f.state = inTrailer
			} else {
				f.state, f.remain = inChunkData, uint64(sz)
			}
		case inTrailer:
			line, size, bad := chunkLine(rest)
			if bad {
				return n, scanBadBody
			}
			if size == 0 {
				return n, scanMore
			}
			if len(line) > 0 {
				if _, _, ok := fieldLine(line); !ok.ok() {
					return n, scanBadBody
				}
			}
			n += size
			if len(line) == 0 {
				f.endMessage()
			}
		case upgrading:
			return n, scanHold
		default: // opaque
			return len(b), scanMore
		}
	}
}

// endMessage moves past a whole request.
func (f *framer) endMessage() {
	f.state = inHead
	if f.upgrade {
		f.state = upgrading
	}
}

// bodyDone moves past the last byte of a body or of a chunk's data.
func (f *framer) bodyDone() {
	if f.state == inBody {
		f.endMessage()
	} else {
		f.state = inChunkEnd
	}
}

// chunkLine returns the CRLF-terminated line at the start of b, without
// its CRLF, and its size with it; size 0 when it has not all arrived, bad
// when it is not a proper line.
func chunkLine(b []byte) (line []byte, size int, bad bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, 0, len(b) > maxChunkLine
	}
	// RFC 9112 7.1: chunk lines end in CRLF; no bare LF, no other CR.
	if i == 0 || b[i-1] != '\r' || bytes.IndexByte(b[:i-1], '\r') >= 0 || i > maxChunkLine {
		return nil, 0, true
	}
	return b[:i-1], i + 1, false
}

// headEnd returns the length of the request head at the start of b, up to
// and including the empty line that ends it, or -1 when it has not all
// arrived. As net/http, it takes LF with or without CR as a line end.
func (f *framer) headEnd(b []byte) int {
	// A head that starts with an empty line ends there (and is refused).
	if len(b) > 0 && b[0] == '\n' {
		f.searched = 0
		return 1
	}
	if len(b) > 1 && b[0] == '\r' && b[1] == '\n' {
		f.searched = 0
		return 2
	}
	from := max(f.searched-2, 0)
	for {
		i := bytes.IndexByte(b[from:], '\n')
		if i < 0 {
			f.searched = len(b)
			return -1
		}
		i += from
		switch {
		case i+1 < len(b) && b[i+1] == '\n':
			f.searched = 0
			return i + 2
		case i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n':
			f.searched = 0
			return i + 3
		case i+2 >= len(b):
			// The next line has not arrived far enough to tell.
			f.searched = i
			return -1
		}
		from = i + 1
	}
}

// headFraming is how a request head says its body is framed.
type headFraming struct {
	length  int64 // Content-Length, 0 without one
	chunked bool
	upgrade bool // it asks to switch protocols
}

func (r refusal) ok() bool { return r.status == 0 }

func badRequest(msg string) refusal { return refusal{http.StatusBadRequest, msg} }

// checkHead checks a whole request head, its empty last line included.
// The request line is left to net/http, which refuses what it cannot read
// and closes the connection; only its version matters to the framing.
func checkHead(head []byte) (headFraming, refusal) {
	var fr headFraming
	line, rest := nextHeadLine(head)
	switch {
	case line == nil:
		return fr, badRequest("The request line has a bare CR; end lines with CRLF.")
	case len(line) == 0:
		return fr, badRequest("The request starts with an empty line; start it with METHOD TARGET HTTP/1.1.")
	}
	version := line[bytes.LastIndexByte(line, ' ')+1:]
	var lengths, codings int
	var coding []byte
	for {
		line, rest = nextHeadLine(rest)
		if line == nil {
			return fr, badRequest("A header line has a bare CR; end lines with CRLF.")
		}
		if len(line) == 0 {
			break
		}
		name, value, bad := fieldLine(line)
		if !bad.ok() {
			return fr, bad
		}
		switch {
		case equalFoldASCII(name, "content-length"):
			lengths++
			n, ok := parseLength(value)
			if !ok {
				return fr, badRequest("Content-Length is not a number of bytes.")
			}
			fr.length = n
		case equalFoldASCII(name, "transfer-encoding"):
			codings++
			coding = value
		case equalFoldASCII(name, "upgrade"):
			fr.upgrade = true
		}
	}
	switch {
	case lengths > 1:
		return fr, badRequest("The request has more than one Content-Length; send one.")
	case codings > 1:
		return fr, badRequest("The request has more than one Transfer-Encoding; send one.")
	case codings == 1 && string(version) != "HTTP/1.1":
		return fr, badRequest("Transfer-Encoding needs HTTP/1.1; send Content-Length instead.")
	case codings == 1 && lengths == 1:
		return fr, badRequest("The request has both Content-Length and Transfer-Encoding; send one of them.")
	case codings == 1 && !equalFoldASCII(coding, "chunked"):
		return fr, refusal{http.StatusNotImplemented, "The only transfer coding the edge takes is chunked."}
	}
	fr.chunked = codings == 1
	return fr, refusal{}
}

// nextHeadLine splits the line at the start of head, without its line end.
// It returns a nil line for a bare CR, which net/http refuses too.
func nextHeadLine(head []byte) (line, rest []byte) {
	i := bytes.IndexByte(head, '\n')
	if i < 0 { // cannot happen: a head ends with a line end
		return nil, nil
	}
	line, rest = head[:i], head[i+1:]
	line = bytes.TrimSuffix(line, []byte("\r"))
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil
	}
	return line, rest
}

// fieldLine checks a header or trailer line, name ":" OWS value OWS.
func fieldLine(line []byte) (name, value []byte, bad refusal) {
	if line[0] == ' ' || line[0] == '\t' {
		return nil, nil, badRequest("A header line starts with white space (obs-fold); put each header on one line.")
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return nil, nil, badRequest("A header line has no name or no colon.")
	}
	name = line[:colon]
	for _, c := range name {
		if !tokenChar[c] {
			return nil, nil, badRequest("A header name has a character names cannot have (white space before the colon?).")
		}
	}
	value = line[colon+1:]
	if !validFieldValue(value) {
		return nil, nil, badRequest("A header value has a control character.")
	}
	return name, trimOWS(value), refusal{}
}

// ErrBadChunk fails the read of a request body whose chunked framing is
// malformed: the client's fault, which the handler reading the body
// answers with 400.
var ErrBadChunk = errors.New("malformed chunked request body")

// errHeldTooMuch ends a connection whose client sent too much after an
// upgrade request before its answer.
var errHeldTooMuch = errors.New("too many bytes sent before the upgrade was answered")

// framingConn is a client connection net/http serves HTTP/1.x on, with the
// framing of every request checked before net/http reads it. Reads come
// from one goroutine at a time (net/http's, or a hijacker's); the
// ConnState hook runs on another, hence the atomics.
type framingConn struct {
	net.Conn
	log  *slog.Logger
	page pageFunc // writes the refusal

	buf   []byte // bytes read ahead: buf[r:w]
	r, w  int
	clear int // buf[r:r+clear] passed the checks
	f     framer
	err   error // after a malformed body: every read fails

	refused  bool // a head was refused; answered once the ones before are
	done     bool // the refusal is written
	answered atomic.Int64
	switched atomic.Bool
}

// newFramingConn wraps c, whose first bytes (already read) are ahead.
// maxHead bounds a request head (0: net/http's default). An HTTPS
// connection is wrapped as a tlsFramingConn, so that net/http still sets
// Request.TLS.
func newFramingConn(c net.Conn, ahead []byte, maxHead int, log *slog.Logger, page pageFunc) net.Conn {
	fc := &framingConn{Conn: c, log: log, page: page, buf: make([]byte, max(4096, len(ahead)))}
	if maxHead <= 0 {
		maxHead = http.DefaultMaxHeaderBytes
	}
	fc.f.maxHead = maxHead + 4096 // net/http's slack
	fc.w = copy(fc.buf, ahead)
	if _, ok := c.(*tls.Conn); ok {
		return tlsFramingConn{fc}
	}
	return fc
}

// tlsFramingConn is a framingConn on an HTTPS connection.
type tlsFramingConn struct{ *framingConn }

// ConnectionState makes net/http set Request.TLS, as it does for a
// *tls.Conn (which the wrapper hides).
func (c tlsFramingConn) ConnectionState() tls.ConnectionState {
	return c.Conn.(*tls.Conn).ConnectionState()
}

// framed is a connection net/http reports states of to a framingConn.
type framed interface{ observe(http.ConnState) }

var (
	_ framed   = (*framingConn)(nil)
	_ framed   = tlsFramingConn{}
	_ net.Conn = tlsFramingConn{}
)

// CloseWrite lets net/http half-close the connection before it closes it,
// as it does for a *net.TCPConn.
func (c *framingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// observe follows net/http's view of the connection (Server.ConnState).
func (c *framingConn) observe(st http.ConnState) {
	switch st {
	case http.StateIdle:
		c.answered.Add(1)
	case http.StateHijacked:
		c.switched.Store(true)
	}
}

// Read passes on the bytes that passed the checks.
func (c *framingConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if c.f.state != opaque && c.switched.Load() {
			// A handler took the connection over: what follows is
			// another protocol.
			c.f.state, c.clear, c.refused, c.err = opaque, c.w-c.r, false, nil
		}
		if c.clear > 0 {
			n := copy(p, c.buf[c.r:c.r+min(c.clear, len(p))])
			c.r += n
			c.clear -= n
			if c.r == c.w {
				c.r, c.w = 0, 0
			}
			return n, nil
		}
		switch {
		case c.f.state == opaque:
			return c.Conn.Read(p)
		case c.err != nil:
			return 0, c.err
		case c.refused:
			return c.refuse()
		case c.f.state == upgrading && c.answered.Load() >= c.f.heads:
			// The upgrade was answered without a switch: HTTP goes on.
			c.f.state = inHead
		case c.r == c.w && (c.f.state == inBody || c.f.state == inChunkData):
			// Body bytes go straight to the caller, never past the body.
			n, err := c.Conn.Read(p[:min(uint64(len(p)), c.f.remain)])
			c.f.remain -= uint64(n)
			if c.f.remain == 0 {
				c.f.bodyDone()
			}
			return n, err
		}
		if c.r < c.w {
			n, v := c.f.scan(c.buf[c.r:c.w])
			c.clear = n
			switch v {
			case scanRefused:
				c.refused = true
			case scanBadBody:
				c.err = ErrBadChunk
			case scanHold:
				if c.w-c.r-n > maxHeldUpgrade {
					c.err = errHeldTooMuch
				}
			}
			if n > 0 || c.refused || c.err != nil {
				continue
			}
		}
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
}

// fill reads more bytes from the client after those ahead.
func (c *framingConn) fill() error {
	if c.r > 0 {
		c.w = copy(c.buf, c.buf[c.r:c.w])
		c.r = 0
	}
	if c.w == len(c.buf) {
		// A head, a chunk line or held bytes larger than the buffer;
		// the framer bounds them.
		c.buf = append(c.buf, make([]byte, len(c.buf))...)
	}
	n, err := c.Conn.Read(c.buf[c.w:])
	c.w += n
	if n > 0 {
		return nil
	}
	return err
}

// refuse answers the refused head once net/http has answered every
// request before it, and ends the stream. Until then the only reader is
// net/http's background read, which waits for the client as it would.
func (c *framingConn) refuse() (int, error) {
	for !c.done && c.answered.Load() < c.f.heads {
		c.r, c.w = 0, 0 // what follows a refused head is dropped
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
	if !c.done {
		c.done = true
		c.writeRefusal()
	}
	return 0, io.EOF
}

// lingerFor is how long a refused connection is drained before it is
// closed, so that the client reads the answer rather than a reset.
const lingerFor = 500 * time.Millisecond

func (c *framingConn) writeRefusal() {
	rf := c.f.refused
	c.log.Debug("edge refused a malformed request", "client", c.RemoteAddr().String(), "status", rf.status, "why", rf.msg)
	_ = c.SetWriteDeadline(time.Now().Add(lingerFor))
	bw := bufio.NewWriterSize(c.Conn, 1024)
	writePage(bw, c.page, false, true, "", nil, rf.status, ReasonBadRequest, rf.msg)
	if bw.Flush() != nil {
		return
	}
	_ = c.CloseWrite()
	_ = c.SetReadDeadline(time.Now().Add(lingerFor))
	_, _ = io.CopyN(io.Discard, c.Conn, 256<<10)
}
