package edge

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"time"
)

// respWriter is the ResponseWriter a request is answered through when the
// edge keeps metrics or an access log, and always on an entrypoint. It
// records the status and body size, and applies an entrypoint's response
// controls on the way out, whoever wrote the answer (origin, cache or edge):
// the sticky cookie, header add/remove, HSTS and custom error pages.
type respWriter struct {
	w         http.ResponseWriter
	ctl       *controls // nil on a service's own hosts
	setCookie string
	tls       bool
	head      bool

	status   int
	bytes    int64
	swallow  bool   // an error page replaced the body: drop what follows
	cache    string // the access log's cache word
	reason   string // X-Berth-Error of an answer the edge wrote
	hijacked bool
}

var (
	_ http.ResponseWriter = (*respWriter)(nil)
	_ http.Flusher        = (*respWriter)(nil)
	_ http.Hijacker       = (*respWriter)(nil)
)

var htmlType = []string{"text/html; charset=utf-8"}

func (rw *respWriter) init(w http.ResponseWriter, r *http.Request, ctl *controls) {
	rw.w, rw.ctl = w, ctl
	rw.tls = r.TLS != nil
	rw.head = r.Method == http.MethodHead
}

func (rw *respWriter) Header() http.Header { return rw.w.Header() }

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (rw *respWriter) Unwrap() http.ResponseWriter { return rw.w }

func (rw *respWriter) WriteHeader(code int) {
	if rw.status != 0 {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		rw.w.WriteHeader(code) // informational; the real answer follows
		return
	}
	rw.status = code
	h := rw.w.Header()
	if v := h[ErrorHeader]; len(v) > 0 {
		rw.reason = v[0]
	}
	if rw.setCookie != "" {
		h["Set-Cookie"] = append(h["Set-Cookie"], rw.setCookie)
	}
	if c := rw.ctl; c != nil {
		c.Apply(h)
		if c.hsts != nil && rw.tls {
			h["Strict-Transport-Security"] = c.hsts
		}
		if c.cache {
			if v := h["Cache-Status"]; len(v) > 0 {
				rw.cache = cacheResult(v[len(v)-1])
			}
		}
		if page, ok := c.pages[code]; ok {
			rw.writePage(h, code, page)
			return
		}
	}
	rw.w.WriteHeader(code)
}

// writePage answers with a custom error page instead of the body that was
// coming.
func (rw *respWriter) writePage(h http.Header, code int, page []byte) {
	for _, k := range [...]string{"Content-Encoding", "Content-Range", "Accept-Ranges", "Etag", "Last-Modified", "Transfer-Encoding", "Vary"} {
		delete(h, k)
	}
	h["Content-Type"] = htmlType
	h["Content-Length"] = []string{strconv.Itoa(len(page))}
	h["Cache-Control"] = []string{"no-store"}
	rw.w.WriteHeader(code)
	if !rw.head {
		n, _ := rw.w.Write(page)
		rw.bytes += int64(n)
	}
	rw.swallow = true
}

func (rw *respWriter) Write(p []byte) (int, error) {
	if rw.status == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.swallow {
		return len(p), nil
	}
	n, err := rw.w.Write(p)
	rw.bytes += int64(n)
	return n, err
}

func (rw *respWriter) Flush() {
	if rw.status == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.swallow {
		return
	}
	if f, ok := rw.w.(http.Flusher); ok {
		f.Flush()
	}
}

func (rw *respWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := rw.w.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	c, brw, err := h.Hijack()
	if err == nil {
		rw.hijacked = true
		if rw.status == 0 {
			rw.status = http.StatusSwitchingProtocols
		}
	}
	return c, brw, err
}

// tracking reports whether requests on a service's own hosts need a
// respWriter: only for metrics or an access log.
func (e *Edge) tracking() bool { return e.ext.metrics != nil || e.ext.log != nil }

// newRouteWriter wraps w for a request on a service's own hosts.
func newRouteWriter(w http.ResponseWriter, r *http.Request) *respWriter {
	rw := &respWriter{}
	rw.init(w, r, nil)
	return rw
}

// finishRoute records a finished request on a service's own hosts.
func (e *Edge) finishRoute(ps *proxyState, rw *respWriter, r *http.Request, start time.Time) {
	label, origin, ls := "", "", e.ext.unknownLS
	if rt := ps.route; rt != nil {
		label = rt.key
		switch rw.reason {
		case ReasonPaused, ReasonNoHealthyInstance, ReasonStarting:
			ls = e.ext.metrics.set(rt.key, "")
		default:
			origin, ls = rt.key, rt.ls
		}
	}
	e.record(ls, rw, r, ps.host, label, origin, start)
}

// record observes one finished request in the metrics and the access log.
func (e *Edge) record(ls *labelSet, rw *respWriter, r *http.Request, host, label, origin string, start time.Time) {
	status := rw.status
	if status == 0 {
		status = http.StatusOK // the handler wrote nothing: net/http sends 200
	}
	e.observe(ls, &accessRecord{
		time: start, entrypoint: label, host: host, method: r.Method, path: r.URL.Path,
		status: status, bytes: rw.bytes, origin: origin, cache: rw.cache, reason: rw.reason,
	})
}

// observe counts rec, whose duration it sets, in the metrics and writes it
// to the access log.
func (e *Edge) observe(ls *labelSet, rec *accessRecord) {
	rec.duration = time.Since(rec.time)
	ls.observe(rec.status, rec.bytes, rec.duration.Seconds())
	if l := e.ext.log; l != nil {
		l.write(rec)
	}
}
