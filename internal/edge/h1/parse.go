package h1

import (
	"bytes"
	"net/http"
	"strconv"
)

// The fast path (fast.go) reads request and response heads itself. Its
// parsers accept a strict subset of HTTP/1.1: anything they do not accept
// in full is left to net/http, which either serves it or rejects it. So the
// fast path can never accept a message net/http would refuse, which is what
// keeps a second parser from opening a request-smuggling gap.

// parse outcomes.
type verdict int

const (
	headIncomplete  verdict = iota // more bytes needed
	headOK                         // parsed; the fast path may take it
	headUnsupported                // valid or not, net/http must decide
)

// maxFastHeaders bounds the header lines of a head the fast path takes.
const maxFastHeaders = 64

// span is a byte range [from, to) of a head.
type span struct{ from, to int32 }

func (s span) of(b []byte) []byte { return b[s.from:s.to] }

// reqHead is a request head as parsed from the connection's buffer. The
// spans point into that buffer, so it is only valid until the head is
// consumed.
type reqHead struct {
	head   bool // HEAD, else GET
	target span
	host   span
	accept span // for the edge's own error pages
	close  bool // Connection: close
	// lines are the header lines forwarded as they came, CRLF included.
	lines  [maxFastHeaders]span
	nlines int
	// The client's forwarding headers, kept only when the edge trusts
	// them (Options.TrustForwarded).
	xff             [4]span
	nxff            int
	xfProto, xfHost bool // forwarded as they came
	realIP          bool // X-Real-IP forwarded as it came
	hasHost         bool
	hostLine        int // index in lines of the Host line
}

// Header names the parsers look for.
const (
	hOther = iota
	hHost
	hAccept
	hConnection
	hForwardedFor
	hForwardedProto
	hForwardedHost
	hForwarded
	hRealIP
	hHopByHop   // dropped: Keep-Alive, Proxy-Connection, Proxy-Authenticate, Proxy-Authorization
	hUnfastable // the fast path leaves the request to net/http
	hContentLength
	hTransferEncoding
	hTrailer
	hDate
	hContentType
)

// headerKind classifies a header name, in any case.
func headerKind[T string | []byte](name T) int {
	switch len(name) {
	case 2:
		if equalFoldASCII(name, "te") {
			return hUnfastable
		}
	case 4:
		if equalFoldASCII(name, "host") {
			return hHost
		}
		if equalFoldASCII(name, "date") {
			return hDate
		}
	case 6:
		if equalFoldASCII(name, "accept") {
			return hAccept
		}
		if equalFoldASCII(name, "expect") {
			return hUnfastable
		}
	case 7:
		if equalFoldASCII(name, "upgrade") {
			return hUnfastable
		}
		if equalFoldASCII(name, "trailer") {
			return hTrailer
		}
	case 9:
		if equalFoldASCII(name, "forwarded") {
			return hForwarded
		}
		if equalFoldASCII(name, "x-real-ip") {
			return hRealIP
		}
	case 10:
		if equalFoldASCII(name, "connection") {
			return hConnection
		}
		if equalFoldASCII(name, "keep-alive") {
			return hHopByHop
		}
	case 12:
		if equalFoldASCII(name, "content-type") {
			return hContentType
		}
	case 14:
		if equalFoldASCII(name, "content-length") {
			return hContentLength
		}
	case 15:
		if equalFoldASCII(name, "x-forwarded-for") {
			return hForwardedFor
		}
	case 16:
		if equalFoldASCII(name, "x-forwarded-host") {
			return hForwardedHost
		}
		if equalFoldASCII(name, "proxy-connection") {
			return hHopByHop
		}
	case 17:
		if equalFoldASCII(name, "transfer-encoding") {
			return hTransferEncoding
		}
		if equalFoldASCII(name, "x-forwarded-proto") {
			return hForwardedProto
		}
	case 18:
		if equalFoldASCII(name, "proxy-authenticate") {
			return hHopByHop
		}
	case 19:
		if equalFoldASCII(name, "proxy-authorization") {
			return hHopByHop
		}
	}
	return hOther
}

