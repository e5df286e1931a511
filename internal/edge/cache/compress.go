package cache

import (
	"compress/gzip"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
)

// CompressOptions configures Compress. Zero values pick the defaults.
type CompressOptions struct {
	// MinSize is the smallest body compressed, in bytes: below it the
	// encoding costs more than it saves. Default 1024.
	MinSize int64

	// GzipLevel is the gzip level, 1 (fastest) to 9 (smallest). Default 5.
	GzipLevel int

	// BrotliLevel is the brotli quality, 1 to 11. Default 4, about gzip's
	// speed with smaller output; higher levels are for static files.
	BrotliLevel int

	// DisableBrotli offers gzip only.
	DisableBrotli bool

	// Types adds compressible media types to the built-in list: an exact
	// type ("application/x-foo") or a prefix ending in "*"
	// ("application/vnd.foo*").
	Types []string
}

// Default compression settings.
const (
	DefaultCompressMinSize = 1024
	DefaultGzipLevel       = 5
	DefaultBrotliLevel     = 4
)

// Validate reports settings Compress cannot honour, so that a spec can be
// refused before anything changes.
func (o CompressOptions) Validate() error {
	switch {
	case o.MinSize < 0:
		return fmt.Errorf("%w: compression MinSize is negative; use 0 for the default (%d bytes)", ErrInvalidOptions, DefaultCompressMinSize)
	case o.GzipLevel < 0 || o.GzipLevel > gzip.BestCompression:
		return fmt.Errorf("%w: GzipLevel %d is outside 1-9 (0 for the default)", ErrInvalidOptions, o.GzipLevel)
	case o.BrotliLevel < 0 || o.BrotliLevel > brotli.BestCompression:
		return fmt.Errorf("%w: BrotliLevel %d is outside 1-11 (0 for the default)", ErrInvalidOptions, o.BrotliLevel)
	}
	for _, t := range o.Types {
		if t == "" || t == "*" || !strings.Contains(t, "/") && !strings.HasSuffix(t, "*") {
			return fmt.Errorf("%w: compressible type %q is not a media type such as application/x-foo or a prefix such as application/vnd.foo*", ErrInvalidOptions, t)
		}
	}
	return nil
}

// Compress returns next with its responses compressed by the best coding
// the client accepts (brotli or gzip, by Accept-Encoding q-values), when
// the response is of a compressible type (text/*, JSON, JavaScript, XML,
// SVG, WebAssembly, fonts...), at least MinSize bytes, not already encoded,
// not a Range request or a partial response, and not marked no-transform.
// A compressible response carries Vary: Accept-Encoding whether compressed
// or not; a strong ETag becomes weak when the body is compressed.
// Streaming responses (server-sent events) are compressed as they come:
// each flush of next flushes the encoder and the client connection.
// Invalid options are clamped to the defaults; call Validate first to
// report them.
func Compress(next http.Handler, opts CompressOptions) http.Handler {
	cp := newCompressor(opts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &compressWriter{w: w, cp: cp, head: r.Method == http.MethodHead}
		if len(r.Header["Range"]) == 0 && !requestNoTransform(r) {
			cw.coding = negotiate(r.Header["Accept-Encoding"], cp.offered)
		}
		completed := false
		defer func() {
			if !completed {
				cw.abandon() // next panicked (http.ErrAbortHandler): no trailer
			}
		}()
		next.ServeHTTP(cw, r)
		completed = true
		cw.close()
	})
}

func requestNoTransform(r *http.Request) bool {
	for _, v := range r.Header["Cache-Control"] {
		if strings.Contains(strings.ToLower(v), "no-transform") {
			return true
		}
	}
	return false
}

// compressor holds one Compress's settings and its pools of encoders.
type compressor struct {
	minSize  int64
	offered  []string
	types    []string
	gzipPool sync.Pool
	brPool   sync.Pool
}

// encoder is what gzip.Writer and brotli.Writer have in common.
type encoder interface {
	io.WriteCloser
	Flush() error
	Reset(io.Writer)
}

