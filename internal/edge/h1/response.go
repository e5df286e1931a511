package h1

import (
	"bufio"
	"io"
	"net/http"
	"net/textproto"
	"strings"
)

// readResponse reads the head of an answer on the transport's short path.
// The plain answer to a GET (HTTP/1.1, a final status other than 204 and
// 304, one Content-Length, a head the fast parser takes) is read by the
// fast parser into the http.Response net/http's ReadResponse would make of
// it (FuzzReadResponse), with no textproto reader; anything else is left
// in the buffer for ReadResponse.
func readResponse(pc *upConn, req *http.Request) (*http.Response, error) {
	return readResponseInto(pc, req, nil)
}

// readResponseInto is readResponse, with the header of an answer the fast
// parser reads put in into when into is not nil (an empty map): the
// answer's Header is into then.
func readResponseInto(pc *upConn, req *http.Request, into http.Header) (*http.Response, error) {
	if req.Method != http.MethodGet {
		return http.ReadResponse(pc.br, req)
	}
	var rh respHead
	n, v, err := readResponseHead(pc, &rh)
	if err != nil {
		return nil, err
	}
	buf, _ := pc.br.Peek(n)
	if v != headOK || buf[7] != '1' || rh.status < 200 || rh.status == http.StatusNoContent || rh.status == http.StatusNotModified ||
		rh.length < 0 || rh.chunked {
		return http.ReadResponse(pc.br, req)
	}
	res, ok := responseOf(buf, &rh, into)
	if !ok {
		return http.ReadResponse(pc.br, req)
	}
	_, _ = pc.br.Discard(n)
	res.Request = req
	if rh.length == 0 {
		res.Body = http.NoBody
	} else {
		res.Body = &lengthBody{r: pc.br, left: rh.length}
	}
	return res, nil
}

// responseOf makes the http.Response of a head the fast parser took, its
// header in h when h is not nil (an empty map, left empty on false); false
// for one whose header ReadResponse would rewrite (several Content-Length
// lines, which it folds into one).
func responseOf(buf []byte, rh *respHead, h http.Header) (*http.Response, bool) {
	if h == nil {
		h = make(http.Header, rh.nlines)
	}
	// The status and the values are substrings of one string made of the
	// head from the status to the last line: one allocation, not one each.
	base := int(rh.statusText.from)
	end := int(rh.statusText.to)
	if rh.nlines > 0 {
		end = int(rh.lines[rh.nlines-1].to)
	}
	head := string(buf[base:end])
	vals := make([]string, rh.nlines) // one backing array, as textproto's
	lengths := 0
	for i, l := range rh.lines[:rh.nlines] {
		line := head[int(l.from)-base : int(l.to)-base]
		colon := strings.IndexByte(line, ':')
		name := line[:colon]
		key, ok := commonKeys[name]
		if !ok {
			key = textproto.CanonicalMIMEHeaderKey(name)
		}
		if key == "Content-Length" {
			lengths++
		}
		vals[i] = trimOWS(line[colon+1 : len(line)-2])
		if vs := h[key]; vs != nil {
			h[key] = append(vs, vals[i])
		} else {
			h[key] = vals[i : i+1 : i+1]
		}
	}
	if lengths != 1 {
		clear(h)
		return nil, false
	}
	// As ReadResponse (RFC 9111 5.4).
	if p := h["Pragma"]; len(p) > 0 && p[0] == "no-cache" {
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}
	return &http.Response{
		Status: head[:rh.statusText.to-rh.statusText.from], StatusCode: rh.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, ContentLength: rh.length, Close: rh.close,
	}, true
}

// commonKeys are canonical header names by their usual spellings, so that
// the common ones cost no allocation.
var commonKeys = map[string]string{}

func init() {
	for _, k := range []string{
		"Accept-Ranges", "Age", "Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language",
		"Content-Length", "Content-Location", "Content-Range", "Content-Security-Policy", "Content-Type", "Date",
		"Etag", "Expires", "Last-Modified", "Link", "Location", "Pragma", "Referrer-Policy", "Retry-After",
		"Server", "Set-Cookie", "Strict-Transport-Security", "Vary", "Via", "Www-Authenticate",
		"X-Content-Type-Options", "X-Frame-Options", "X-Request-Id", "X-Xss-Protection", "Alt-Svc",
		"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Expose-Headers",
		"Cross-Origin-Opener-Policy", "Cross-Origin-Resource-Policy", "Permissions-Policy", "Report-To", "Nel",
		"X-Powered-By", "X-Cache", "Cf-Cache-Status", "Server-Timing",
	} {
		commonKeys[k] = k
		commonKeys[lower(k)] = k
	}
	commonKeys["ETag"] = "Etag"
	commonKeys["WWW-Authenticate"] = "Www-Authenticate"
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// lengthBody is a body of a known length on a kept-alive connection. As
// net/http's, it returns io.EOF with its last bytes, and
// io.ErrUnexpectedEOF when the connection ends before them.
type lengthBody struct {
	r    *bufio.Reader
	left int64
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	switch {
	case err == io.EOF && b.left > 0:
		err = io.ErrUnexpectedEOF
	case err == nil && b.left == 0:
		err = io.EOF
	}
	return n, err
}

func (b *lengthBody) Close() error { return nil }
