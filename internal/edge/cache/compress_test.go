package cache

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// textBody is compressible text of n bytes.
func textBody(n int) string {
	const line = `{"id": 12345, "name": "berth", "tags": ["edge", "cache", "compress"]}` + "\n"
	return strings.Repeat(line, n/len(line)+1)[:n]
}

// decode undoes a Content-Encoding with a real decoder.
func decode(t testing.TB, coding string, body []byte) string {
	t.Helper()
	var r io.Reader
	switch coding {
	case "":
		return string(body)
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		require.NoError(t, err)
		r = zr
	case "br":
		r = brotli.NewReader(bytes.NewReader(body))
	default:
		t.Fatalf("unexpected coding %q", coding)
	}
	out, err := io.ReadAll(r)
	require.NoError(t, err)
	return string(out)
}

// contentServer serves body with the given header fields, behind Compress.
func contentServer(t testing.TB, opts CompressOptions, header map[string]string, body string) *httptest.Server {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		if r.Header.Get("X-Set-Length") != "" {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		_, _ = io.WriteString(w, body)
	})
	srv := httptest.NewServer(Compress(h, opts))
	t.Cleanup(srv.Close)
	return srv
}

func TestCompress(t *testing.T) {
	big := textBody(8 << 10)
	for _, tc := range []struct {
		name       string
		opts       CompressOptions
		header     map[string]string // response
		body       string
		request    map[string]string
		method     string
		wantCoding string
		wantVary   bool
	}{
		{name: "gzip", header: map[string]string{"Content-Type": "application/json"}, body: big, request: map[string]string{"Accept-Encoding": "gzip"}, wantCoding: "gzip", wantVary: true},
		{name: "brotli preferred on a tie", header: map[string]string{"Content-Type": "text/html; charset=utf-8"}, body: big, request: map[string]string{"Accept-Encoding": "gzip, deflate, br"}, wantCoding: "br", wantVary: true},
		{name: "q-values: gzip over br", header: map[string]string{"Content-Type": "text/css"}, body: big, request: map[string]string{"Accept-Encoding": "gzip;q=1.0, br;q=0.5"}, wantCoding: "gzip", wantVary: true},
		{name: "q-values: br refused", header: map[string]string{"Content-Type": "text/css"}, body: big, request: map[string]string{"Accept-Encoding": "br;q=0, gzip"}, wantCoding: "gzip", wantVary: true},
		{name: "q-values: wildcard", header: map[string]string{"Content-Type": "text/css"}, body: big, request: map[string]string{"Accept-Encoding": "*;q=0.2, gzip;q=0"}, wantCoding: "br", wantVary: true},
		{name: "q-values: all refused", header: map[string]string{"Content-Type": "text/css"}, body: big, request: map[string]string{"Accept-Encoding": "gzip;q=0, br;q=0"}, wantCoding: "", wantVary: true},
		{name: "identity only", header: map[string]string{"Content-Type": "text/css"}, body: big, request: map[string]string{"Accept-Encoding": "identity"}, wantCoding: "", wantVary: true},
		{name: "no Accept-Encoding", header: map[string]string{"Content-Type": "text/css"}, body: big, wantCoding: "", wantVary: true},
		{name: "gzip only when brotli disabled", opts: CompressOptions{DisableBrotli: true}, header: map[string]string{"Content-Type": "text/plain"}, body: big, request: map[string]string{"Accept-Encoding": "br, gzip"}, wantCoding: "gzip", wantVary: true},
		{name: "javascript", header: map[string]string{"Content-Type": "text/javascript"}, body: big, request: map[string]string{"Accept-Encoding": "br"}, wantCoding: "br", wantVary: true},
		{name: "svg", header: map[string]string{"Content-Type": "image/svg+xml"}, body: big, request: map[string]string{"Accept-Encoding": "br"}, wantCoding: "br", wantVary: true},
		{name: "wasm", header: map[string]string{"Content-Type": "application/wasm"}, body: big, request: map[string]string{"Accept-Encoding": "gzip"}, wantCoding: "gzip", wantVary: true},
		{name: "+json suffix", header: map[string]string{"Content-Type": "application/problem+json"}, body: big, request: map[string]string{"Accept-Encoding": "gzip"}, wantCoding: "gzip", wantVary: true},
		{name: "extra type", opts: CompressOptions{Types: []string{"application/x-berth*"}}, header: map[string]string{"Content-Type": "application/x-berth-log"}, body: big, request: map[string]string{"Accept-Encoding": "gzip"}, wantCoding: "gzip", wantVary: true},
		{name: "sniffed text", header: map[string]string{}, body: big, request: map[string]string{"Accept-Encoding": "gzip"}, wantCoding: "gzip", wantVary: true},
		{name: "known length", header: map[string]string{"Content-Type": "text/plain"}, body: big, request: map[string]string{"Accept-Encoding": "gzip", "X-Set-Length": "1"}, wantCoding: "gzip", wantVary: true},
		{name: "image untouched", header: map[string]string{"Content-Type": "image/png"}, body: big, request: map[string]string{"Accept-Encoding": "gzip, br"}, wantCoding: "", wantVary: false},
		{name: "zip untouched", header: map[string]string{"Content-Type": "application/zip"}, body: big, request: map[string]string{"Accept-Encoding": "gzip, br"}, wantCoding: "", wantVary: false},
		{name: "small body untouched", header: map[string]string{"Content-Type": "text/plain"}, body: textBody(500), request: map[string]string{"Accept-Encoding": "gzip, br"}, wantCoding: "", wantVary: true},
		{name: "small known length untouched", header: map[string]string{"Content-Type": "text/plain"}, body: textBody(500), request: map[string]string{"Accept-Encoding": "gzip", "X-Set-Length": "1"}, wantCoding: "", wantVary: true},
		{name: "MinSize option", opts: CompressOptions{MinSize: 100}, header: map[string]string{"Content-Type": "text/plain"}, body: textBody(500), request: map[string]string{"Accept-Encoding": "gzip"}, wantCoding: "gzip", wantVary: true},
		{name: "Range request untouched", header: map[string]string{"Content-Type": "text/plain"}, body: big, request: map[string]string{"Accept-Encoding": "gzip", "Range": "bytes=0-10"}, wantCoding: "", wantVary: true},
		{name: "no-transform untouched", header: map[string]string{"Content-Type": "text/plain", "Cache-Control": "no-transform"}, body: big, request: map[string]string{"Accept-Encoding": "gzip"}, wantCoding: "", wantVary: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := contentServer(t, tc.opts, tc.header, tc.body)
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			req, err := http.NewRequest(method, srv.URL+"/x", nil)
			require.NoError(t, err)
			for k, v := range tc.request {
				req.Header.Set(k, v)
			}
			resp, err := testClient(t).Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			require.NoError(t, err)

			assert.Equal(t, tc.wantCoding, resp.Header.Get("Content-Encoding"))
			assert.Equal(t, tc.body, decode(t, tc.wantCoding, raw))
			if tc.wantCoding != "" {
				assert.Less(t, len(raw), len(tc.body)/2, "compressed")
				if cl := resp.Header.Get("Content-Length"); cl != "" {
					assert.Equal(t, strconv.Itoa(len(raw)), cl, "the length of the encoded body, set by net/http")
				}
			}
			if tc.wantVary {
				assert.Equal(t, "Accept-Encoding", resp.Header.Get("Vary"))
			} else {
				assert.Empty(t, resp.Header.Get("Vary"))
			}
		})
	}
}

