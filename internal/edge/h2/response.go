package h2

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// responseWriter is a stream's http.ResponseWriter. The handler's
// goroutine alone uses it.
type responseWriter struct {
	st   *stream
	req  *http.Request
	head bool

	header      http.Header
	status      int
	wroteHeader bool // a final status is set
	sentHeader  bool // its HEADERS are queued
	ended       bool // END_STREAM is queued
	done        bool // the handler returned
	failed      error

	// Taken from the header at WriteHeader, as net/http snapshots it.
	fields   []hpack.HeaderField
	hasCT    bool
	hasCE    bool
	hasDate  bool
	clen     string // a valid Content-Length the handler set
	declLen  int64  // its value, or -1
	noLen    bool   // the handler set Content-Length to nothing: none is added
	trailers []string
	closeReq bool // Connection: close

	buf     *[]byte
	n       int
	written int64
}

var (
	_ http.Flusher = (*responseWriter)(nil)

	continueFields = []hpack.HeaderField{{Name: ":status", Value: "100"}}
)

func (rw *responseWriter) Header() http.Header {
	if rw.header == nil {
		rw.header = make(http.Header)
	}
	return rw.header
}

func (rw *responseWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if rw.wroteHeader || rw.done {
		return
	}
	if code < 200 {
		// Informational: sent at once, with the header as it is (RFC
		// 8297: the map is not cleared).
		if rw.failed == nil {
			fields := rw.headerFields(code, false)
			rw.st.c.w.queue(item{kind: kindHeaders, st: rw.st, fields: fields})
			rw.st.c.w.kick()
		}
		return
	}
	rw.status = code
	rw.wroteHeader = true
	rw.declLen = -1
	rw.fields = rw.headerFields(code, true)
}

// headerFields are the fields of the header map for the wire, with
// :status first. final records what the answer's own rules need.
func (rw *responseWriter) headerFields(code int, final bool) []hpack.HeaderField {
	h := rw.header
	fields := make([]hpack.HeaderField, 1, len(h)+4)
	fields[0] = hpack.HeaderField{Name: ":status", Value: statusText(code)}
	for k, vv := range h {
		switch k {
		case "Connection":
			if final && len(vv) > 0 && vv[0] == "close" {
				rw.closeReq = true
			}
			continue
		case "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade":
			continue
		case "Content-Length":
			if !final {
				continue
			}
			if len(vv) == 0 || vv[0] == "" {
				rw.noLen = true
			} else if cl, err := strconv.ParseUint(vv[0], 10, 63); err == nil {
				rw.clen, rw.declLen = vv[0], int64(cl)
			}
			continue
		case "Content-Type":
			rw.hasCT = rw.hasCT || final
		case "Content-Encoding":
			rw.hasCE = rw.hasCE || final && len(vv) > 0 && vv[0] != ""
		case "Date":
			rw.hasDate = rw.hasDate || final
		case "Trailer":
			if final {
				for _, v := range vv {
					for k := range strings.SplitSeq(v, ",") {
						rw.declareTrailer(k)
					}
				}
			}
		}
		if strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		name := lowerKey(k)
		if !httpguts.ValidHeaderFieldName(name) {
			continue
		}
		for _, v := range vv {
			if httpguts.ValidHeaderFieldValue(v) {
				fields = append(fields, hpack.HeaderField{Name: name, Value: v})
			}
		}
	}
	return fields
}

func (rw *responseWriter) declareTrailer(k string) {
	k = http.CanonicalHeaderKey(strings.TrimSpace(k))
	if !httpguts.ValidTrailerHeader(k) {
		return
	}
	for _, t := range rw.trailers {
		if t == k {
			return
		}
	}
	rw.trailers = append(rw.trailers, k)
}

