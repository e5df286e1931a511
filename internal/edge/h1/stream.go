package h1

import (
	"context"
	"crypto/tls"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2/hpack"
)

// The fast path for HTTP/2: an HTTP/2 server hands a GET or HEAD stream
// without a body to ServeStream, which routes it with the Handler and
// proxies it upstream on the fast path's connections, as the edge's
// net/http path would (httputil.ReverseProxy over HTTP/2: the request
// head the upstream sees, and the answer the client gets, through the
// stream's http.ResponseWriter), without an http.Request unless something
// asks for it.

// StreamRequest is a GET or HEAD without a body that an HTTP/2 server
// parsed and checked as valid HTTP/2.
type StreamRequest struct {
	// Authority is :authority.
	Authority string
	// Path is :path as the client sent it.
	Path string
	// Head is true for HEAD, false for GET.
	Head bool
	// Start is when the server began to read the request.
	Start time.Time
	// TLS is the connection's TLS state for :scheme https, else nil.
	TLS *tls.ConnectionState
	// RemoteAddr is the client's address, host:port.
	RemoteAddr string
	// Fields are the regular fields, with lower-case names.
	Fields []hpack.HeaderField
	// Context is the stream's: done when the client resets it.
	Context context.Context
	// HTTP makes the request as the HTTP/2 server would hand it to a
	// handler; called at most once, only when something needs it (a
	// Responder, an error page).
	HTTP func() *http.Request
}

// streamExchange is one HTTP/2 request the fast path serves.
type streamExchange struct {
	exchange
	s   *Server
	w   http.ResponseWriter
	ctx context.Context
	req Request
	tg  Target
	out []byte // the request head sent upstream
	xff []string
	// The client's forwarding fields seen.
	xfProto, xfHost, realIP bool
}

var streams = sync.Pool{New: func() any { return new(streamExchange) }}

// Requests of one HTTP/2 stream that the fast path leaves to net/http's
// reading of an answer: only their method counts.
var (
	getRequest  = &http.Request{Method: http.MethodGet}
	headRequest = &http.Request{Method: http.MethodHead}
)

// ServeStream serves an HTTP/2 request as the fast path serves an
// HTTP/1.1 one, when the HTTP/1.1 parser would take its fields and the
// Handler routes it, and reports whether it did. It returns false having
// done nothing (no write to w) otherwise. A body the upstream cuts short
// resets the stream: it panics with http.ErrAbortHandler, after the
// Exchange's Done.
func (s *Server) ServeStream(w http.ResponseWriter, sr *StreamRequest) bool {
	if s.Handler == nil || !validTarget(sr.Path) || !validHost(sr.Authority) {
		return false
	}
	clientIP, _, err := net.SplitHostPort(sr.RemoteAddr)
	if err != nil {
		return false
	}
	x := streams.Get().(*streamExchange)
	defer func() {
		x.exchange, x.s, x.w, x.ctx, x.req, x.tg = exchange{}, nil, nil, nil, Request{}, Target{}
		if cap(x.out) > 16<<10 {
			x.out = nil
		}
		clear(x.xff)
		streams.Put(x)
	}()
	if !x.check(sr.Fields, s.TrustForwarded) {
		return false
	}
	req := &x.req
	*req = Request{Host: sr.Authority, Path: targetPath(sr.Path), Head: sr.Head, Start: sr.Start, TLS: sr.TLS != nil,
		remote: sr.RemoteAddr, tls: sr.TLS, mk: sr.HTTP}
	t := &x.tg
	ex := s.Handler.Route(req, t)
	if ex == nil {
		return false
	}
	s.streamReqs.Add(1)
	x.exchange = exchange{ex: ex, t: t, addr: t.Addr, head: sr.Head, start: sr.Start}
	x.s, x.w, x.ctx = s, w, sr.Context
	defer x.abort() // on a panic; a no-op once done
	if rs, ok := ex.(Responder); ok {
		rw := streamResponse{w: w}
		rs.Respond(&rw, req.HTTP())
		x.res = Result{Status: rw.status, Bytes: rw.bytes}
	} else {
		x.out = x.appendHead(x.out[:0], sr, clientIP, s.TrustForwarded)
		x.proxy()
	}
	x.done = true
	ex.Done(&x.res)
	return true
}

