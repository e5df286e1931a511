package edge

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"

	"github.com/berth-dev/berth/internal/edge/h1"
)

// The direct path proxies an HTTP/2 request without a body (GET or HEAD)
// on a service's own host as httputil.ReverseProxy does, step for step,
// less what ReverseProxy spends on requests it must be ready for and these
// are not: a deep copy of the request (the outbound header shares the
// inbound values, which nobody changes), a CloseNotifier goroutine, the
// body wrappers, the upgrade handling, Director. HTTP/2 is what most
// browsers speak over HTTPS, and net/http's HTTP/2 server is the only way
// in for it: this is the part of its cost the edge can cut.

// directable reports whether r takes the direct path.
func directable(r *http.Request) bool {
	return r.ProtoMajor == 2 && r.ContentLength == 0 && (r.Method == http.MethodGet || r.Method == http.MethodHead)
}

// hopHeaders are the hop-by-hop header fields ReverseProxy drops.
var hopHeaders = [...]string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// forwardingHeaders are the client's forwarding fields ReverseProxy's
// Rewrite mode drops before setForwarded decides on them.
var forwardingHeaders = [...]string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}

// hopByHop reports whether a canonical field name is dropped on the way
// through: a hop-by-hop field, or one the Connection field names.
func hopByHop(name string, connection []string) bool {
	for _, h := range hopHeaders {
		if name == h {
			return true
		}
	}
	for _, line := range connection {
		for f := range strings.SplitSeq(line, ",") {
			if f = textproto.TrimString(f); f != "" && textproto.CanonicalMIMEHeaderKey(f) == name {
				return true
			}
		}
	}
	return false
}

// proxyDirect proxies r as e.proxy would; ctx carries the request's
// proxyState and its timeout.
func (e *Edge) proxyDirect(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	in := r.Header
	conn := in["Connection"]
	out := make(http.Header, len(in)+4)
	for k, v := range in {
		if hopByHop(k, conn) {
			continue
		}
		out[k] = v // shared: nothing on the way writes into a value slice
	}
	for _, k := range forwardingHeaders {
		delete(out, k)
	}
	if httpguts.HeaderValuesContainsToken(in["Te"], "trailers") {
		out["Te"] = []string{"trailers"}
	}
	u := *r.URL
	u.RawQuery = cleanQueryParams(u.RawQuery)
	outreq := &http.Request{
		Method: r.Method, URL: &u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: out, Host: r.Host, RemoteAddr: r.RemoteAddr, RequestURI: r.RequestURI, TLS: r.TLS,
	}
	ps, _ := ctx.Value(stateKey{}).(*proxyState)
	outreq.URL.Scheme, outreq.URL.Host = "http", ps.target.addr
	e.setForwarded(r, outreq)
	if _, ok := out["User-Agent"]; !ok {
		out["User-Agent"] = []string{""} // not Go's own
	}

	// 103 Early Hints and other informational answers are passed on, as
	// ReverseProxy passes them.
	var (
		mu   sync.Mutex
		done bool
	)
	trace := &httptrace.ClientTrace{
		Got1xxResponse: func(code int, header textproto.MIMEHeader) error {
			mu.Lock()
			defer mu.Unlock()
			if done {
				return nil
			}
			h := w.Header()
			copyHeader(h, http.Header(header))
			w.WriteHeader(code)
			clear(h)
			return nil
		},
	}
	outreq = outreq.WithContext(httptrace.WithClientTrace(ctx, trace))
	res, err := e.proxy.Transport.RoundTrip(outreq)
	mu.Lock()
	done = true
	mu.Unlock()
	if err != nil {
		e.proxyError(w, outreq, err)
		return
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		// Nothing asked to switch: as ReverseProxy without an upgrade.
		res.Body.Close()
		e.proxyError(w, outreq, errSwitched)
		return
	}
	rconn := res.Header["Connection"]
	h := w.Header()
	for k, vv := range res.Header {
		if !hopByHop(k, rconn) {
			h[k] = append(h[k], vv...)
		}
	}
	announced := h1.AnnounceTrailers(h, res)
	w.WriteHeader(res.StatusCode)
	if _, err := h1.CopyBody(w, res.Body, h1.Streamed(res)); err != nil {
		res.Body.Close()
		panic(http.ErrAbortHandler) // as ReverseProxy: the answer is cut
	}
	res.Body.Close() // now, to read the trailers
	h1.CopyTrailers(w, res, announced)
}

// errSwitched is a 101 answer to a request that asked for no upgrade.
var errSwitched = errors.New("backend switched protocols on a request that did not ask to")

// copyHeader adds every value of src to dst, as ReverseProxy does.
func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		for _, v := range vv {
			dst.Add(k, v)
		}
	}
}

// cleanQueryParams drops the query parameters net/url cannot parse, as
// ReverseProxy does (against parameter smuggling).
func cleanQueryParams(s string) string {
	reencode := func(s string) string {
		v, _ := url.ParseQuery(s)
		return v.Encode()
	}
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			return reencode(s)
		case '%':
			if i+2 >= len(s) || !ishex(s[i+1]) || !ishex(s[i+2]) {
				return reencode(s)
			}
			i += 3
		default:
			i++
		}
	}
	return s
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
