package h2

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// FastRequest is a GET or HEAD stream that ended with its HEADERS frame,
// as the Server's Fast hook gets it: its fields, checked as newRequest
// checks them, with the http.Request made only when asked for.
type FastRequest struct {
	// Authority is :authority (a Host field, when sent, is the same).
	Authority string
	// Path is :path as the client sent it: origin form, printable ASCII,
	// with well-formed %XX escapes.
	Path string
	// Head is true for HEAD, false for GET.
	Head bool
	// Start is when the stream's HEADERS were read.
	Start time.Time
	// TLS is the connection's TLS state for :scheme https, else nil (as
	// http.Request.TLS).
	TLS *tls.ConnectionState
	// RemoteAddr is the client's address.
	RemoteAddr string
	// Fields are the regular fields, with lower-case names, as they came
	// (a Host field among them; several Cookie fields not joined).
	Fields []hpack.HeaderField

	c   *conn
	ctx context.Context
	req *http.Request
}

// Context is the stream's context: done when the client resets the
// stream or the connection ends.
func (r *FastRequest) Context() context.Context { return r.ctx }

// Request returns the request as the Server hands it to its Handler, made
// on the first call.
func (r *FastRequest) Request() *http.Request {
	if r.req != nil {
		return r.req
	}
	fields := make([]hpack.HeaderField, 0, len(r.Fields)+4)
	method := http.MethodGet
	if r.Head {
		method = http.MethodHead
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	fields = append(fields,
		hpack.HeaderField{Name: ":method", Value: method},
		hpack.HeaderField{Name: ":scheme", Value: scheme},
		hpack.HeaderField{Name: ":authority", Value: r.Authority},
		hpack.HeaderField{Name: ":path", Value: r.Path})
	fields = append(fields, r.Fields...)
	req, _, err := r.c.newRequest(fields, true)
	if err != nil {
		// fastRequest checked what newRequest refuses.
		panic("h2: a fast request newRequest refuses: " + err.Error())
	}
	r.req = req.WithContext(r.ctx)
	return r.req
}

// fastRequest is the FastRequest of a HEADERS frame that ended its
// stream, or nil when the stream must go the usual way: anything but a
// plain GET or HEAD, and whatever newRequest or invalidHeaders refuse,
// which that way gets its stream error.
func (c *conn) fastRequest(f *http2.MetaHeadersFrame) *FastRequest {
	fields := f.Fields
	ps, pseudo := pseudoOf(fields)
	if ps.protocol || ps.other {
		return nil
	}
	method, scheme, authority, path := ps.method, ps.scheme, ps.authority, ps.path
	if method != http.MethodGet && method != http.MethodHead || scheme != "https" && scheme != "http" ||
		authority == "" || strings.IndexByte(authority, '@') >= 0 || !httpguts.ValidHostHeader(authority) || !plainPath(path) {
		return nil
	}
	regular := fields[pseudo:]
	host := false
	for _, hf := range regular {
		switch hf.Name {
		case "host":
			if host || hf.Value != authority {
				return nil
			}
			host = true
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
			"te", "expect", "trailer", "content-length":
			return nil
		}
	}
	r := &FastRequest{Authority: authority, Path: path, Head: method == http.MethodHead, Start: time.Now(),
		RemoteAddr: c.remoteAddr, Fields: regular, c: c}
	if scheme == "https" {
		r.TLS = c.tlsState
	}
	return r
}

// plainPath reports whether p is an origin-form path that
// url.ParseRequestURI takes as it is: printable ASCII from '/', with
// well-formed escapes.
func plainPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	query := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c <= ' ' || c >= 0x7f:
			return false
		case c == '?':
			query = true
		case c == '%' && !query:
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