// FastStreams returns how many HTTP/2 requests the fast path served
// (ServeStream); FastRequests counts the HTTP/1.x ones.
func (s *Server) FastStreams() int64 { return s.streamReqs.Load() }

// validTarget reports whether parseRequest takes target.
func validTarget[T string | []byte](target T) bool {
	if len(target) == 0 || target[0] != '/' || len(target) > maxTargetLen {
		return false
	}
	for i := 0; i < len(target); i++ {
		c := target[i]
		if !targetChar[c] {
			return false
		}
		if c == '%' && (i+2 >= len(target) || !isHex(target[i+1]) || !isHex(target[i+2])) {
			return false
		}
		if c == '?' {
			for j := i + 1; j < len(target); j++ {
				if target[j] == ';' {
					// ReverseProxy drops query parameters net/url cannot
					// parse, against parameter smuggling: let it.
					return false
				}
			}
		}
	}
	return true
}

// validHost reports whether parseRequest takes host as a Host value.
func validHost[T string | []byte](host T) bool {
	if len(host) == 0 {
		return false
	}
	for i := 0; i < len(host); i++ {
		if !hostChar[host[i]] {
			return false
		}
	}
	return true
}

// check reads the fields as parseRequest reads a head's: false for one
// it leaves to net/http. HTTP/2 has checked the names and values.
func (x *streamExchange) check(fields []hpack.HeaderField, trust bool) bool {
	x.xff = x.xff[:0]
	x.xfProto, x.xfHost, x.realIP = false, false, false
	for i := range fields {
		f := &fields[i]
		switch headerKind(f.Name) {
		case hConnection, hUnfastable, hContentLength, hTransferEncoding, hTrailer:
			return false
		case hForwardedFor:
			if trust {
				x.xff = append(x.xff, f.Value)
			}
		case hForwardedProto:
			x.xfProto = trust
		case hForwardedHost:
			x.xfHost = trust
		case hRealIP:
			x.realIP = trust
		}
	}
	return true
}

// appendHead appends the request head sent upstream, as the edge's
// net/http path writes it for the same request (ReverseProxy's outbound
// request, written by the Transport): the Host (or the Target's HostAs),
// the first User-Agent, the fields less hop-by-hop ones, the Cookie fields
// joined into one (RFC 9113 8.2.3), and the forwarding fields as
// appendUpstreamHead sets them.
func (x *streamExchange) appendHead(b []byte, sr *StreamRequest, clientIP string, trust bool) []byte {
	if sr.Head {
		b = append(b, "HEAD "...)
	} else {
		b = append(b, "GET "...)
	}
	b = append(b, x.t.Prefix...)
	b = append(b, sr.Path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	if x.t.HostAs != "" {
		b = append(b, x.t.HostAs...)
	} else {
		b = append(b, sr.Authority...)
	}
	b = append(b, "\r\n"...)
	ua, cookies := false, 0
	for i := range sr.Fields {
		f := &sr.Fields[i]
		forward := true
		switch headerKind(f.Name) {
		case hHost, hForwardedFor, hHopByHop:
			forward = false
		case hForwardedProto, hForwardedHost, hForwarded, hRealIP:
			forward = trust
		case hOther:
			switch f.Name {
			case "user-agent":
				// As net/http writes it: the first value, none when empty.
				if !ua && f.Value != "" {
					b = appendField(b, "User-Agent", f.Value)
				}
				ua, forward = true, false
			case "cookie":
				cookies++
				forward = false
			default:
				forward = trust || !ForwardingAlias(f.Name)
			}
		}
		if forward {
			b = appendCanonical(b, f.Name)
			b = append(b, ": "...)
			b = append(b, trimOWS(f.Value)...)
			b = append(b, "\r\n"...)
		}
	}
	if cookies > 0 {
		b = append(b, "Cookie: "...)
		at := len(b)
		n := 0
		for i := range sr.Fields {
			if f := &sr.Fields[i]; f.Name == "cookie" {
				if n > 0 {
					b = append(b, "; "...)
				}
				b = append(b, f.Value...)
				n++
			}
		}
		b = append(b[:at], trimOWS(b[at:])...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "X-Forwarded-For: "...)
	at := len(b)
	for _, v := range x.xff {
		b = append(b, v...)
		b = append(b, ", "...)
	}
	b = append(b, clientIP...)
	b = append(b[:at], trimOWS(b[at:])...)
	b = append(b, "\r\n"...)
	return appendForwarded(b, clientIP, x.realIP, x.xfProto, x.xfHost, sr.TLS != nil, sr.Authority)
}

// appendField appends a header line, its value trimmed as net/http writes
// it.
func appendField(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, trimOWS(value)...)
	return append(b, "\r\n"...)
}

// appendCanonical appends a lower-case token as
// textproto.CanonicalMIMEHeaderKey spells it.
func appendCanonical(b []byte, name string) []byte {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b = append(b, c)
		upper = c == '-'
	}
	return b
}

