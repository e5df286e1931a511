package h1

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"net/http"
	"time"
)

// Handler routes the requests a Server's fast path parsed.
type Handler interface {
	// Route is called with each request head the fast path parsed. It
	// returns nil to leave the request, and the connection from then on,
	// to the Server's net/http server. Otherwise it sets t to where the
	// request goes and returns the Exchange that follows it: from then on
	// the fast path serves the request, and calls the Exchange's Done
	// exactly once. req is valid only during the call.
	Route(req *Request, t *Target) Exchange
}

// Request is a request head the fast path parsed: GET or HEAD, HTTP/1.1,
// origin form, with a Host and without a body.
type Request struct {
	// Host is the Host header as the client sent it (port and case kept).
	Host string
	// Path is the target's path, decoded as net/http's URL.Path.
	Path string
	// Head is true for HEAD, false for GET.
	Head bool
	// Start is when the server began to read the request.
	Start time.Time
	// TLS is true for a request that came over HTTPS.
	TLS bool

	h      reqHead
	raw    []byte // the head, in the connection's buffer
	remote string
	tls    *tls.ConnectionState
	hr     *http.Request        // HTTP's, once made
	mk     func() *http.Request // makes HTTP's, for an HTTP/2 stream
	hreq   http.Request         // what hr points to, the connection's
	hdr    http.Header          // hreq's header, the connection's
}

// Target is where the fast path sends a request, as Handler.Route sets it.
type Target struct {
	// Addr is the upstream's address, host:port.
	Addr string
	// Transport holds the pooled connections to the upstream and dials new
	// ones.
	Transport *Transport
	// Timeout bounds the request from Request.Start to the end of the
	// answer (0: no limit). An upstream that has not answered by then gets
	// the Exchange's Failed(TimedOut) answer.
	Timeout time.Duration
	// HostAs, when not "", replaces the Host header (an external origin).
	HostAs string
	// Prefix goes before the request target (an external origin's path,
	// without a trailing slash).
	Prefix string
	// Controls change the answer's header on its way out; nil for none.
	Controls *HeaderControls
}

// Exchange is the Handler's side of one request the fast path serves.
type Exchange interface {
	// Answered is told the status of the upstream's answer, before its
	// body is copied.
	Answered(status int)
	// Retry is asked for another address when the request failed with err
	// before any answer and may be sent again: no connection could be made,
	// or the connection broke before any byte of an answer. It returns
	// false to give up.
	Retry(err error) (addr string, ok bool)
	// Failed words the answer to a request that got none from upstream:
	// status, the reason passed to the Server's ErrorPage, and a message.
	Failed(f Failure, err error) (status int, reason, msg string)
	// Done is the exchange's last call, with how the request ended; nil
	// when a panic ended it.
	Done(res *Result)
}

// Result is how a request the fast path served ended.
type Result struct {
	// Status is the answer's status (502 when the client left before any).
	Status int
	// Bytes is the size of the body sent to the client.
	Bytes int64
	// Reason is the reason of an answer the server wrote itself (Failed),
	// else "".
	Reason string
}

// Failure is why a request got no answer from upstream.
type Failure int

// Failures, in the order the edge's metrics label them.
const (
	Unreachable Failure = iota // no connection could be made
	TimedOut                   // no answer within the Target's Timeout
	Broken                     // the connection failed after the request was sent
)

// ReasonBadRequest is the reason the Server gives its ErrorPage for a
// request whose framing it refuses (400, or 501 for a transfer coding it
// does not know).
const ReasonBadRequest = "bad-request"

// HeaderControls change the header of an answer on its way to the client,
// on both paths: the fast path writes the answer's head through them, and
// the net/http path applies them to the header map (Apply).
type HeaderControls struct {
	// Remove are canonical header names deleted from the answer.
	Remove []string
	// Add are headers set on the answer, replacing the upstream's.
	Add []HeaderValue
}

// HeaderValue is a header with its values; Key is canonical.
type HeaderValue struct {
	Key    string
	Values []string
}

// Apply applies the controls to a header map (nil controls: none).
func (c *HeaderControls) Apply(h http.Header) {
	if c == nil {
		return
	}
	for _, k := range c.Remove {
		delete(h, k)
	}
	for _, hv := range c.Add {
		h[hv.Key] = hv.Values
	}
}

// controlled reports whether the controls remove or replace the header of
// a response head line (nil controls: none).
func (c *HeaderControls) controlled(line []byte) bool {
	if c == nil {
		return false
	}
	name, _, _ := bytes.Cut(line, []byte(":"))
	for _, k := range c.Remove {
		if equalFoldASCII(name, k) {
			return true
		}
	}
	for _, hv := range c.Add {
		if equalFoldASCII(name, hv.Key) {
			return true
		}
	}
	return false
}

// writeAdded writes the headers the controls add.
func (c *HeaderControls) writeAdded(bw *bufio.Writer) {
	if c == nil {
		return
	}
	for _, hv := range c.Add {
		for _, v := range hv.Values {
			_, _ = bw.WriteString(hv.Key)
			_, _ = bw.WriteString(": ")
			_, _ = bw.WriteString(v)
			_, _ = bw.WriteString("\r\n")
		}
	}
}

// forwardingNames are the forwarding headers the edge sets, in lower case.
var forwardingNames = [...]string{"x-real-ip", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"}

// ForwardingAlias reports whether a header name spells one of the
// forwarding headers with underscores (X_Real_IP). CGI, WSGI, ASGI and
// Rack servers read it as the header itself (both become HTTP_X_REAL_IP)
// and may join the two, so a client the edge does not trust could slip
// its own address past the edge's; it is dropped, as nginx drops names
// with underscores.
func ForwardingAlias[T string | []byte](name T) bool {
	underscore := false
	for i := 0; i < len(name); i++ {
		if name[i] == '_' {
			underscore = true
			break
		}
	}
	if !underscore {
		return false
	}
next:
	for _, f := range forwardingNames {
		if len(name) != len(f) {
			continue
		}
		for i := 0; i < len(name); i++ {
			c := name[i]
			switch {
			case c == '_':
				c = '-'
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			}
			if c != f[i] {
				continue next
			}
		}
		return true
	}
	return false
}
