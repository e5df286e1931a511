package h2

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// stream is one request and its answer.
type stream struct {
	c    *conn
	id   uint32
	ctx  streamCtx
	body body // the request's: one allocation with the stream

	// The stream's handler and what it is given, for a worker
	// (workers.go), with its writer.
	handler http.Handler
	req     *http.Request
	fr      *FastRequest
	rw      responseWriter

	remoteDone atomic.Bool // END_STREAM received: written by the reader under c.mu
	localDone  bool        // the answer is complete: under c.mu
	// endSent: the writer has put the answer's END_STREAM in its buffer,
	// so the client may have it before the stream leaves the connection.
	endSent atomic.Bool

	// Under c.fmu.
	sendWin int64
	sendErr error // reset: nothing more is written

	// Under c.inMu.
	inAvail  int64
	inUnsent int64

	reset atomic.Bool // reset, by either side: what it queued is dropped
	gone  atomic.Bool // no longer among the connection's streams
	// Written by the writer goroutine only.
	rstSent bool
}

// processHeaders opens a stream, or takes a stream's trailers.
func (c *conn) processHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 != 1 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if st := c.stream(id); st != nil {
		if st.remoteDone.Load() {
			if st.endSent.Load() {
				// Closed on both sides, and only not yet gone from the
				// connection: as a stream that is (RFC 9113, 5.1).
				return http2.ConnectionError(http2.ErrCodeStreamClosed)
			}
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
		}
		if !f.StreamEnded() || len(f.PseudoFields()) > 0 {
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
		}
		return c.endOfBody(st, trailerOf(f))
	}
	if id <= c.maxClientID {
		if len(f.PseudoFields()) == 0 {
			// Trailers on a stream closed here, perhaps reset after its
			// answer while the client sent them (RFC 9113, 5.1): as DATA
			// on a closed stream, not the end of the connection.
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
		}
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if f.HasPriority() && f.Priority.StreamDep == id {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	var (
		req           *http.Request
		fr            *FastRequest
		needsContinue bool
	)
	if c.s.Fast != nil && f.StreamEnded() && !f.Truncated {
		fr = c.fastRequest(f)
	}
	if fr == nil {
		var err error
		req, needsContinue, err = c.newRequest(f.Fields, f.StreamEnded())
		if err != nil {
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol, Cause: err}
		}
		if msg := invalidHeaders(req.Header); msg != "" {
			// Malformed (RFC 9113, 8.2.2): a stream error, where net/http
			// answers 400.
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol, Cause: errors.New(msg)}
		}
	}
	st := &stream{c: c, id: id, inAvail: streamRecvWindow}
	st.ctx.vals = c.vals
	st.body = body{st: st, needsContinue: needsContinue, req: req}
	st.body.cond.L = &st.body.mu
	switch {
	case fr != nil:
		st.remoteDone.Store(true)
		st.body.err = io.EOF
	case f.StreamEnded():
		st.body.expected = req.ContentLength
		st.remoteDone.Store(true)
		st.body.err = io.EOF
		req.Body = http.NoBody
	default:
		st.body.expected = req.ContentLength
		req.Body = &st.body
	}

	// Taken under one lock with the stream's number, so that a GOAWAY
	// naming it never goes out without it being answered.
	c.mu.Lock()
	c.maxClientID = id
	switch {
	case c.goingAway:
		c.mu.Unlock()
		return nil // after GOAWAY: left for the client to retry elsewhere
	case len(c.streams) >= maxStreams:
		c.mu.Unlock()
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeRefusedStream}
	case c.handlers.Load() >= maxStreams*maxHandlersFactor:
		// Streams reset faster than their handlers end (CVE-2023-44487).
		c.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
	}
	c.fmu.Lock()
	st.sendWin = c.initWin
	c.fmu.Unlock()
	c.streams[id] = st
	if len(c.streams) == 1 && c.idle != nil {
		c.idle.Stop()
	}
	c.mu.Unlock()

	handler := c.s.Handler
	switch {
	case f.Truncated:
		handler = headersTooLarge
	case handler == nil:
		handler = http.NotFoundHandler()
	}
	c.handlers.Add(1)
	st.handler = handler
	if fr != nil {
		fr.ctx = &st.ctx
		st.fr, st.rw = fr, responseWriter{st: st, head: fr.Head}
	} else {
		st.req = req.WithContext(&st.ctx)
		st.rw = responseWriter{st: st, req: st.req, head: req.Method == http.MethodHead}
	}
	c.pool.run(st)
	return nil
}