func TestCompressSkipsEncodedResponses(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = io.WriteString(zw, textBody(8<<10))
	require.NoError(t, zw.Close())
	srv := contentServer(t, CompressOptions{}, map[string]string{"Content-Type": "text/plain", "Content-Encoding": "gzip"}, gz.String())
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Accept-Encoding", "br, gzip")
	resp, err := testClient(t).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	assert.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
	assert.Equal(t, gz.Bytes(), raw, "passed through byte for byte")
}

func TestCompressHeaders(t *testing.T) {
	srv := contentServer(t, CompressOptions{}, map[string]string{
		"Content-Type": "text/plain", "ETag": `"abc"`, "Accept-Ranges": "bytes", "Vary": "Origin",
	}, textBody(4096))
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		t.Run(method, func(t *testing.T) {
			req, _ := http.NewRequest(method, srv.URL, nil)
			req.Header.Set("Accept-Encoding", "gzip")
			req.Header.Set("X-Set-Length", "1")
			resp, err := testClient(t).Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
			assert.Equal(t, `W/"abc"`, resp.Header.Get("ETag"), "a strong ETag names the identity bytes")
			assert.Empty(t, resp.Header.Get("Accept-Ranges"))
			assert.Equal(t, []string{"Origin", "Accept-Encoding"}, resp.Header.Values("Vary"))
		})
	}
}

