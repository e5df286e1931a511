// Package h1test holds what the tests of the fast path (package h1) and of
// the edge that serves through it share: the request shapes the framing
// checks refuse, and raw request heads.
package h1test

import "strings"

// FramingShape is a request the framing checks refuse, with the status of
// the refusal.
type FramingShape struct {
	Name   string
	Raw    string
	Status int
}

// FramingShapes are requests whose framing the edge refuses, each for
// the path /bad. H stands for the host.
var FramingShapes = []FramingShape{
	{"Content-Length and Transfer-Encoding", "POST /bad HTTP/1.1\r\nHost: H\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
	{"Transfer-Encoding and Content-Length", "POST /bad HTTP/1.1\r\nHost: H\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", 400},
	{"two equal Content-Length", "POST /bad HTTP/1.1\r\nHost: H\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400},
	{"two different Content-Length", "POST /bad HTTP/1.1\r\nHost: H\r\nContent-Length: 5\r\nContent-Length: 2\r\n\r\nhello", 400},
	{"Content-Length list", "POST /bad HTTP/1.1\r\nHost: H\r\nContent-Length: 5, 5\r\n\r\nhello", 400},
	{"Content-Length sign", "POST /bad HTTP/1.1\r\nHost: H\r\nContent-Length: +5\r\n\r\nhello", 400},
	{"space before colon in Content-Length", "POST /bad HTTP/1.1\r\nHost: H\r\nContent-Length : 5\r\n\r\nhello", 400},
	{"obs-fold", "GET /bad HTTP/1.1\r\nHost: H\r\nX-A: 1\r\n 2\r\n\r\n", 400},
	{"obs-fold with a tab", "GET /bad HTTP/1.1\r\nHost: H\r\nX-A: 1\r\n\t2\r\n\r\n", 400},
	{"obs-fold in Transfer-Encoding", "POST /bad HTTP/1.1\r\nHost: H\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400},
	{"two Transfer-Encoding", "POST /bad HTTP/1.1\r\nHost: H\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
	{"Transfer-Encoding on HTTP/1.0", "POST /bad HTTP/1.0\r\nHost: H\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
	{"Transfer-Encoding gzip, chunked", "POST /bad HTTP/1.1\r\nHost: H\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
	{"Transfer-Encoding chunked, chunked", "POST /bad HTTP/1.1\r\nHost: H\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 501},
	{"Transfer-Encoding identity", "POST /bad HTTP/1.1\r\nHost: H\r\nTransfer-Encoding: identity\r\n\r\n", 501},
	{"header without colon", "GET /bad HTTP/1.1\r\nHost: H\r\nX-A\r\n\r\n", 400},
	{"control character in a value", "GET /bad HTTP/1.1\r\nHost: H\r\nX-A: a\x01b\r\n\r\n", 400},
	{"bare CR in a header", "GET /bad HTTP/1.1\r\nHost: H\r\nX-A: a\rX-B: b\r\n\r\n", 400},
	{"leading empty line", "\r\nGET /bad HTTP/1.1\r\nHost: H\r\n\r\n", 400},
}

// Shape returns a shape's bytes for host, followed by a request for
// /after that must never be served either.
func Shape(raw, host string) string {
	return strings.ReplaceAll(raw, "Host: H\r\n", "Host: "+host+"\r\n") + RawGet(host, "/after")
}

// RawGet is a GET request head for host and path with extra header lines.
func RawGet(host, path string, lines ...string) string {
	var b strings.Builder
	b.WriteString("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n")
	for _, l := range lines {
		b.WriteString(l + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}
