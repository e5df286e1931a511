package h1

import (
	"bufio"
	"bytes"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http/httpguts"

	"github.com/berth-dev/berth/internal/edge/h1/h1test"
)

// Tests of the parsers (parse.go): a head the fast path takes is one
// net/http reads the same way.

// fuzzRequestSeeds are request heads for FuzzParseRequest, valid and not.
var fuzzRequestSeeds = []string{
	"GET HTTP/1.1\r\nHost: x\r\n\r\n", // no target: once a panic
	"GET / HTTP/1.1\r\nHost: web.shop.localhost\r\n\r\n",
	"HEAD /x?y=1 HTTP/1.1\r\nHost: a:8080\r\nAccept: text/html\r\n\r\n",
	"GET /a%20b/%2F?q=%zz HTTP/1.1\r\nHost: [::1]:80\r\nConnection: keep-alive, close\r\n\r\n",
	"GET / HTTP/1.1\r\nhost: x\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\nForwarded: for=x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nConnection: ,\r\nKeep-Alive: 5\r\nProxy-Connection: x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX-A:\t v \t\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX-A: \x80\xff\r\n\r\n",
	"GET / HTTP/1.1\nHost: x\n\n",
	"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\n y\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n",
	"GET / HTTP/1.0\r\nHost: x\r\n\r\n",
	"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
	"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nConnection: X-A\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nCONNECTION: CLOSE\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nConnection: closed\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n",
	"GET /%00 HTTP/1.1\r\nHost: x.\r\n\r\n",
	"GET //x/../y HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nPragma: no-cache\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x_y-z.\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\n\r",
	"GET / HT",
	"HEAD",
}

// FuzzParseRequest checks the fast parser's safety property: a head it
// takes is one net/http reads the same way, so the two paths cannot
// disagree on where a request ends or what it asks for.
func FuzzParseRequest(f *testing.F) {
	for _, s := range fuzzRequestSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	// The shapes the edge refuses (framing.go), on the fast path.
	for _, s := range h1test.FramingShapes {
		f.Add([]byte(h1test.Shape(strings.Replace(s.Raw, "POST ", "GET ", 1), testHost)), false)
	}
	f.Fuzz(func(t *testing.T, buf []byte, trust bool) {
		var h reqHead
		n, v := parseRequest(buf, &h, trust)
		if v != headOK {
			if n != 0 {
				t.Fatalf("verdict %d with length %d", v, n)
			}
			return
		}
		if n <= 0 || n > len(buf) {
			t.Fatalf("length %d of %d bytes", n, len(buf))
		}
		head := buf[:n]
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			t.Fatalf("fast parser took %q; net/http: %v", head, err)
		}
		method := http.MethodGet
		if h.head {
			method = http.MethodHead
		}
		target := string(h.target.of(buf))
		switch {
		case req.Method != method:
			t.Fatalf("%q: method %q, net/http %q", head, method, req.Method)
		case req.RequestURI != target:
			t.Fatalf("%q: target %q, net/http %q", head, target, req.RequestURI)
		case req.Host != string(h.host.of(buf)):
			t.Fatalf("%q: host %q, net/http %q", head, h.host.of(buf), req.Host)
		case req.ContentLength != 0 || len(req.TransferEncoding) != 0:
			t.Fatalf("%q: net/http sees a body: length %d, encoding %q", head, req.ContentLength, req.TransferEncoding)
		case req.Close != h.close:
			t.Fatalf("%q: close %v, net/http %v", head, h.close, req.Close)
		case !req.ProtoAtLeast(1, 1):
			t.Fatalf("%q: net/http reads %s", head, req.Proto)
		}
		// What net/http's server checks beyond ReadRequest.
		if !httpguts.ValidHostHeader(req.Host) {
			t.Fatalf("%q: net/http's server refuses Host %q", head, req.Host)
		}
		// The path routed on is net/http's URL.Path.
		if path := targetPath(h.target.of(buf)); path != req.URL.Path {
			t.Fatalf("%q: path %q, net/http %q", head, path, req.URL.Path)
		}
		// net/http ends the head where the fast parser does.
		rd := bytes.NewReader(buf)
		br := bufio.NewReader(rd)
		if _, err := http.ReadRequest(br); err != nil {
			t.Fatalf("%q: net/http fails on the whole buffer: %v", buf, err)
		}
		if used := len(buf) - rd.Len() - br.Buffered(); used != n {
			t.Fatalf("%q: head of %d bytes, net/http took %d", buf, n, used)
		}
		// The request a Responder reads (Request.HTTP) is the one
		// net/http's server would hand a handler.
		fr0 := &Request{Host: string(h.host.of(buf)), Path: targetPath(h.target.of(buf)), Head: h.head, h: h, raw: head}
		hr := fr0.HTTP()
		switch {
		case hr.Method != req.Method || hr.Host != req.Host || hr.RequestURI != req.RequestURI || hr.Close != req.Close:
			t.Fatalf("%q: HTTP() %s %s %s close=%v, net/http %s %s %s close=%v", head,
				hr.Method, hr.Host, hr.RequestURI, hr.Close, req.Method, req.Host, req.RequestURI, req.Close)
		case *hr.URL != *req.URL:
			t.Fatalf("%q: HTTP() URL %#v, net/http %#v", head, hr.URL, req.URL)
		case !reflect.DeepEqual(hr.Header, req.Header):
			t.Fatalf("%q: HTTP() header %q, net/http %q", head, hr.Header, req.Header)
		}
		// The fast path takes no head the framing checks of the
		// net/http path refuse (framing.go), and none with a body.
		fr, refused := checkHead(head)
		if !refused.ok() || fr.length != 0 || fr.chunked {
			t.Fatalf("%q: fast path took it; framing checks: %+v, %q", head, fr, refused.msg)
		}
	})
}