// afterFunc is context.AfterFunc, without its context and goroutine
// when ctx has an AfterFunc of its own, as an HTTP/2 stream's has: then f
// runs in the goroutine that cancels ctx, so it must not block.
func afterFunc(ctx context.Context, f func()) (stop func() bool) {
	if a, ok := ctx.(interface{ AfterFunc(func()) func() bool }); ok {
		return a.AfterFunc(f)
	}
	return context.AfterFunc(ctx, f)
}

// proxy sends the request to the target and relays its answer to the
// stream, with fastExchange.proxy's retries and failures; a client that
// resets the stream ends the wait.
func (x *streamExchange) proxy() {
	deadline := x.deadline()
	for {
		if x.ctx.Err() != nil {
			x.res.Status = http.StatusBadGateway // the client left
			return
		}
		pc, err := x.t.Transport.connect(x.addr, deadline)
		if err == nil {
			stop := afterFunc(x.ctx, pc.abort)
			var res *http.Response
			if res, err = x.send(pc, deadline); err == nil {
				x.ex.Answered(res.StatusCode)
				x.relay(pc, res, stop, deadline)
				return
			}
			stop()
			_ = pc.conn.Close()
			if x.ctx.Err() != nil || isClientError(err) {
				x.s.log().Debug("client gone before the response", "host", x.req.Host, "err", err)
				x.res.Status = http.StatusBadGateway
				return
			}
			if pc.reused && pc.got == 0 && !isTimeout(err) {
				continue // a stale kept-alive connection: the same upstream, on another
			}
		}
		if f, again := x.failure(err, deadline); !again {
			x.failed(f, err)
			return
		}
	}
}

// send writes the request head on pc and reads the head of the answer,
// passing informational answers on to the client as ReverseProxy does.
func (x *streamExchange) send(pc *upConn, deadline time.Time) (*http.Response, error) {
	pc.setDeadline(deadline, x.start)
	pc.got = 0
	if err := pc.sendHead(x.out); err != nil {
		return nil, err
	}
	req := getRequest
	if x.head {
		req = headRequest
	}
	for {
		pc.limit = maxResponseHeaderBytes
		res, err := readResponseInto(pc, req, x.w.Header())
		if err != nil {
			return nil, err
		}
		switch {
		case res.StatusCode == http.StatusSwitchingProtocols:
			return nil, errSwitchedProtocols
		case res.StatusCode < 100 || res.StatusCode > 199:
			pc.limit = -1
			return res, nil
		}
		h := x.w.Header() // not res.Header: a 1xx is net/http's to read
		for k, vv := range res.Header {
			h[k] = append(h[k], vv...)
		}
		x.w.WriteHeader(res.StatusCode)
		clear(h)
	}
}

// relay copies an answer to the stream as ReverseProxy does: the header
// less hop-by-hop fields, declared trailers, the body flushed as it comes
// when it is streamed, the trailers; a body cut short resets the stream.
// pc goes back to the pool after a whole answer.
func (x *streamExchange) relay(pc *upConn, res *http.Response, stop func() bool, deadline time.Time) {
	w := x.w
	h := w.Header()
	removeHopByHop(res.Header)
	if len(h) == 0 { // else the fast parser put the header in h
		for k, vv := range res.Header {
			h[k] = vv
		}
	}
	announced := AnnounceTrailers(h, res)
	x.t.Controls.Apply(h)
	x.res.Status = res.StatusCode
	w.WriteHeader(res.StatusCode)
	n, err := CopyBody(w, res.Body, Streamed(res))
	x.res.Bytes += n
	if err != nil {
		stop()
		_ = pc.conn.Close()
		x.s.log().Debug("answer cut short", "host", x.req.Host, "path", x.req.Path, "err", err)
		x.done = true
		x.ex.Done(&x.res)
		panic(http.ErrAbortHandler)
	}
	_ = res.Body.Close()
	if stop() && !res.Close && !x.head {
		// The deadline stays: the next request sets its own (deadline.go).
		x.t.Transport.pool.put(pc)
	} else {
		_ = pc.conn.Close()
	}
	CopyTrailers(w, res, announced)
}