// newRequest makes the http.Request of a HEADERS frame's fields (pseudo
// fields first, as the Framer checked), as net/http's HTTP/2 server makes
// it; ended is the frame's END_STREAM.
func (c *conn) newRequest(fields []hpack.HeaderField, ended bool) (*http.Request, bool, error) {
	ps, pseudo := pseudoOf(fields)
	if ps.protocol {
		return nil, false, errors.New("extended CONNECT is not supported")
	}
	method, scheme, authority, path := ps.method, ps.scheme, ps.authority, ps.path
	if method == "CONNECT" {
		if path != "" || scheme != "" || authority == "" {
			return nil, false, errors.New("malformed CONNECT")
		}
	} else if method == "" || path == "" || (scheme != "https" && scheme != "http") {
		return nil, false, errors.New("missing :method, :path or :scheme")
	}
	regular := fields[pseudo:]
	header := make(http.Header, len(regular))
	for _, hf := range regular {
		k := canonicalKey(hf.Name)
		header[k] = append(header[k], hf.Value)
	}
	needsContinue := httpguts.HeaderValuesContainsToken(header["Expect"], "100-continue")
	if needsContinue {
		delete(header, "Expect")
	}
	if cookies := header["Cookie"]; len(cookies) > 1 {
		header["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	var trailer http.Header
	for _, v := range header["Trailer"] {
		for key := range strings.SplitSeq(v, ",") {
			key = textproto.CanonicalMIMEHeaderKey(textproto.TrimString(key))
			switch key {
			case "Transfer-Encoding", "Trailer", "Content-Length":
			default:
				if trailer == nil {
					trailer = make(http.Header)
				}
				trailer[key] = nil
			}
		}
	}
	delete(header, "Trailer")
	if host := header["Host"]; len(host) == 1 {
		if authority == "" {
			authority = host[0]
		} else if host[0] != authority {
			return nil, false, errors.New("host and :authority differ")
		}
		delete(header, "Host")
	} else if len(host) > 1 {
		return nil, false, errors.New("more than one host")
	}
	if strings.IndexByte(authority, '@') >= 0 && (scheme == "http" || scheme == "https") {
		return nil, false, errors.New("userinfo in :authority")
	}
	if authority != "" && !httpguts.ValidHostHeader(authority) {
		return nil, false, errors.New("invalid :authority")
	}
	var u *url.URL
	var requestURI string
	if method == "CONNECT" {
		u, requestURI = &url.URL{Host: authority}, authority
	} else {
		if path[0] != '/' && path != "*" {
			return nil, false, errors.New("invalid :path")
		}
		var err error
		if u, err = url.ParseRequestURI(path); err != nil {
			return nil, false, errors.New("invalid :path")
		}
		requestURI = path
	}
	req := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     header,
		Host:       authority,
		RemoteAddr: c.remoteAddr,
		RequestURI: requestURI,
		Trailer:    trailer,
	}
	if scheme == "https" {
		req.TLS = c.tlsState
	}
	if !ended {
		req.ContentLength = -1
		if vv, ok := header["Content-Length"]; ok {
			cl, err := strconv.ParseUint(vv[0], 10, 63)
			if err != nil || len(vv) > 1 && slicesDiffer(vv) {
				return nil, false, errors.New("invalid content-length")
			}
			req.ContentLength = int64(cl)
		}
	} else if vv := header["Content-Length"]; len(vv) > 0 && vv[0] != "0" {
		return nil, false, errors.New("content-length without a body")
	}
	return req, needsContinue, nil
}

// pseudoFields are a request's pseudo-header fields.
type pseudoFields struct {
	method, scheme, authority, path string
	protocol                        bool // :protocol, of an extended CONNECT
	other                           bool // a pseudo-header field of no request
}

// pseudoOf reads the pseudo-header fields that begin fields, and returns
// how many there are.
func pseudoOf(fields []hpack.HeaderField) (pseudoFields, int) {
	var p pseudoFields
	n := 0
	for ; n < len(fields) && strings.HasPrefix(fields[n].Name, ":"); n++ {
		switch hf := fields[n]; hf.Name {
		case ":method":
			p.method = hf.Value
		case ":scheme":
			p.scheme = hf.Value
		case ":authority":
			p.authority = hf.Value
		case ":path":
			p.path = hf.Value
		case ":protocol":
			p.protocol = true
		default:
			p.other = true
		}
	}
	return p, n
}

func slicesDiffer(vv []string) bool {
	for _, v := range vv[1:] {
		if v != vv[0] {
			return true
		}
	}
	return false
}

// connHeaders are the connection-specific fields HTTP/2 forbids.
var connHeaders = [...]string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade"}

// invalidHeaders says what is wrong with a request's fields for HTTP/2.
func invalidHeaders(h http.Header) string {
	for _, k := range connHeaders {
		if _, ok := h[k]; ok {
			return fmt.Sprintf("request header %q is not valid in HTTP/2", k)
		}
	}
	if te := h["Te"]; len(te) > 0 && (len(te) > 1 || (te[0] != "trailers" && te[0] != "")) {
		return `request header "TE" may only be "trailers" in HTTP/2`
	}
	return ""
}

var headersTooLarge = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusRequestHeaderFieldsTooLarge)
	_, _ = io.WriteString(w, "<h1>HTTP Error 431</h1><p>Request Header Field(s) Too Large</p>")
})

