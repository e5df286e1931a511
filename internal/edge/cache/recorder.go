package cache

import (
	"net/http"
	"os"
	"strconv"
	"time"
)

// A recorder is the ResponseWriter the next handler writes to when the
// cache goes to the origin. It decides at WriteHeader what to do with the
// response:
//
//   - a 304 to the cache's own revalidation, or a 5xx that stale-if-error
//     lets the cache hide, is kept from the client (outcome swallowed);
//   - anything else is forwarded to the client as it arrives — streamed,
//     flushed when the handler flushes — and, when it may be stored, teed
//     into a body sink bounded by MaxObjectBytes.
//
// For a background revalidation there is no client: w is nil.
type recorder struct {
	c     *Cache
	w     http.ResponseWriter // nil for a background revalidation
	req   *http.Request       // the request as sent to next
	rc    *directives         // the client's request directives
	stale *entry              // the entry being revalidated, or nil
	fwd   string              // the cache-status fwd value if forwarded

	hdr         http.Header
	status      int
	wroteHeader bool
	outcome     outcome

	storing   bool
	lifetime  time.Duration
	sink      bodySink
	clientErr bool
}

type outcome int

const (
	outcomeForwarded  outcome = iota // the origin's response went to the client (or nowhere, in the background)
	outcomeNotChanged                // 304 to a revalidation
	outcomeStaleError                // 5xx hidden by stale-if-error
)

var (
	_ http.ResponseWriter = (*recorder)(nil)
	_ http.Flusher        = (*recorder)(nil)
)

func (rec *recorder) Header() http.Header { return rec.hdr }

func (rec *recorder) WriteHeader(code int) {
	if rec.wroteHeader {
		return
	}
	if code < 200 {
		rec.informational(code)
		return
	}
	rec.wroteHeader = true
	rec.status = code
	c := rec.c

	if rec.stale != nil {
		switch {
		case code == http.StatusNotModified:
			rec.outcome = outcomeNotChanged
			return
		case code >= 500 && staleIfError(rec.stale, rec.rc, rec.stale.age(c.now())):
			rec.outcome = outcomeStaleError
			return
		}
	}

	cc := parseDirectives(rec.hdr)
	date, err := http.ParseTime(rec.hdr.Get("Date"))
	if err != nil {
		date = c.now()
	}
	rec.lifetime = freshnessLifetime(code, rec.hdr, &cc, date, c.opts.DefaultTTL)
	reason := noStoreReason(rec.req, rec.rc, code, rec.hdr, &cc, rec.lifetime, c.unkeyedCookies(rec.req.Header))
	if reason == "" {
		if n, err := strconv.ParseInt(rec.hdr.Get("Content-Length"), 10, 64); err == nil && n > c.opts.MaxObjectBytes && rec.req.Method != http.MethodHead {
			reason = "too large"
		}
	}
	if reason == "" {
		rec.storing = true
		rec.sink = bodySink{max: c.opts.MaxObjectBytes, spillAt: -1}
		if c.files != nil {
			rec.sink.spillAt = c.opts.MemoryObjectBytes
			rec.sink.files = c.files
		}
		if n, err := strconv.ParseInt(rec.hdr.Get("Content-Length"), 10, 64); err == nil && n > 0 && (rec.sink.spillAt < 0 || n <= rec.sink.spillAt) {
			rec.sink.buf = make([]byte, 0, n)
		}
	} else {
		c.log.Debug("cache: not storing", "host", rec.req.Host, "path", rec.req.URL.Path, "status", code, "reason", reason)
	}

	if rec.w == nil {
		return
	}
	h := rec.w.Header()
	for k, v := range rec.hdr {
		h[k] = v
	}
	c.setStatus(h, fwdStatus(rec.fwd, code, rec.stale != nil, rec.storing))
	rec.w.WriteHeader(code)
}

// informational passes a 1xx response (103 Early Hints) to the client. The
// header fields the handler set for it are removed again, as net/http does
// not clear them after a 1xx.
func (rec *recorder) informational(code int) {
	if rec.w == nil {
		return
	}
	h := rec.w.Header()
	for k, v := range rec.hdr {
		h[k] = v
	}
	rec.w.WriteHeader(code)
	for k := range rec.hdr {
		delete(h, k)
	}
}

func (rec *recorder) Write(p []byte) (int, error) {
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	if rec.outcome != outcomeForwarded {
		return len(p), nil
	}
	if rec.storing && !rec.sink.write(p) {
		rec.storing = false
		rec.sink.discard()
	}
	if rec.w == nil {
		return len(p), nil
	}
	n, err := rec.w.Write(p)
	if err != nil {
		rec.clientErr = true
	}
	return n, err
}

// Flush sends what the origin has written so far to the client.
func (rec *recorder) Flush() {
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	if rec.w != nil && rec.outcome == outcomeForwarded {
		_ = http.NewResponseController(rec.w).Flush()
	}
}

// Unwrap gives http.ResponseController the client's writer.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.w }

// complete reports whether the recorded body is whole: the handler
// returned normally, the client took every byte, and a declared
// Content-Length was met.
func (rec *recorder) complete() bool {
	if rec.clientErr || !rec.storing {
		return false
	}
	if rec.req.Method == http.MethodHead || !bodyAllowed(rec.status) {
		return true
	}
	if cl := rec.hdr.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		return err == nil && n == rec.sink.n
	}
	return true
}

// bodySink collects a body to be stored: in memory, moving to a temporary
// file in the disk store once it passes spillAt (when there is one), and
// giving up past max.
type bodySink struct {
	buf     []byte
	f       *os.File
	n       int64
	spillAt int64 // -1: never spill
	max     int64
	files   *diskStore
}

// write adds p, or reports false when the body cannot be stored.
func (s *bodySink) write(p []byte) bool {
	if s.n+int64(len(p)) > s.max {
		return false
	}
	if s.f == nil && s.spillAt >= 0 && s.n+int64(len(p)) > s.spillAt {
		f, err := s.files.createTemp()
		if err != nil {
			return false
		}
		s.f = f
		if _, err := f.Write(s.buf); err != nil {
			return false
		}
		s.buf = nil
	}
	s.n += int64(len(p))
	if s.f != nil {
		_, err := s.f.Write(p)
		return err == nil
	}
	s.buf = append(s.buf, p...)
	return true
}

// discard drops whatever was collected.
func (s *bodySink) discard() {
	if s.f != nil {
		_ = s.f.Close()
		_ = os.Remove(s.f.Name())
		s.f = nil
	}
	s.buf = nil
}
