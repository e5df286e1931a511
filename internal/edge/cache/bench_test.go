package cache

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// discardWriter is the cheapest ResponseWriter, so that a benchmark
// measures the cache and not a recorder.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (d *discardWriter) Header() http.Header  { return d.h }
func (d *discardWriter) WriteHeader(code int) { d.code = code }
func (d *discardWriter) Write(p []byte) (int, error) {
	d.n += len(p)
	return len(p), nil
}

// BenchmarkCacheHit measures a hit: key, lookup, freshness, header copy,
// Age and status, body write.
func BenchmarkCacheHit(b *testing.B) {
	for _, bc := range []struct {
		name    string
		size    int
		vary    bool
		onDisk  bool
		request map[string]string
	}{
		{name: "1KiB", size: 1 << 10},
		{name: "64KiB", size: 64 << 10},
		{name: "1KiB vary accept-encoding", size: 1 << 10, vary: true, request: map[string]string{"Accept-Encoding": "gzip, deflate, br, zstd"}},
		{name: "64KiB on disk", size: 64 << 10, onDisk: true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opts := Options{}
			if bc.onDisk {
				opts.Dir = b.TempDir()
				opts.MemoryObjectBytes = 1024
			}
			c, err := New(opts)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = c.Close() })
			body := strings.Repeat("x", bc.size)
			h := c.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", "max-age=3600")
				w.Header().Set("Content-Type", "application/javascript")
				w.Header().Set("ETag", `"abc"`)
				if bc.vary {
					w.Header().Set("Vary", "Accept-Encoding")
				}
				_, _ = io.WriteString(w, body)
			}))
			req := httptest.NewRequest(http.MethodGet, "http://www.example.com/static/app.js?v=1", nil)
			for k, v := range bc.request {
				req.Header.Set(k, v)
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
			w := &discardWriter{h: make(http.Header)}
			b.ReportAllocs()
			b.SetBytes(int64(bc.size))
			for b.Loop() {
				clear(w.h)
				w.n = 0
				h.ServeHTTP(w, req)
			}
			if w.code != http.StatusOK || w.n != bc.size || !strings.Contains(w.h.Get("Cache-Status"), "; hit") {
				b.Fatalf("not a hit: %d %d %q", w.code, w.n, w.h.Get("Cache-Status"))
			}
		})
	}
}

// BenchmarkKey measures the primary key of a request.
func BenchmarkKey(b *testing.B) {
	for _, bc := range []struct{ name, url, host string }{
		{"short", "/", "example.com"},
		{"path and query", "/static/js/app.3f9a1c.js?v=12&lang=en", "www.example.com"},
		{"host with port and case", "/api/v1/items", "WWW.Example.COM:8443"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, bc.url, nil)
			req.Host = bc.host
			b.ReportAllocs()
			for b.Loop() {
				_, _, _ = keyOf(http.MethodGet, req)
			}
		})
	}
}

// BenchmarkCompress measures encoding a 16 KiB JSON response.
func BenchmarkCompress(b *testing.B) {
	body := textBody(16 << 10)
	h := Compress(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}), CompressOptions{})
	for _, coding := range []string{"gzip", "br"} {
		b.Run(coding, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/data.json", nil)
			req.Header.Set("Accept-Encoding", coding)
			w := &discardWriter{h: make(http.Header)}
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, req)
			}
			if w.h.Get("Content-Encoding") != coding {
				b.Fatalf("not encoded: %v", w.h)
			}
		})
	}
}