// trailerOf is the trailer fields of a HEADERS frame.
func trailerOf(f *http2.MetaHeadersFrame) http.Header {
	fields := f.RegularFields()
	if len(fields) == 0 {
		return nil
	}
	h := make(http.Header, len(fields))
	for _, hf := range fields {
		k := canonicalKey(hf.Name)
		h[k] = append(h[k], hf.Value)
	}
	return h
}

// runHandler serves the stream in its own goroutine: req with its
// handler, or fr with the Server's Fast hook, and with the handler when
// the hook leaves it.
func (st *stream) runHandler() {
	c, rw, req, fr, h := st.c, &st.rw, st.req, st.fr, st.handler
	defer c.handlers.Add(-1)
	panicked := true
	defer func() {
		if panicked {
			v := recover()
			if v != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				url := ""
				switch {
				case req != nil:
					url = req.URL.String()
				case fr != nil:
					url = fr.Path
				}
				c.s.log().Error("HTTP/2 handler panic", "client", c.remoteAddr, "url", url, "panic", fmt.Sprint(v), "stack", string(buf))
			}
			rw.abort(http2.ErrCodeInternal)
		}
		st.ctx.cancel()
		st.body.closeRead()
		if req != nil && req.MultipartForm != nil {
			_ = req.MultipartForm.RemoveAll()
		}
	}()
	if fr != nil {
		if c.s.Fast(rw, fr) {
			rw.finish()
			panicked = false
			return
		}
		req = fr.Request()
		rw.req = req
	}
	h.ServeHTTP(rw, req)
	rw.finish()
	panicked = false
}

// body is a request's body as the client sends it: DATA frames are
// copied in by the reader and read out by the handler, which gives the
// flow-control window back as it reads.
type body struct {
	st            *stream
	mu            sync.Mutex
	cond          sync.Cond
	buf           bytes.Buffer
	err           error // io.EOF once the client is done
	closed        bool  // the handler closed it
	needsContinue bool
	expected      int64 // Content-Length, or -1
	got           int64
	trailer       http.Header
	req           *http.Request
}

// write copies data in; false when the handler no longer reads.
func (b *body) write(data []byte) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got += int64(len(data))
	if b.closed || b.err != nil {
		return false
	}
	b.buf.Write(data)
	b.cond.Signal()
	return true
}

// overLength reports more data than the Content-Length said.
func (b *body) overLength() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.expected >= 0 && b.got > b.expected
}

// end is the client's END_STREAM, with its trailers.
func (b *body) end(trailer http.Header) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var err error = io.EOF
	if b.expected >= 0 && b.got != b.expected {
		err = fmt.Errorf("h2: request body has %d bytes, Content-Length says %d", b.got, b.expected)
	}
	if b.err == nil {
		if err == io.EOF && trailer != nil && b.st != nil {
			b.trailer = trailer
		}
		b.err = err
		b.cond.Broadcast()
	}
	if err != io.EOF {
		return err
	}
	return nil
}

// fail ends the body with err unless it has ended.
func (b *body) fail(err error) {
	b.mu.Lock()
	if b.err == nil || b.err == io.EOF && b.buf.Len() > 0 {
		b.err = err
	}
	b.cond.Broadcast()
	b.mu.Unlock()
}

// Read reads the body, answering 100 Continue on the first read when the
// client asked for it.
func (b *body) Read(p []byte) (int, error) {
	st := b.st
	b.mu.Lock()
	if b.needsContinue {
		// Queued under b.mu: before the answer's HEADERS, or not at all
		// once they are (noContinue).
		b.needsContinue = false
		st.c.w.enqueue(item{kind: kindHeaders, st: st, fields: continueFields})
	}
	for b.buf.Len() == 0 && b.err == nil && !b.closed {
		b.cond.Wait()
	}
	if b.closed {
		b.mu.Unlock()
		return 0, errClosedBody
	}
	if b.buf.Len() > 0 {
		n, _ := b.buf.Read(p)
		b.mu.Unlock()
		st.c.refund(st, int64(n))
		return n, nil
	}
	err := b.err
	tr := b.trailer
	b.trailer = nil
	b.mu.Unlock()
	if tr != nil && b.req != nil {
		for k, v := range tr {
			if _, ok := b.req.Trailer[k]; ok {
				b.req.Trailer[k] = v
			}
		}
	}
	return 0, err
}

// noContinue drops the 100 Continue a first read would send: the
// answer's HEADERS are queued, and a 100 after them would be a second
// answer (net/http drops it too, golang.org/issue/14030).
func (b *body) noContinue() {
	b.mu.Lock()
	b.needsContinue = false
	b.mu.Unlock()
}

// Close stops the reading: what came and comes after is dropped, its
// window given back to the connection.
func (b *body) Close() error {
	b.closeRead()
	return nil
}

func (b *body) closeRead() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	n := b.buf.Len()
	b.buf = bytes.Buffer{}
	b.cond.Broadcast()
	b.mu.Unlock()
	if n > 0 && b.st != nil {
		b.st.c.refund(nil, int64(n))
	}
}