// Byte classes (RFC 9110 5.1, 5.5; RFC 3986 for the request target).
var (
	tokenChar  [256]bool // tchar
	targetChar [256]bool // what the fast path takes in an origin-form target
	hostChar   [256]bool
)

func init() {
	for c := '0'; c <= '9'; c++ {
		tokenChar[c], targetChar[c], hostChar[c] = true, true, true
	}
	for c := 'a'; c <= 'z'; c++ {
		tokenChar[c], targetChar[c], hostChar[c] = true, true, true
		tokenChar[c-32], targetChar[c-32], hostChar[c-32] = true, true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		tokenChar[c] = true
	}
	for _, c := range "-._~!$&'()*+,;=:@/?%" {
		targetChar[c] = true
	}
	for _, c := range "-._:[]" {
		hostChar[c] = true
	}
}

// validFieldValue reports whether v has no control characters other than
// horizontal tab, as net/http requires.
func validFieldValue(v []byte) bool {
	for _, c := range v {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// trimOWS trims optional whitespace around a field value.
func trimOWS[T string | []byte](b T) T {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// headerLine is one field line of a head.
type headerLine struct {
	line  span // the whole line, CRLF included
	name  []byte
	value []byte // without surrounding whitespace
	// valueSpan is where value lies in the head.
	valueSpan span
}

// nextLine splits the field line at buf[at:]. It reports headIncomplete
// when the line has not all arrived, headUnsupported when it is not a
// plain "name: value" CRLF line, and end when it is the empty line that
// ends the head.
func nextLine(buf []byte, at int, hl *headerLine) (v verdict, end bool) {
	i := bytes.IndexByte(buf[at:], '\n')
	if i < 0 {
		return headIncomplete, false
	}
	eol := at + i // index of '\n'
	if eol == at || buf[eol-1] != '\r' {
		return headUnsupported, false // a bare LF
	}
	line := buf[at : eol-1]
	hl.line = span{int32(at), int32(eol + 1)}
	if len(line) == 0 {
		return headOK, true
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return headUnsupported, false // also a folded line, which starts with space
	}
	name := line[:colon]
	for _, c := range name {
		if !tokenChar[c] {
			return headUnsupported, false
		}
	}
	value := line[colon+1:]
	if !validFieldValue(value) {
		return headUnsupported, false
	}
	lead := 0
	for lead < len(value) && (value[lead] == ' ' || value[lead] == '\t') {
		lead++
	}
	hl.name = name
	hl.value = trimOWS(value)
	start := at + colon + 1 + lead
	hl.valueSpan = span{int32(start), int32(start + len(hl.value))}
	return headOK, false
}

// parseRequest parses the request head at the start of buf. It takes GET
// and HEAD requests in origin form, HTTP/1.1, with a Host and without a
// body or anything that changes how the connection is used (Upgrade,
// Expect, TE, connection options other than close and keep-alive). It
// returns the length of the head.
func parseRequest(buf []byte, h *reqHead, trust bool) (int, verdict) {
	*h = reqHead{}
	p := 0
	switch {
	case bytes.HasPrefix(buf, []byte("GET ")):
		p = 4
	case bytes.HasPrefix(buf, []byte("HEAD ")):
		h.head, p = true, 5
	case len(buf) < 5 && (bytes.HasPrefix([]byte("GET "), buf) || bytes.HasPrefix([]byte("HEAD "), buf)):
		return 0, headIncomplete
	default:
		return 0, headUnsupported
	}
	eol := bytes.IndexByte(buf, '\n')
	if eol < 0 {
		if len(buf) > maxTargetLen {
			return 0, headUnsupported
		}
		return 0, headIncomplete
	}
	line := buf[:eol]
	const version = " HTTP/1.1\r"
	if len(line) < p+len(version) || !bytes.HasSuffix(line, []byte(version)) {
		return 0, headUnsupported // also "GET HTTP/1.1", which has no target
	}
	target := line[p : len(line)-len(version)]
	if len(target) == 0 || target[0] != '/' || len(target) > maxTargetLen {
		return 0, headUnsupported
	}
	for i := 0; i < len(target); i++ {
		c := target[i]
		if !targetChar[c] {
			return 0, headUnsupported
		}
		if c == '%' && (i+2 >= len(target) || !isHex(target[i+1]) || !isHex(target[i+2])) {
			return 0, headUnsupported
		}
		if c == '?' && bytes.IndexByte(target[i:], ';') >= 0 {
			// ReverseProxy drops query parameters net/url cannot parse,
			// against parameter smuggling: let it.
			return 0, headUnsupported
		}
	}
	h.target = span{int32(p), int32(p + len(target))}

	at := eol + 1
	var hl headerLine
	for {
		v, end := nextLine(buf, at, &hl)
		if v != headOK {
			return 0, v
		}
		at = int(hl.line.to)
		if end {
			break
		}
		forward := true
		switch headerKind(hl.name) {
		case hHost:
			if h.hasHost || len(hl.value) == 0 {
				return 0, headUnsupported
			}
			for _, c := range hl.value {
				if !hostChar[c] {
					return 0, headUnsupported
				}
			}
			h.hasHost, h.host, h.hostLine = true, hl.valueSpan, h.nlines
		case hAccept:
			if h.accept.to == 0 {
				h.accept = hl.valueSpan
			}
		case hConnection:
			c, _, other := connectionTokens(hl.value)
			if other {
				return 0, headUnsupported // it names headers to drop
			}
			h.close, forward = h.close || c, false
		case hForwardedFor:
			if trust {
				if h.nxff == len(h.xff) {
					return 0, headUnsupported
				}
				h.xff[h.nxff] = hl.valueSpan
				h.nxff++
			}
			forward = false
		case hForwardedProto:
			h.xfProto, forward = trust, trust
		case hForwardedHost:
			h.xfHost, forward = trust, trust
		case hForwarded:
			forward = trust
		case hRealIP:
			h.realIP, forward = trust, trust
		case hHopByHop:
			forward = false
		case hOther:
			forward = trust || !ForwardingAlias(hl.name)
		case hUnfastable, hContentLength, hTransferEncoding, hTrailer:
			return 0, headUnsupported
		}
		if forward {
			if h.nlines == maxFastHeaders {
				return 0, headUnsupported
			}
			h.lines[h.nlines] = hl.line
			h.nlines++
		}
	}
	if !h.hasHost {
		return 0, headUnsupported
	}
	return at, headOK
}

// connectionTokens reads a Connection value: whether it says close or
// keep-alive, and whether it names anything else (headers to drop, which
// the fast path leaves to net/http).
func connectionTokens(v []byte) (hasClose, keepAlive, other bool) {
	for tok := range bytes.SplitSeq(v, []byte(",")) {
		switch tok = trimOWS(tok); {
		case equalFoldASCII(tok, "close"):
			hasClose = true
		case equalFoldASCII(tok, "keep-alive"):
			keepAlive = true
		case len(tok) > 0:
			other = true
		}
	}
	return hasClose, keepAlive, other
}

// maxTargetLen bounds the request target the fast path takes.
const maxTargetLen = 2048

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// respHead is a response head as parsed from an origin connection's buffer.
type respHead struct {
	status int
	// statusText is the status line after "HTTP/1.x ", without CRLF.
	statusText span
	lines      [maxFastHeaders]span
	nlines     int
	// length is the Content-Length, -1 without one.
	length  int64
	chunked bool
	// close: the origin closes the connection after this answer.
	close   bool
	hasDate bool
}

// parseResponse parses the response head at the start of buf. It returns
// headUnsupported for what the fast path does not copy itself: an HTTP
// version other than 1.0 and 1.1, a transfer coding other than chunked,
// conflicting lengths, connection options naming other headers, or a line
// net/http would not accept; net/http reads those.
func parseResponse(buf []byte, h *respHead) (int, verdict) {
	*h = respHead{length: -1}
	eol := bytes.IndexByte(buf, '\n')
	if eol < 0 {
		return 0, headIncomplete
	}
	line := buf[:eol]
	// "HTTP/1.1 200 OK\r" or "HTTP/1.1 200\r"
	if len(line) < 13 || line[len(line)-1] != '\r' || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, headUnsupported
	}
	var http10, hasClose, hasKeepAlive bool
	switch line[7] {
	case '1':
	case '0':
		http10 = true
	default:
		return 0, headUnsupported
	}
	code := line[9:12]
	if !isDigit(code[0]) || !isDigit(code[1]) || !isDigit(code[2]) || code[0] == '0' || (len(line) > 13 && line[12] != ' ') {
		return 0, headUnsupported
	}
	if !validFieldValue(line[9 : len(line)-1]) {
		return 0, headUnsupported
	}
	h.status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	h.statusText = span{9, int32(eol - 1)}

	at := eol + 1
	var hl headerLine
	for {
		v, end := nextLine(buf, at, &hl)
		if v != headOK {
			return 0, v
		}
		at = int(hl.line.to)
		if end {
			break
		}
		forward := true
		switch headerKind(hl.name) {
		case hConnection:
			c, k, other := connectionTokens(hl.value)
			if other {
				return 0, headUnsupported
			}
			hasClose, hasKeepAlive, forward = hasClose || c, hasKeepAlive || k, false
		case hContentLength:
			n, ok := parseLength(hl.value)
			if !ok || (h.length >= 0 && n != h.length) {
				return 0, headUnsupported
			}
			h.length = n
			// A 204 has no body and must not say it has (RFC 9110 8.6);
			// net/http drops the length of a 204 and a 304.
			forward = h.status != http.StatusNoContent && h.status != http.StatusNotModified
		case hTransferEncoding:
			// HTTP/1.0 knows no transfer coding: net/http reads such a
			// body up to the close, and so must the edge.
			if http10 || h.chunked || !equalFoldASCII(hl.value, "chunked") {
				return 0, headUnsupported
			}
			h.chunked = true
			forward = false
		case hHopByHop:
			forward = false
		case hUnfastable:
			// Upgrade and TE are hop-by-hop; Expect means nothing here.
			forward = false
		case hDate:
			h.hasDate = true
		case hContentType:
			forward = h.status != http.StatusNotModified // as net/http
		}
		if forward {
			if h.nlines == maxFastHeaders {
				return 0, headUnsupported
			}
			h.lines[h.nlines] = hl.line
			h.nlines++
		}
	}
	// As net/http: HTTP/1.0 closes unless it says keep-alive; close wins.
	h.close = hasClose || http10 && !hasKeepAlive
	if h.chunked && h.length >= 0 {
		return 0, headUnsupported
	}
	return at, headOK
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseLength parses a Content-Length value.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseChunkSize parses a chunk-size line without its CRLF, as net/http
// does: hex digits, then chunk extensions, then optional whitespace.
func parseChunkSize(line []byte) (int64, bool) {
	for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
		line = line[:len(line)-1]
	}
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		if !validFieldValue(line[i:]) {
			return 0, false
		}
		line = line[:i]
	}
	if len(line) == 0 || len(line) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range line {
		var d byte
		switch {
		case isDigit(c):
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return n, true
}

// appendChunkHeader appends the chunk-size line for n bytes.
func appendChunkHeader(b []byte, n int) []byte {
	b = strconv.AppendInt(b, int64(n), 16)
	return append(b, '\r', '\n')
}