// TestCompressCurl decodes with curl's own gzip and brotli decoders.
func TestCompressCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	body := textBody(20 << 10)
	srv := contentServer(t, CompressOptions{}, map[string]string{"Content-Type": "application/json"}, body)
	for _, tc := range []struct{ name, acceptEncoding, want string }{
		{"brotli", "br", "br"},
		{"gzip", "gzip", "gzip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			hdr, out := filepath.Join(dir, "h"), filepath.Join(dir, "b")
			cmd := exec.Command(curl, "-sS", "--noproxy", "*", "--compressed", "-H", "Accept-Encoding: "+tc.acceptEncoding,
				"-D", hdr, "-o", out, srv.URL)
			b, err := cmd.CombinedOutput()
			require.NoError(t, err, string(b))
			h, _ := os.ReadFile(hdr)
			assert.Contains(t, strings.ToLower(string(h)), "content-encoding: "+tc.want)
			got, _ := os.ReadFile(out)
			assert.Equal(t, body, string(got))
		})
	}
}

// TestCompressStreamsServerSentEvents: each event reaches the client,
// decoded, before the handler sends the next.
func TestCompressStreamsServerSentEvents(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cache bool
	}{
		{"compress alone", false},
		{"compress in front of the cache", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ack := make(chan struct{})
			sse := func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Header().Set("Cache-Control", "no-cache")
				for i := range 3 {
					_, _ = io.WriteString(w, "data: event "+strconv.Itoa(i)+"\n\n")
					http.NewResponseController(w).Flush()
					select {
					case <-ack:
					case <-time.After(5 * time.Second):
						return // the client never saw the event: the test fails below
					}
				}
			}
			var url string
			if tc.cache {
				s := newStack(t, Options{}, func(_ int64, _ *clock, w http.ResponseWriter, r *http.Request) { sse(w, r) },
					func(c *Cache, proxy http.Handler) http.Handler { return Compress(c.Handler(proxy), CompressOptions{}) })
				url = s.front.URL
			} else {
				srv := httptest.NewServer(Compress(http.HandlerFunc(sse), CompressOptions{}))
				t.Cleanup(srv.Close)
				url = srv.URL
			}
			req, _ := http.NewRequest(http.MethodGet, url+"/events", nil)
			req.Header.Set("Accept-Encoding", "gzip")
			resp, err := testClient(t).Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
			zr, err := gzip.NewReader(resp.Body)
			require.NoError(t, err)
			lines := bufio.NewReader(zr)
			for i := range 3 {
				line, err := lines.ReadString('\n')
				require.NoError(t, err)
				require.Equal(t, "data: event "+strconv.Itoa(i)+"\n", line)
				_, _ = lines.ReadString('\n')
				ack <- struct{}{}
			}
		})
	}
}

// TestCompressBehindCache: the cache stores one encoded variant per coding.
func TestCompressBehindCache(t *testing.T) {
	body := textBody(8 << 10)
	s := newStack(t, Options{}, func(n int64, clk *clock, w http.ResponseWriter, r *http.Request) {
		setDate(w, clk)
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}, func(c *Cache, proxy http.Handler) http.Handler {
		return c.Handler(Compress(proxy, CompressOptions{})) // the cache stores encoded bodies
	})
	for i, tc := range []struct {
		ae, coding string
		hit        bool
	}{
		{"br, gzip", "br", false},
		{"gzip, br", "br", true},
		{"gzip", "gzip", false},
		{"gzip;q=1", "gzip", true},
		{"", "", false},
	} {
		res := s.do(t, http.MethodGet, "/j", map[string]string{"Accept-Encoding": tc.ae})
		assert.Equal(t, tc.coding, res.Header.Get("Content-Encoding"), "request %d", i)
		assert.Equal(t, tc.hit, isHit(res), "request %d: %s", i, res.Header.Get("Cache-Status"))
		assert.Equal(t, body, decode(t, tc.coding, []byte(res.body)), "request %d", i)
	}
	assert.EqualValues(t, 3, s.origin.hits.Load())
}

func TestCompressOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts CompressOptions
		ok   bool
	}{
		{"zero", CompressOptions{}, true},
		{"levels", CompressOptions{GzipLevel: 9, BrotliLevel: 11}, true},
		{"gzip level", CompressOptions{GzipLevel: 10}, false},
		{"brotli level", CompressOptions{BrotliLevel: 12}, false},
		{"negative size", CompressOptions{MinSize: -1}, false},
		{"bad type", CompressOptions{Types: []string{"json"}}, false},
		{"prefix type", CompressOptions{Types: []string{"application/vnd.berth*"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrInvalidOptions)
			}
		})
	}
}