func newCompressor(o CompressOptions) *compressor {
	if o.MinSize <= 0 {
		o.MinSize = DefaultCompressMinSize
	}
	if o.GzipLevel <= 0 || o.GzipLevel > gzip.BestCompression {
		o.GzipLevel = DefaultGzipLevel
	}
	if o.BrotliLevel <= 0 || o.BrotliLevel > brotli.BestCompression {
		o.BrotliLevel = DefaultBrotliLevel
	}
	cp := &compressor{minSize: o.MinSize, types: o.Types, offered: []string{"br", "gzip"}}
	if o.DisableBrotli {
		cp.offered = []string{"gzip"}
	}
	gzipLevel, brLevel := o.GzipLevel, o.BrotliLevel
	cp.gzipPool.New = func() any {
		zw, _ := gzip.NewWriterLevel(io.Discard, gzipLevel) // the level is in range
		return zw
	}
	cp.brPool.New = func() any { return brotli.NewWriterLevel(io.Discard, brLevel) }
	return cp
}

func (cp *compressor) get(coding string, w io.Writer) encoder {
	var e encoder
	if coding == "br" {
		e = cp.brPool.Get().(*brotli.Writer)
	} else {
		e = cp.gzipPool.Get().(*gzip.Writer)
	}
	e.Reset(w)
	return e
}

func (cp *compressor) put(coding string, e encoder) {
	e.Reset(io.Discard)
	if coding == "br" {
		cp.brPool.Put(e)
	} else {
		cp.gzipPool.Put(e)
	}
}

// compressibleTypes are the media types worth compressing besides text/*
// and the +json and +xml suffixes.
var compressibleTypes = map[string]bool{
	"application/json": true, "application/javascript": true, "application/x-javascript": true,
	"application/ecmascript": true, "application/xml": true, "application/wasm": true,
	"application/x-ndjson": true, "application/yaml": true, "application/x-yaml": true,
	"application/toml": true, "application/graphql": true, "application/x-www-form-urlencoded": true,
	"application/vnd.ms-fontobject": true, "application/x-font-ttf": true, "application/x-sh": true,
	"image/svg+xml": true, "image/x-icon": true, "image/vnd.microsoft.icon": true, "image/bmp": true,
	"font/ttf": true, "font/otf": true, "font/eot": true,
}

// compressible reports whether a Content-Type is worth compressing.
func (cp *compressor) compressible(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	if strings.HasPrefix(mt, "text/") || compressibleTypes[mt] ||
		strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml") {
		return true
	}
	for _, t := range cp.types {
		if p, ok := strings.CutSuffix(t, "*"); ok && strings.HasPrefix(mt, strings.ToLower(p)) || strings.EqualFold(t, mt) {
			return true
		}
	}
	return false
}

// compressWriter decides per response whether to compress. Until the
// decision it holds the status and up to MinSize bytes of body.
//
//	start ──WriteHeader──▶ pass      (not eligible, or known-small Content-Length)
//	          ├──────────▶ compress  (eligible, Content-Length ≥ MinSize)
//	          └──────────▶ buffer ──MinSize bytes, or Flush──▶ compress
//	                          └──end of response below MinSize──▶ pass
type compressWriter struct {
	w      http.ResponseWriter
	cp     *compressor
	coding string // negotiated; "" when the client takes identity only
	head   bool

	state  cwState
	status int
	sniff  bool // Content-Type unknown until the first bytes
	buf    []byte
	enc    encoder
}

type cwState int

const (
	cwStart cwState = iota
	cwPass
	cwBuffer
	cwCompress
)

var (
	_ http.ResponseWriter = (*compressWriter)(nil)
	_ http.Flusher        = (*compressWriter)(nil)
)

func (cw *compressWriter) Header() http.Header { return cw.w.Header() }

// Unwrap gives http.ResponseController the client's writer (for Hijack,
// deadlines).
func (cw *compressWriter) Unwrap() http.ResponseWriter { return cw.w }

func (cw *compressWriter) WriteHeader(code int) {
	if code < 200 {
		cw.w.WriteHeader(code) // 1xx: informational, passes through
		return
	}
	if cw.state != cwStart {
		return
	}
	cw.status = code
	h := cw.w.Header()
	if !cw.eligible(code, h) {
		cw.pass()
		return
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		cw.sniff = true
	} else if !cw.cp.compressible(ct) {
		cw.pass()
		return
	} else {
		addVary(h)
	}
	if cw.coding == "" {
		cw.pass()
		return
	}
	if n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil && !cw.sniff {
		if n < cw.cp.minSize {
			cw.pass()
		} else {
			cw.startCompress()
		}
		return
	}
	cw.state = cwBuffer
}

