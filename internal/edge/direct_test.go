package edge

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of the direct path (direct.go): an HTTP/2 GET or HEAD is proxied
// as ReverseProxy proxies the same request over HTTP/1.1, side by side.

// h2Client is an HTTPS client that speaks HTTP/2 only.
func h2Client(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}, //nolint:gosec // test server certificate
		ForceAttemptHTTP2: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// answerOf is an answer with what a client sees of it.
type answerOf struct {
	status  int
	header  http.Header
	trailer http.Header
	body    string
	hints   []string
	err     error
	proto   int
}

func fetch(t testing.TB, c *http.Client, method, url, host string, hdr ...string) answerOf {
	t.Helper()
	var a answerOf
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			a.hints = append(a.hints, fmt.Sprint(code, " ", h.Get("Link")))
			return nil
		},
	})
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	require.NoError(t, err)
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		a.err = err
		return a
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	a.status, a.header, a.trailer, a.body, a.err, a.proto = res.StatusCode, res.Header, res.Trailer, string(b), err, res.ProtoMajor
	return a
}

func TestDirectPathAsReverseProxy(t *testing.T) {
	answers := map[string]string{
		"/hop":      "HTTP/1.1 200 OK\r\nConnection: X-Private\r\nX-Private: secret\r\nKeep-Alive: timeout=5\r\nX-Kept: yes\r\nContent-Length: 2\r\n\r\nok",
		"/trailers": "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n",
		"/late":     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Late: 1\r\n\r\n",
		"/hints":    "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"/304":      "HTTP/1.1 304 Not Modified\r\nETag: \"v\"\r\n\r\n",
		"/multi":    "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n",
	}
	raw := newRawBackend(t, "raw", func(r *http.Request) (string, bool) {
		if a, ok := answers[r.URL.Path]; ok {
			return a, false
		}
		return "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false
	})
	report := newTestBackend(t, "report", reportHandler(http.StatusOK))
	const rawHost, reportHost = "raw.shop.localhost", "report.shop.localhost"
	e := New(Options{})
	t.Cleanup(e.CloseIdleConnections)
	e.Update(Route{Key: "shop/raw", Hosts: []string{rawHost}, Backends: []Backend{raw}})
	e.Update(Route{Key: "shop/report", Hosts: []string{reportHost}, Backends: backendsOf(report)})
	srv := startTLSServer(t, &Server{Edge: e, HTTP: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}})
	old := oldTLSServer(t, e) // HTTP/1.1 only: ReverseProxy
	h2, h1 := h2Client(t), h1Client(t)

	t.Run("request", func(t *testing.T) {
		hdr := []string{
			"X-Forwarded-For", "6.6.6.6", "X-Forwarded-Proto", "http", "Forwarded", "for=x", "X-Real-Ip", "6.6.6.6",
			"X_Forwarded_For", "alias", "Te", "trailers", "Cookie", "a=1; b=2", "X-Multi", "1", "X-Multi", "2", "User-Agent", "test",
		}
		for _, path := range []string{"/p/a%2Fb?q=1&r=2", "/semi?a=1;b=2", "/bad?%zz=1&ok=2", "/"} {
			got := fetch(t, h2, http.MethodGet, srv.URL+path, reportHost, hdr...)
			require.NoError(t, got.err)
			require.Equal(t, 2, got.proto)
			want := fetch(t, h1, http.MethodGet, old.URL+path, reportHost, hdr...)
			require.NoError(t, want.err)
			g, w := decodeSeen(t, got.body), decodeSeen(t, want.body)
			assert.Equal(t, w.URI, g.URI, path)
			assert.Equal(t, w.Host, g.Host, path)
			gh, wh := g.Header, w.Header
			delete(gh, "Accept-Encoding") // the two clients' own
			delete(wh, "Accept-Encoding")
			assert.Equal(t, wh, gh, path)
		}
		got := fetch(t, h2, http.MethodHead, srv.URL+"/", reportHost)
		require.NoError(t, got.err)
		assert.Equal(t, http.StatusOK, got.status)
		assert.Empty(t, got.body)
	})

	t.Run("answers", func(t *testing.T) {
		for path := range answers {
			got := fetch(t, h2, http.MethodGet, srv.URL+path, rawHost)
			want := fetch(t, h1, http.MethodGet, old.URL+path, rawHost)
			require.NoError(t, got.err, path)
			require.NoError(t, want.err, path)
			assert.Equal(t, want.status, got.status, path)
			assert.Equal(t, want.body, got.body, path)
			assert.Equal(t, want.hints, got.hints, path)
			assert.Equal(t, want.trailer, got.trailer, path)
			gh, wh := got.header.Clone(), want.header.Clone()
			for _, k := range []string{"Date", "Content-Length"} { // HTTP/1.1 frames what HTTP/2 need not
				delete(gh, k)
				delete(wh, k)
			}
			if path == "/trailers" || path == "/late" {
				// Streamed: ReverseProxy flushes the head from a timer
				// that races the first write, which net/http may
				// sniff; the direct path always flushes first.
				assert.Empty(t, gh.Values("Content-Type"), path)
				delete(wh, "Content-Type")
			}
			assert.Equal(t, wh, gh, path)
		}
		assert.Empty(t, fetch(t, h2, http.MethodGet, srv.URL+"/hop", rawHost).header.Values("X-Private"))
	})

	t.Run("failures", func(t *testing.T) {
		dead := New(Options{})
		t.Cleanup(dead.CloseIdleConnections)
		dead.Update(Route{Key: "shop/dead", Hosts: []string{"dead.localhost"}, Backends: []Backend{{ID: "d", Addr: deadAddr(t)}}})
		slow := newTestBackend(t, "slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}))
		dead.Update(Route{Key: "shop/slow", Hosts: []string{"slow.localhost"}, Backends: backendsOf(slow), Timeout: 100 * time.Millisecond})
		dsrv := startTLSServer(t, &Server{Edge: dead, HTTP: &http.Server{Handler: dead, ReadHeaderTimeout: 10 * time.Second}})
		dold := oldTLSServer(t, dead)
		for _, host := range []string{"dead.localhost", "slow.localhost"} {
			got := fetch(t, h2, http.MethodGet, dsrv.URL+"/", host)
			want := fetch(t, h1, http.MethodGet, dold.URL+"/", host)
			require.NoError(t, got.err)
			assert.Equal(t, want.status, got.status, host)
			assert.Equal(t, want.body, got.body, host)
			assert.Equal(t, want.header.Get(ErrorHeader), got.header.Get(ErrorHeader), host)
		}
	})

	t.Run("cut body resets the stream", func(t *testing.T) {
		cut := newRawBackend(t, "cut", func(*http.Request) (string, bool) {
			return "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + strings.Repeat("x", 10), true
		})
		e.Update(Route{Key: "shop/cut", Hosts: []string{"cut.localhost"}, Backends: []Backend{cut}})
		got := fetch(t, h2, http.MethodGet, srv.URL+"/", "cut.localhost")
		assert.Error(t, got.err, "the client must not take a cut body for a whole one")
	})
}
