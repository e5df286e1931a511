package h1

import (
	"bufio"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// pageFunc writes one of the server's own answers (Server.ErrorPage).
type pageFunc = func(w http.ResponseWriter, r *http.Request, status int, reason, msg string)

// plainPage is the ErrorPage of a Server that sets none.
func plainPage(w http.ResponseWriter, _ *http.Request, status int, _, msg string) {
	http.Error(w, msg, status)
}

// writeErrorPage answers with the server's own error page, under the
// target's header controls (nil: none), and returns the size of its body.
func (fc *fastConn) writeErrorPage(head, closeAfter bool, accept string, ctl *HeaderControls, status int, reason, msg string) int64 {
	return writePage(fc.bw, fc.s.errorPage(), head, closeAfter, accept, ctl, status, reason, msg)
}

// writePage writes one of the server's own pages, as page writes it, as a
// whole HTTP/1.1 answer to bw, and returns the size of its body.
func writePage(bw *bufio.Writer, page pageFunc, head, closeAfter bool, accept string, ctl *HeaderControls, status int, reason, msg string) int64 {
	r := &http.Request{Method: http.MethodGet, Header: http.Header{}}
	if head {
		r.Method = http.MethodHead
	}
	if accept != "" {
		r.Header["Accept"] = []string{accept}
	}
	pw := pageWriter{h: http.Header{}}
	page(&pw, r, status, reason, msg)
	if _, ok := pw.h["Content-Length"]; !ok {
		// The answer is framed by its length, whatever page wrote it.
		pw.h["Content-Length"] = []string{strconv.Itoa(len(pw.body))}
	}
	ctl.Apply(pw.h)
	_, _ = bw.WriteString("HTTP/1.1 ")
	writeStatus(bw, pw.status)
	writeDate(bw)
	_ = pw.h.Write(bw)
	if closeAfter {
		_, _ = bw.WriteString("Connection: close\r\n")
	}
	_, _ = bw.WriteString("\r\n")
	if !head {
		_, _ = bw.Write(pw.body)
	}
	return int64(len(pw.body))
}

// pageWriter collects an answer the edge writes itself.
type pageWriter struct {
	h      http.Header
	status int
	body   []byte
}

var _ http.ResponseWriter = (*pageWriter)(nil)

func (w *pageWriter) Header() http.Header { return w.h }

func (w *pageWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *pageWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, p...)
	return len(p), nil
}

// writeStatus writes "CODE TEXT" CRLF.
func writeStatus(bw *bufio.Writer, code int) {
	var b [3]byte
	_, _ = bw.Write(strconv.AppendInt(b[:0], int64(code), 10))
	_ = bw.WriteByte(' ')
	_, _ = bw.WriteString(http.StatusText(code))
	_, _ = bw.WriteString("\r\n")
}

// dateLine is a Date header line, made again when the second changes.
type dateLine struct {
	sec  int64
	line string
}

var lastDate atomic.Pointer[dateLine]

// writeDate writes a Date header line for now, which a proxy adds to an
// answer that has none (RFC 9110 6.6.1).
func writeDate(bw *bufio.Writer) {
	now := time.Now()
	d := lastDate.Load()
	if d == nil || d.sec != now.Unix() {
		d = &dateLine{sec: now.Unix(), line: "Date: " + now.UTC().Format(http.TimeFormat) + "\r\n"}
		lastDate.Store(d)
	}
	_, _ = bw.WriteString(d.line)
}
