package h1

import (
	"bufio"
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
)

// Answers the Handler writes itself (the edge's cache hits): the request
// is read as net/http's server would give it to a handler, and the answer
// is written as net/http's server writes a handler's, straight on the fast
// connection.

// Responder is an Exchange whose request the Handler answers itself,
// without an upstream: the Server calls Respond instead of proxying (the
// Target is not used), then Done. Respond must write a whole answer to w
// (it may not hijack, and a Flush does nothing).
type Responder interface {
	Exchange
	Respond(w http.ResponseWriter, r *http.Request)
}

// HTTP returns the request as net/http's server hands it to a handler:
// method, URL, Host, every header line the client sent but Host, remote
// address, TLS state, no body. It is made on first use and is the one
// Respond gets; the Request itself is valid only during Route.
func (r *Request) HTTP() *http.Request {
	if r.hr != nil {
		return r.hr
	}
	if r.mk != nil {
		r.hr = r.mk()
		return r.hr
	}
	target := string(r.h.target.of(r.raw))
	u, err := url.ParseRequestURI(target)
	if err != nil {
		// parseRequest took only targets net/url reads; a fallback all
		// the same.
		u = &url.URL{Path: r.Path}
	}
	method := http.MethodGet
	if r.Head {
		method = http.MethodHead
	}
	// The request and its header map are the connection's, made again
	// for each request that needs them: the last is done with them (its
	// Exchange's Done has been called) before the next is read.
	h := r.hdr
	if h == nil {
		h = make(http.Header, 8)
		r.hdr = h
	} else {
		clear(h)
	}
	hr := &r.hreq
	*hr = http.Request{
		Method: method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: http.NoBody, Host: r.Host,
		RemoteAddr: r.remote, RequestURI: target, TLS: r.tls, Close: r.h.close,
	}
	// Every field line, as net/http keeps them: the parser checked each
	// is a plain "name: value" line.
	buf := r.raw
	at := bytes.IndexByte(buf, '\n') + 1
	var hl headerLine
	for {
		if v, end := nextLine(buf, at, &hl); v != headOK || end {
			break
		}
		at = int(hl.line.to)
		name := textproto.CanonicalMIMEHeaderKey(string(hl.name))
		if name == "Host" {
			continue
		}
		hr.Header[name] = append(hr.Header[name], string(hl.value))
	}
	// As net/http (RFC 7234 5.4): Pragma: no-cache without Cache-Control
	// reads as Cache-Control: no-cache.
	if p := hr.Header["Pragma"]; len(p) > 0 && p[0] == "no-cache" {
		if _, ok := hr.Header["Cache-Control"]; !ok {
			hr.Header["Cache-Control"] = []string{"no-cache"}
		}
	}
	r.hr = hr
	return hr
}

// respond has the Responder write its answer and reports whether the
// connection can carry another request.
func (fc *fastConn) respond(x *fastExchange, rs Responder, hr *http.Request) bool {
	// The writer and its header map are the connection's, as the request.
	w := &fc.resp
	h, held := w.h, w.held[:0]
	if h == nil {
		h = make(http.Header, 16)
	} else {
		clear(h)
	}
	if cap(held) > 64<<10 {
		held = nil // a large body is not kept for the next
	}
	*w = fastResponse{bw: fc.bw, h: h, held: held, head: x.head, closeAfter: x.closeAfter, length: -1}
	rs.Respond(w, hr)
	w.finish()
	x.res = Result{Status: w.status, Bytes: w.written}
	x.closeAfter = w.closeAfter
	return !w.broken
}

// fastResponse is the http.ResponseWriter of a Responder: an answer
// framed as net/http's server frames a handler's. A body of a length the
// header gives is written as it comes; one without is held until the
// handler returns, and sent with its length.
type fastResponse struct {
	bw         *bufio.Writer
	h          http.Header
	status     int
	head       bool // a HEAD request: no body goes out
	closeAfter bool
	wroteHead  bool
	length     int64 // the header's Content-Length; -1 none
	written    int64 // body bytes the handler wrote (sent or held)
	held       []byte
	broken     bool // the answer's framing broke: close the connection
}

var (
	_ http.ResponseWriter = (*fastResponse)(nil)
	_ http.Flusher        = (*fastResponse)(nil)
)

func (w *fastResponse) Header() http.Header { return w.h }

func (w *fastResponse) WriteHeader(code int) {
	if w.status != 0 || code < 200 {
		return // informational answers are not sent; a second call is ignored, as net/http does
	}
	w.status = code
	if cl := w.h.Get("Content-Length"); cl != "" && bodyAllowedForStatus(code) {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			w.length = n
		} else {
			delete(w.h, "Content-Length") // net/http drops an invalid one
		}
	}
}

// Flush does nothing: the answer goes out when the handler returns, or as
// it comes for a body of known length.
func (w *fastResponse) Flush() {}

func (w *fastResponse) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowedForStatus(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.length >= 0 {
		if w.written+int64(len(p)) > w.length {
			return 0, http.ErrContentLength
		}
		if !w.wroteHead {
			w.writeHead(p)
		}
		w.written += int64(len(p))
		if !w.head {
			_, _ = w.bw.Write(p)
		}
		return len(p), nil
	}
	w.written += int64(len(p))
	w.held = append(w.held, p...)
	return len(p), nil
}

// finish writes what is left of the answer once the handler returned.
func (w *fastResponse) finish() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.wroteHead {
		if w.length < 0 && bodyAllowedForStatus(w.status) && (!w.head || len(w.held) > 0) {
			w.length = int64(len(w.held))
			w.h["Content-Length"] = []string{strconv.Itoa(len(w.held))}
		}
		w.writeHead(w.held)
		if !w.head {
			_, _ = w.bw.Write(w.held)
		}
		return
	}
	if w.written < w.length && !w.head {
		// Shorter than it said: the client cannot find the end.
		w.broken = true
	}
}

// writeHead writes the status line and header, with what net/http adds:
// Date, a sniffed Content-Type, Connection: close.
func (w *fastResponse) writeHead(body []byte) {
	w.wroteHead = true
	h := w.h
	if bodyAllowedForStatus(w.status) {
		if _, ok := h["Content-Type"]; !ok && len(body) > 0 && len(h["Content-Encoding"]) == 0 {
			h["Content-Type"] = []string{http.DetectContentType(body)}
		}
	} else {
		delete(h, "Transfer-Encoding")
		delete(h, "Content-Length")
		if w.status == http.StatusNotModified {
			delete(h, "Content-Type")
		}
	}
	delete(h, "Transfer-Encoding")
	for _, v := range h["Connection"] {
		if strings.Contains(strings.ToLower(v), "close") {
			w.closeAfter = true
		}
	}
	delete(h, "Connection")
	_, _ = w.bw.WriteString("HTTP/1.1 ")
	writeStatus(w.bw, w.status)
	if _, ok := h["Date"]; !ok {
		writeDate(w.bw)
	}
	writeFields(w.bw, h, nil)
	if w.closeAfter {
		_, _ = w.bw.WriteString("Connection: close\r\n")
	}
	_, _ = w.bw.WriteString("\r\n")
}

// bodyAllowedForStatus reports whether an answer with status may carry a
// body (RFC 9110 6.4.1), as net/http tells it.
func bodyAllowedForStatus(status int) bool {
	switch {
	case status >= 100 && status <= 199:
		return false
	case status == http.StatusNoContent, status == http.StatusNotModified:
		return false
	}
	return true
}