func (rw *responseWriter) Write(p []byte) (int, error) {
	if rw.done {
		return 0, errors.New("h2: Write after the handler returned")
	}
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(rw.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if rw.failed != nil {
		return 0, rw.failed
	}
	rw.written += int64(len(p))
	if rw.declLen >= 0 && rw.written > rw.declLen {
		return 0, errors.New("h2: handler wrote more than the declared Content-Length")
	}
	n := len(p)
	for len(p) > 0 {
		if rw.buf == nil {
			rw.buf = getBuf()
		}
		c := copy((*rw.buf)[rw.n:], p)
		rw.n += c
		p = p[c:]
		if rw.n == len(*rw.buf) {
			if err := rw.flush(false); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

func (rw *responseWriter) WriteString(s string) (int, error) {
	if rw.done || rw.failed != nil || !rw.wroteHeader || len(s) > bufSize {
		return rw.Write([]byte(s))
	}
	if rw.buf != nil && rw.n+len(s) > len(*rw.buf) {
		return rw.Write([]byte(s))
	}
	if !bodyAllowed(rw.status) {
		return 0, http.ErrBodyNotAllowed
	}
	rw.written += int64(len(s))
	if rw.declLen >= 0 && rw.written > rw.declLen {
		return 0, errors.New("h2: handler wrote more than the declared Content-Length")
	}
	if rw.buf == nil {
		rw.buf = getBuf()
	}
	rw.n += copy((*rw.buf)[rw.n:], s)
	return len(s), nil
}

// Flush sends the head, and what the body has buffered.
func (rw *responseWriter) Flush() { _ = rw.FlushError() }

// FlushError is Flush, with its error (for http.ResponseController).
func (rw *responseWriter) FlushError() error {
	if rw.done {
		return errors.New("h2: Flush after the handler returned")
	}
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.failed != nil {
		return rw.failed
	}
	if rw.st.reset.Load() {
		return errStreamReset
	}
	return rw.flush(false)
}

// flush queues the head when it has not gone, and the buffered body;
// end ends the stream with them.
func (rw *responseWriter) flush(end bool) error {
	err := rw.queueFlush(end)
	rw.st.c.w.kick()
	return err
}

// queueFlush is flush, less the write: the frames are queued.
func (rw *responseWriter) queueFlush(end bool) error {
	var p []byte
	if rw.buf != nil {
		p = (*rw.buf)[:rw.n]
	}
	if !rw.sentHeader {
		rw.sendHeaders(end && len(p) == 0, p)
	}
	if rw.ended {
		putBuf(rw.buf)
		rw.buf, rw.n = nil, 0
		return nil
	}
	if len(p) == 0 && !end {
		return nil
	}
	buf := rw.buf
	rw.buf, rw.n = nil, 0
	if err := rw.st.sendData(p, buf, end); err != nil {
		rw.failed = err
		return err
	}
	if end {
		rw.ended = true
	}
	return nil
}

// sendHeaders queues the answer's HEADERS, with what net/http adds: a
// Content-Length once the whole body is known, a sniffed Content-Type,
// the Date.
func (rw *responseWriter) sendHeaders(end bool, p []byte) {
	rw.sentHeader = true
	rw.st.body.noContinue()
	fields := rw.fields
	allowed := bodyAllowed(rw.status)
	switch {
	case rw.clen != "":
		fields = append(fields, hpack.HeaderField{Name: "content-length", Value: rw.clen})
	case rw.done && allowed && (len(p) > 0 || !rw.head) && !rw.noLen:
		fields = append(fields, hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(p))})
	}
	if !rw.hasCE && !rw.hasCT && allowed && len(p) > 0 {
		fields = append(fields, hpack.HeaderField{Name: "content-type", Value: http.DetectContentType(p)})
	}
	if !rw.hasDate {
		fields = append(fields, hpack.HeaderField{Name: "date", Value: httpDate()})
	}
	if rw.closeReq {
		rw.st.c.startGracefulShutdown()
	}
	end = end || rw.head
	rw.ended = end
	rw.st.c.w.queue(item{kind: kindHeaders, st: rw.st, fields: fields, end: end})
}

// finish completes the answer once the handler returns.
func (rw *responseWriter) finish() {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	rw.done = true
	st := rw.st
	if rw.failed == nil && !st.reset.Load() {
		for k := range rw.header {
			if strings.HasPrefix(k, http.TrailerPrefix) {
				rw.declareTrailer(strings.TrimPrefix(k, http.TrailerPrefix))
			}
		}
		trailers := len(rw.trailers) > 0
		err := rw.flush(!trailers)
		if err == nil && trailers && !rw.ended {
			rw.ended = true
			st.c.w.queue(item{kind: kindHeaders, st: st, fields: rw.trailerFields(), end: true})
			st.c.w.kick()
		}
	}
	putBuf(rw.buf)
	rw.buf = nil
	st.c.localDone(st)
}

// trailerFields are the declared trailers' values, and those set with
// http.TrailerPrefix.
func (rw *responseWriter) trailerFields() []hpack.HeaderField {
	var fields []hpack.HeaderField
	for _, k := range rw.trailers {
		vv := rw.header[k]
		if pv, ok := rw.header[http.TrailerPrefix+k]; ok {
			vv = pv
		}
		name := lowerKey(k)
		for _, v := range vv {
			if httpguts.ValidHeaderFieldValue(v) {
				fields = append(fields, hpack.HeaderField{Name: name, Value: v})
			}
		}
	}
	return fields
}

// abort resets the stream with code, as after a handler's panic.
func (rw *responseWriter) abort(code http2.ErrCode) {
	rw.done = true
	putBuf(rw.buf)
	rw.buf = nil
	st := rw.st
	if st.reset.Load() {
		return
	}
	c := st.c
	c.resetStream(st, fmt.Errorf("h2: handler aborted the stream"))
	_ = c.w.enqueueControl(item{kind: kindRST, st: st, id: st.id, code: code})
}

// localDone records that st's answer is complete: the stream closes, at
// once when the client's side is done, with RST_STREAM(NO_ERROR) when the
// client is still sending a body nobody reads any more.
func (c *conn) localDone(st *stream) {
	c.mu.Lock()
	st.localDone = true
	remote := st.remoteDone.Load()
	c.mu.Unlock()
	if st.reset.Load() {
		c.forget(st)
		return
	}
	if !remote {
		_ = c.w.enqueueControl(item{kind: kindRST, st: st, id: st.id, code: http2.ErrCodeNo})
		st.body.fail(errStreamReset)
	}
	c.forget(st)
}

// sendData queues p (held in buf, given back once written) as DATA
// frames within the flow-control windows, waiting for them as needed.
func (st *stream) sendData(p []byte, buf *[]byte, end bool) error {
	c := st.c
	off := 0
	kicked := false
	for {
		c.fmu.Lock()
		take := 0
		for {
			if st.sendErr != nil || c.closed {
				err := st.sendErr
				c.fmu.Unlock()
				if off == 0 {
					// Else frames queued before hold part of buf, and the
					// writer may be copying them still: left to the GC.
					putBuf(buf)
				}
				if err == nil {
					err = errConnClosed
				}
				return err
			}
			rem := len(p) - off
			if rem == 0 {
				break
			}
			if c.queuedData < maxQueuedData {
				take = int(min(int64(rem), c.sendWin, st.sendWin, int64(c.peerMaxFrame.Load())))
				if take > 0 {
					break
				}
			}
			if !kicked {
				// What this stream queued goes out before it waits
				// (the wait may be for that very room).
				kicked = true
				c.fmu.Unlock()
				c.w.kick()
				c.fmu.Lock()
				continue
			}
			c.fcond.Wait()
		}
		c.sendWin -= int64(take)
		st.sendWin -= int64(take)
		c.queuedData += take
		c.fmu.Unlock()
		kicked = false
		last := off+take == len(p)
		it := item{kind: kindData, st: st, data: p[off : off+take], end: end && last}
		if last {
			it.buf = buf
		}
		c.w.queue(it)
		off += take
		if last {
			return nil
		}
	}
}

// bodyAllowed reports whether an answer with status may have a body.
func bodyAllowed(status int) bool {
	switch {
	case status >= 100 && status <= 199:
		return false
	case status == 204, status == 304:
		return false
	}
	return true
}

var statusTexts = func() (t [600]string) {
	for i := 100; i < len(t); i++ {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

func statusText(code int) string {
	if code < len(statusTexts) {
		return statusTexts[code]
	}
	return strconv.Itoa(code)
}

// lowerKey is a header's name as HTTP/2 writes it.
func lowerKey(k string) string {
	if v, ok := commonLower[k]; ok {
		return v
	}
	return strings.ToLower(k)
}

// canonicalKey is a field name as http.Header keys it.
func canonicalKey(k string) string {
	if v, ok := commonCanonical[k]; ok {
		return v
	}
	return http.CanonicalHeaderKey(k)
}

var commonLower, commonCanonical = func() (map[string]string, map[string]string) {
	names := []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
		"Access-Control-Allow-Credentials", "Access-Control-Allow-Headers", "Access-Control-Allow-Methods",
		"Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "Access-Control-Max-Age",
		"Access-Control-Request-Headers", "Access-Control-Request-Method", "Age", "Allow", "Alt-Svc",
		"Authorization", "Cache-Control", "Cdn-Loop", "Content-Disposition", "Content-Encoding",
		"Content-Language", "Content-Length", "Content-Location", "Content-Range", "Content-Security-Policy",
		"Content-Type", "Cookie", "Date", "Etag", "Expect", "Expires", "Forwarded", "From", "Host",
		"If-Match", "If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since", "Last-Modified",
		"Link", "Location", "Max-Forwards", "Origin", "Pragma", "Priority", "Proxy-Authenticate",
		"Proxy-Authorization", "Range", "Referer", "Refresh", "Retry-After", "Server", "Set-Cookie",
		"Strict-Transport-Security", "Te", "Trailer", "User-Agent", "Vary", "Via", "Www-Authenticate",
		"X-Cache", "X-Content-Type-Options", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Frame-Options", "X-Real-Ip", "X-Request-Id", "X-Xss-Protection", "Upgrade-Insecure-Requests",
		"Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User", "Sec-Ch-Ua",
		"Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform", "Traceparent", "Tracestate", "Grpc-Status", "Grpc-Message",
		"Grpc-Encoding", "Grpc-Accept-Encoding", "Grpc-Timeout",
	}
	lower := make(map[string]string, len(names))
	canon := make(map[string]string, len(names))
	for _, n := range names {
		l := strings.ToLower(n)
		lower[n] = l
		canon[l] = n
	}
	return lower, canon
}()

// httpDate is the Date of answers, formatted once a second.
func httpDate() string {
	now := time.Now()
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.s
	}
	d := &cachedDate{sec: sec, s: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.s
}

type cachedDate struct {
	sec int64
	s   string
}

var dateCache atomic.Pointer[cachedDate]