// fuzzResponseSeeds are response heads for FuzzParseResponse.
var fuzzResponseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\nTrailer: X\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 05\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.0 200 OK\r\n\r\nbody",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n",
	"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n",
	"HTTP/1.1 200 OK\r\nConnection: close, X-A\r\n\r\n",
	"HTTP/1.1 200 OK\r\nKeep-Alive: 5\r\nDate: x\r\n\r\n",
	"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
	"HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-A: \x01\r\n\r\n",
	"HTTP/1.1 099 X\r\n\r\n",
	"HTTP/1.1 999 X\r\n\r\n",
	"HTTP/1.1 2000 OK\r\n\r\n",
	"HTTP/1.1 200OK\r\n\r\n",
	"HTTP/1.2 200 OK\r\n\r\n",
	"HTTP/2.0 200 OK\r\n\r\n",
	"HTTP/1.1 200 \x01\r\n\r\n",
	"HTTP/1.1 200 OK\r\n",
}

// FuzzParseResponse checks that an answer head the fast parser takes is
// one net/http reads with the same status and length.
func FuzzParseResponse(f *testing.F) {
	for _, s := range fuzzResponseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, buf []byte) {
		var rh respHead
		n, v := parseResponse(buf, &rh)
		if v != headOK {
			return
		}
		if n <= 0 || n > len(buf) {
			t.Fatalf("length %d of %d bytes", n, len(buf))
		}
		head := buf[:n]
		res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(head)), &http.Request{Method: http.MethodGet})
		if err != nil {
			t.Fatalf("fast parser took %q; net/http: %v", head, err)
		}
		if res.StatusCode != rh.status {
			t.Fatalf("%q: status %d, net/http %d", head, rh.status, res.StatusCode)
		}
		bodyless := rh.status < 200 || rh.status == http.StatusNoContent || rh.status == http.StatusNotModified
		if rh.length >= 0 && !rh.chunked && !bodyless && res.ContentLength != rh.length {
			t.Fatalf("%q: length %d, net/http %d", head, rh.length, res.ContentLength)
		}
		if rh.close && !res.Close {
			t.Fatalf("%q: fast parser closes, net/http keeps the connection", head)
		}
	})
}

// Whether an instance closes its connection after an answer is read as
// net/http reads it, whatever the order of the tokens.
func TestParseResponseConnectionAsNetHTTP(t *testing.T) {
	for _, head := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: close, keep-alive\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
	} {
		var rh respHead
		n, v := parseResponse([]byte(head), &rh)
		require.Equal(t, headOK, v, "%q", head)
		res, err := http.ReadResponse(bufio.NewReader(strings.NewReader(head[:n])), nil)
		require.NoError(t, err)
		assert.Equal(t, res.Close, rh.close, "%q", head)
	}
}

// A request line without a target is left to net/http, which refuses it.
func TestParseRequestLineWithoutTarget(t *testing.T) {
	for _, line := range []string{"GET HTTP/1.1\r\n", "HEAD HTTP/1.1\r\n"} {
		var h reqHead
		_, v := parseRequest([]byte(line+"Host: x\r\n\r\n"), &h, false)
		assert.Equal(t, headUnsupported, v, "%q", line)
	}
}

// HTTP/1.0 knows no transfer coding: net/http reads such an answer's body
// up to the close, so the fast parser leaves it to net/http.
func TestParseResponseHTTP10ChunkedIsLeftToNetHTTP(t *testing.T) {
	for _, head := range []string{
		"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
	} {
		var rh respHead
		_, v := parseResponse([]byte(head), &rh)
		assert.Equal(t, headUnsupported, v, "%q: net/http reads it", head)
	}
}
