package edge

import (
	"html"
	"net/http"
	"strconv"
	"strings"
)

// ErrorHeader names the response header that marks an answer written by the
// edge itself rather than by an instance; its value is one of the Reason
// constants.
const ErrorHeader = "X-Berth-Error"

// Reasons the edge answers a request itself.
const (
	ReasonUnknownHost       = "unknown-host"         // 404: no route claims the Host
	ReasonPaused            = "paused"               // 503: the service is paused
	ReasonNoHealthyInstance = "no-healthy-instance"  // 503: the route lists no backend
	ReasonUnreachable       = "upstream-unreachable" // 502: every backend refused the connection
	ReasonUpstreamError     = "upstream-error"       // 502: a backend failed after the request was sent
	ReasonTimeout           = "timeout"              // 504: the route's Timeout passed before a response
)

// writeError writes one of the edge's own short pages: HTML for browsers,
// plain text for everything else (curl, API clients).
func writeError(w http.ResponseWriter, r *http.Request, status int, reason, msg string) {
	h := w.Header()
	h.Set(ErrorHeader, reason)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	title := strconv.Itoa(status) + " " + http.StatusText(status)
	var body string
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		h.Set("Content-Type", "text/html; charset=utf-8")
		body = `<!doctype html><html><head><meta charset="utf-8"><title>` + title +
			`</title></head><body><h1>` + title + `</h1><p>` + html.EscapeString(msg) +
			`</p><hr><p><small>berth</small></p></body></html>` + "\n"
	} else {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		body = title + ": " + msg + "\n"
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// quoteHost quotes a client-supplied host for a page, cut short so a long
// header cannot fill it.
func quoteHost(h string) string {
	const limit = 100
	if len(h) > limit {
		h = h[:limit] + "..."
	}
	return strconv.Quote(h)
}