// AnnounceTrailers declares an answer's trailers in h, the client's
// header, as ReverseProxy does, and returns how many it declared.
func AnnounceTrailers(h http.Header, res *http.Response) int {
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		h.Add("Trailer", strings.Join(keys, ", "))
	}
	return announced
}

// CopyTrailers passes an answer's trailers, read once its body is
// closed, to w as ReverseProxy does: the answer chunked, so that no
// length is computed for a short body with trailers; by name when they
// are the announced ones, else each with http.TrailerPrefix.
func CopyTrailers(w http.ResponseWriter, res *http.Response, announced int) {
	if len(res.Trailer) == 0 {
		return
	}
	_ = http.NewResponseController(w).Flush()
	h := w.Header()
	prefix := ""
	if len(res.Trailer) != announced {
		prefix = http.TrailerPrefix
	}
	for k, vv := range res.Trailer {
		for _, v := range vv {
			h.Add(prefix+k, v)
		}
	}
}

// Copy buffers of answers proxied for a ResponseWriter, as ReverseProxy's.
var copyBuffers = sync.Pool{New: func() any { return new([32 << 10]byte) }}

// CopyBody copies an answer's body to w with a pooled buffer, flushing
// after each write when flush is set, the head first, however late the
// body comes, as ReverseProxy's first flush sends it (so nothing is
// sniffed). It returns the bytes written and a read or write error (a
// write's as a client error), not io.EOF.
func CopyBody(w http.ResponseWriter, body io.Reader, flush bool) (int64, error) {
	buf := copyBuffers.Get().(*[32 << 10]byte)
	defer copyBuffers.Put(buf)
	var rc *http.ResponseController
	if flush {
		rc = http.NewResponseController(w)
		_ = rc.Flush()
	}
	var written int64
	for {
		n, rerr := body.Read(buf[:])
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return written, clientError{werr}
			}
			written += int64(n)
			if flush {
				_ = rc.Flush()
			}
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
	}
}

// Streamed reports whether an answer is flushed as it comes, as
// ReverseProxy tells it: server-sent events, or no length.
func Streamed(res *http.Response) bool {
	if res.ContentLength == -1 {
		return true
	}
	ct := res.Header.Get("Content-Type")
	if len(ct) < len("text/event-stream") || !strings.EqualFold(ct[:len("text/event-stream")], "text/event-stream") {
		return false
	}
	mt, _, _ := mime.ParseMediaType(ct)
	return mt == "text/event-stream"
}

// failed answers a request that got no answer with the server's own
// error page, as the Exchange words it, under the Target's controls.
func (x *streamExchange) failed(f Failure, err error) {
	status, reason, msg := x.ex.Failed(f, err)
	x.res.Status, x.res.Reason = status, reason
	rw := streamResponse{w: x.w, ctl: x.t.Controls}
	x.s.errorPage()(&rw, x.req.HTTP(), status, reason, msg)
	x.res.Bytes = rw.bytes
}

// streamResponse is the stream's writer as a Responder or an error page
// gets it: it counts the answer, and applies header controls to it.
type streamResponse struct {
	w      http.ResponseWriter
	ctl    *HeaderControls
	status int
	bytes  int64
}

var (
	_ http.ResponseWriter = (*streamResponse)(nil)
	_ http.Flusher        = (*streamResponse)(nil)
)

func (rw *streamResponse) Header() http.Header { return rw.w.Header() }

// Unwrap lets http.ResponseController reach the stream.
func (rw *streamResponse) Unwrap() http.ResponseWriter { return rw.w }

func (rw *streamResponse) WriteHeader(code int) {
	if rw.status == 0 && code >= 200 {
		rw.status = code
		rw.ctl.Apply(rw.w.Header())
	}
	rw.w.WriteHeader(code)
}

func (rw *streamResponse) Write(p []byte) (int, error) {
	if rw.status == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	n, err := rw.w.Write(p)
	rw.bytes += int64(n)
	return n, err
}

func (rw *streamResponse) Flush() {
	if rw.status == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	if f, ok := rw.w.(http.Flusher); ok {
		f.Flush()
	}
}