// eligible reports whether a response could be compressed, its type apart.
func (cw *compressWriter) eligible(code int, h http.Header) bool {
	if !bodyAllowed(code) || code == http.StatusPartialContent || len(h["Content-Range"]) > 0 {
		return false
	}
	if ce := h.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return false
	}
	for _, v := range h["Cache-Control"] {
		if strings.Contains(strings.ToLower(v), "no-transform") {
			return false
		}
	}
	return true
}

func (cw *compressWriter) pass() {
	cw.state = cwPass
	cw.w.WriteHeader(cw.status)
}

func (cw *compressWriter) startCompress() {
	h := cw.w.Header()
	h.Del("Content-Length")
	h.Del("Accept-Ranges")
	h.Set("Content-Encoding", cw.coding)
	if etag := h.Get("ETag"); etag != "" && !strings.HasPrefix(etag, "W/") {
		h.Set("ETag", "W/"+etag)
	}
	cw.state = cwCompress
	cw.w.WriteHeader(cw.status)
	if !cw.head {
		cw.enc = cw.cp.get(cw.coding, cw.w)
	}
}

// decide ends buffering: compress when the type allows (sniffing it, from
// the buffered bytes and then next, if the handler set none), else pass the
// buffered bytes through.
func (cw *compressWriter) decide(next []byte) error {
	if cw.sniff {
		sample := cw.buf
		if len(sample) < sniffLen && len(next) > 0 {
			sample = append(sample[:len(sample):len(sample)], next[:min(len(next), sniffLen-len(sample))]...)
		}
		ct := http.DetectContentType(sample)
		cw.w.Header().Set("Content-Type", ct)
		if !cw.cp.compressible(ct) {
			cw.pass()
			return cw.flushBuf()
		}
		addVary(cw.w.Header())
	}
	cw.startCompress()
	return cw.flushBuf()
}

func (cw *compressWriter) flushBuf() error {
	if len(cw.buf) == 0 {
		return nil
	}
	b := cw.buf
	cw.buf = nil
	_, err := cw.Write(b)
	return err
}

func (cw *compressWriter) Write(p []byte) (int, error) {
	if cw.state == cwStart {
		cw.WriteHeader(http.StatusOK)
	}
	switch cw.state {
	case cwPass:
		return cw.w.Write(p)
	case cwCompress:
		if cw.enc == nil {
			return len(p), nil // HEAD
		}
		return cw.enc.Write(p)
	}
	if int64(len(cw.buf)+len(p)) < cw.cp.minSize {
		cw.buf = append(cw.buf, p...)
		return len(p), nil
	}
	if err := cw.decide(p); err != nil {
		return 0, err
	}
	return cw.Write(p)
}

// sniffLen is how many bytes http.DetectContentType looks at.
const sniffLen = 512

// Flush sends everything written so far: a buffered response is committed
// to compression (if its type allows), the encoder is flushed, then the
// connection.
func (cw *compressWriter) Flush() {
	if cw.state == cwStart {
		cw.WriteHeader(http.StatusOK)
	}
	if cw.state == cwBuffer {
		_ = cw.decide(nil)
	}
	if cw.enc != nil {
		_ = cw.enc.Flush()
	}
	_ = http.NewResponseController(cw.w).Flush()
}

// close ends the response after next returned.
func (cw *compressWriter) close() {
	switch cw.state {
	case cwBuffer:
		h := cw.w.Header()
		if cw.sniff && len(cw.buf) > 0 {
			ct := http.DetectContentType(cw.buf)
			h.Set("Content-Type", ct)
			if cw.cp.compressible(ct) {
				addVary(h)
			}
		}
		if !cw.head {
			h.Set("Content-Length", strconv.Itoa(len(cw.buf)))
		}
		cw.pass()
		_ = cw.flushBuf()
	case cwCompress:
		if cw.enc != nil {
			_ = cw.enc.Close()
			cw.cp.put(cw.coding, cw.enc)
			cw.enc = nil
		}
	}
}

// abandon drops the encoder of a response cut short.
func (cw *compressWriter) abandon() {
	if cw.enc != nil {
		cw.cp.put(cw.coding, cw.enc)
		cw.enc = nil
	}
}

// addVary adds Accept-Encoding to Vary unless it is there or Vary is "*".
func addVary(h http.Header) {
	for _, line := range h["Vary"] {
		for f := range strings.SplitSeq(line, ",") {
			f = strings.TrimSpace(f)
			if f == "*" || strings.EqualFold(f, "Accept-Encoding") {
				return
			}
		}
	}
	h.Add("Vary", "Accept-Encoding")
}
