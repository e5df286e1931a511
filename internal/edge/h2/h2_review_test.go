package h2

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/edge/h2/h2test"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawConn is an HTTP/2 client that writes the frames a test asks for
// and reads every frame the server sends, in a goroutine of its own, so
// that a test can also see that nothing comes.
type rawConn struct {
	*h2test.Conn
	t      testing.TB
	fr     *http2.Framer
	frames chan rawFrame
	stop   chan struct{}
	seen   []rawFrame // every frame next has returned
}

// A rawConn's reader keeps few frames that the test has not taken: a
// test that stops taking them stops reading the connection, as a slow
// client does.

// rawFrame is what one frame from the server said; err is set on the
// last one, when the connection ended.
type rawFrame struct {
	http2.FrameHeader
	fields []hpack.HeaderField // a whole header block
	data   []byte
	code   http2.ErrCode // RST_STREAM, GOAWAY
	last   uint32        // GOAWAY
	inc    uint32        // WINDOW_UPDATE
	err    error
}

func (f rawFrame) field(name string) string {
	for _, hf := range f.fields {
		if hf.Name == name {
			return hf.Value
		}
	}
	return ""
}

// dialRaw connects to addr and sends the preface with settings. The
// client reads frames of up to maxFrame bytes (SETTINGS_MAX_FRAME_SIZE
// among settings, or its default).
func dialRaw(t testing.TB, addr string, settings ...http2.Setting) *rawConn {
	t.Helper()
	c, err := h2test.Dial(t, addr, settings...)
	require.NoError(t, err)
	r := &rawConn{Conn: c, t: t, fr: c.FR, frames: make(chan rawFrame, 64), stop: make(chan struct{})}
	r.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	r.fr.MaxHeaderListSize = 1 << 20
	maxFrame := uint32(16384)
	for _, s := range settings {
		if s.ID == http2.SettingMaxFrameSize {
			maxFrame = s.Val
		}
	}
	r.fr.SetMaxReadFrameSize(maxFrame)
	t.Cleanup(func() { close(r.stop) })
	go r.read()
	return r
}

func (r *rawConn) read() {
	defer close(r.frames)
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			select {
			case r.frames <- rawFrame{err: err}:
			case <-r.stop:
			}
			return
		}
		rf := rawFrame{FrameHeader: f.Header()}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			rf.fields = append([]hpack.HeaderField(nil), f.Fields...)
		case *http2.DataFrame:
			rf.data = bytes.Clone(f.Data())
		case *http2.RSTStreamFrame:
			rf.code = f.ErrCode
		case *http2.GoAwayFrame:
			rf.code, rf.last = f.ErrCode, f.LastStreamID
		case *http2.WindowUpdateFrame:
			rf.inc = f.Increment
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = r.tryWrite(func(fr *http2.Framer) error { return fr.WriteSettingsAck() })
			}
		}
		select {
		case r.frames <- rf:
		case <-r.stop:
			return
		}
	}
}

func (r *rawConn) write(f func(fr *http2.Framer) error) {
	r.t.Helper()
	require.NoError(r.t, r.tryWrite(f))
}

func (r *rawConn) tryWrite(f func(fr *http2.Framer) error) error { return r.Write(f) }

// headers sends a header block on stream id: name/value pairs, as they are.
func (r *rawConn) headers(id uint32, end bool, kv ...string) {
	r.t.Helper()
	r.write(func(fr *http2.Framer) error { return r.WriteHeaders(fr, id, end, kv...) })
}

// req opens stream id with a request; kv are more header fields.
func (r *rawConn) req(id uint32, method, path string, end bool, kv ...string) {
	r.t.Helper()
	r.headers(id, end, append([]string{":method", method, ":scheme", "https", ":authority", "example.test", ":path", path}, kv...)...)
}

// data sends b on stream id in DATA frames of the default size.
func (r *rawConn) data(id uint32, end bool, b []byte) {
	r.t.Helper()
	r.write(func(fr *http2.Framer) error {
		for {
			n := min(len(b), 16384)
			last := n == len(b)
			if err := fr.WriteData(id, end && last, b[:n]); err != nil {
				return err
			}
			if last {
				return nil
			}
			b = b[n:]
		}
	})
}

// next is the next frame from the server.
func (r *rawConn) next() rawFrame {
	r.t.Helper()
	select {
	case f, ok := <-r.frames:
		if !ok {
			r.t.Fatal("reading after the connection ended")
		}
		r.seen = append(r.seen, f)
		return f
	case <-time.After(10 * time.Second):
		r.t.Fatal("no frame from the server for 10 s")
	}
	return rawFrame{}
}

// until reads frames until one satisfies cond, and returns it; the
// connection ending first fails the test.
func (r *rawConn) until(what string, cond func(f rawFrame) bool) rawFrame {
	r.t.Helper()
	for {
		f := r.next()
		if cond(f) {
			return f
		}
		if f.err != nil {
			r.t.Fatalf("waiting for %s: the connection ended: %v", what, f.err)
		}
	}
}

// quiet reads what the server sends for d.
func (r *rawConn) quiet(d time.Duration) []rawFrame {
	r.t.Helper()
	var got []rawFrame
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-r.frames:
			if !ok {
				return got
			}
			r.seen = append(r.seen, f)
			got = append(got, f)
		case <-deadline:
			return got
		}
	}
}

// ended reads until stream id has ended, by END_STREAM or RST_STREAM.
func (r *rawConn) ended(id uint32) rawFrame {
	r.t.Helper()
	end := func(f rawFrame) bool {
		return f.StreamID == id && (f.Type == http2.FrameRSTStream || f.Flags.Has(http2.FlagDataEndStream) && (f.Type == http2.FrameData || f.Type == http2.FrameHeaders))
	}
	for _, f := range r.seen {
		if end(f) {
			return f
		}
	}
	return r.until("the end of stream "+strconv.Itoa(int(id)), end)
}

// body is what DATA stream id has brought so far.
func (r *rawConn) body(id uint32) []byte {
	var b []byte
	for _, f := range r.seen {
		if f.Type == http2.FrameData && f.StreamID == id {
			b = append(b, f.data...)
		}
	}
	return b
}

// heads are the header blocks stream id has brought so far.
func (r *rawConn) heads(id uint32) []rawFrame {
	var hs []rawFrame
	for _, f := range r.seen {
		if f.Type == http2.FrameHeaders && f.StreamID == id {
			hs = append(hs, f)
		}
	}
	return hs
}

func (r *rawConn) goAways() []rawFrame {
	var gs []rawFrame
	for _, f := range r.seen {
		if f.Type == http2.FrameGoAway {
			gs = append(gs, f)
		}
	}
	return gs
}

// logBuf keeps what a server logs.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A client's trailers can be on their way when the server, its answer
// complete, resets the stream with NO_ERROR: they are frames on a stream
// the server reset, which RFC 9113 (5.1) says to ignore, not a reason to
// end the connection and every other request on it.
func TestTrailersAfterTheAnswerKeepTheConnection(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "early")
	})}
	r := dialRaw(t, serve(t, s))
	r.req(1, "POST", "/upload", false, "trailer", "x-sum")
	r.data(1, false, []byte("part of the body"))
	end := r.until("RST_STREAM after the answer", func(f rawFrame) bool { return f.Type == http2.FrameRSTStream && f.StreamID == 1 })
	assert.Equal(t, http2.ErrCodeNo, end.code)
	assert.Equal(t, "early", string(r.body(1)))

	// What the client had sent before the RST_STREAM reached it.
	r.data(1, false, []byte("more of the body"))
	r.headers(1, true, "x-sum", "42")
	r.req(3, "GET", "/next", true)
	r.ended(3)
	require.Len(t, r.heads(3), 1)
	assert.Equal(t, "200", r.heads(3)[0].field(":status"), "the next request on the connection")
	assert.Empty(t, r.goAways(), "the connection was ended")
}

// A handler that answers before it reads a body sent with Expect:
// 100-continue: no 100 follows the final answer's HEADERS when it then
// reads (net/http's HTTP/2 server drops it, golang.org/issue/14030).
func TestNoContinueAfterTheAnswerHeaders(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		w.(http.Flusher).Flush()
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	})}
	r := dialRaw(t, serve(t, s))
	r.req(1, "PUT", "/", false, "expect", "100-continue")
	r.until("the answer's HEADERS", func(f rawFrame) bool { return f.Type == http2.FrameHeaders && f.StreamID == 1 })
	r.data(1, true, []byte("body"))
	r.ended(1)
	var statuses []string
	for _, h := range r.heads(1) {
		statuses = append(statuses, h.field(":status"))
	}
	assert.Equal(t, []string{"202"}, statuses, "header blocks of the answer")
	assert.Equal(t, "body", string(r.body(1)))
}

// A handler writing more than the Content-Length it declared gets an
// error, and the client gets an answer that keeps to it.
func TestWriteBeyondDeclaredContentLength(t *testing.T) {
	for _, declared := range []int{0, 5} {
		t.Run(strconv.Itoa(declared), func(t *testing.T) {
			werr := make(chan error, 1)
			s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(declared))
				_, _ = w.Write([]byte("hello world")[:declared])
				_, err := w.Write([]byte("!"))
				werr <- err
			})}
			res, err := client(t).Get("https://" + serve(t, s) + "/")
			require.NoError(t, err)
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			require.NoError(t, err, "reading the answer")
			assert.Equal(t, "hello world"[:declared], string(b))
			assert.EqualValues(t, declared, res.ContentLength)
			assert.Error(t, <-werr, "the Write past Content-Length")
		})
	}
}

// HEAD gets the Content-Length and Content-Type its GET gets, as from
// net/http, which frames the body the handler writes and drops it.
func TestHeadHasTheHeadersOfGet(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "<!DOCTYPE html><html><body>hello</body></html>")
	})}
	addr := serve(t, s)
	cl := client(t)
	get, err := cl.Get("https://" + addr + "/")
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, get.Body)
	get.Body.Close()
	head, err := cl.Head("https://" + addr + "/")
	require.NoError(t, err)
	head.Body.Close()
	require.NotEmpty(t, get.Header.Get("Content-Length"))
	assert.Equal(t, get.Header.Get("Content-Length"), head.Header.Get("Content-Length"))
	assert.Equal(t, get.Header.Get("Content-Type"), head.Header.Get("Content-Type"))
}

// The files a handler's ParseMultipartForm writes to disk are removed
// once it returns, as net/http removes them.
func TestMultipartFilesRemoved(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	parsed := make(chan error, 1)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parsed <- r.ParseMultipartForm(1 << 10)
	})}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("f", "big.bin")
	require.NoError(t, err)
	_, _ = fw.Write(bytes.Repeat([]byte("x"), 64<<10))
	require.NoError(t, mw.Close())
	res, err := client(t).Post("https://"+serve(t, s)+"/", mw.FormDataContentType(), &body)
	require.NoError(t, err)
	res.Body.Close()
	require.NoError(t, <-parsed)
	require.Eventually(t, func() bool {
		left, _ := os.ReadDir(dir)
		return len(left) == 0
	}, 2*time.Second, 10*time.Millisecond, "the handler's multipart files are left on disk")
}

// A connection that arrives during a Shutdown gets SETTINGS first, as
// every HTTP/2 server connection must begin (RFC 9113, 3.4), then GOAWAY.
func TestConnectionDuringShutdownStartsWithSettings(t *testing.T) {
	s := &Server{Handler: http.NotFoundHandler()}
	addr := serve(t, s)
	require.NoError(t, s.Shutdown(context.Background()))
	r := dialRaw(t, addr)
	first := r.next()
	require.NoError(t, first.err)
	assert.Equal(t, http2.FrameSettings, first.Type, "the server's first frame")
	ga := r.until("GOAWAY", func(f rawFrame) bool { return f.Type == http2.FrameGoAway })
	assert.Equal(t, http2.ErrCodeNo, ga.code)
}

// Once GOAWAY has named the last stream the server processes, a later
// GOAWAY never names a higher one (RFC 9113, 6.8): the client may have
// retried those streams elsewhere already.
func TestGoAwayLastStreamNeverRises(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	})}
	defer close(release)
	r := dialRaw(t, serve(t, s))
	r.req(1, "GET", "/held", true)
	<-arrived
	go func() { _ = s.Shutdown(context.Background()) }()
	first := r.until("GOAWAY", func(f rawFrame) bool { return f.Type == http2.FrameGoAway })
	assert.Equal(t, uint32(1), first.last)
	r.req(3, "GET", "/after", true) // not processed: the client may retry it
	// A connection error: WINDOW_UPDATE of 0 on the connection.
	r.write(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(0, 0) })
	second := r.until("the second GOAWAY", func(f rawFrame) bool { return f.Type == http2.FrameGoAway })
	assert.Equal(t, http2.ErrCodeProtocol, second.code)
	assert.LessOrEqual(t, second.last, first.last, "the last stream rose from %d to %d", first.last, second.last)
}

// A connection idle for longer than writeStall still answers: the write
// deadline is counted from each write, not from the last one.
func TestAnswerAfterIdleLongerThanWriteStall(t *testing.T) {
	// Long enough for a 64 KiB answer's writes on a loaded machine under
	// the race detector; the answer is still several bufio flushes.
	const stall = time.Second
	s := &Server{writeStall: stall, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, answer(r.URL.Path, 64<<10))
	})}
	addr := serve(t, s)
	cl := client(t)
	for i, pause := range []time.Duration{0, 2 * stall} {
		time.Sleep(pause)
		res, err := cl.Get("https://" + addr + "/big")
		require.NoError(t, err, "request %d", i)
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		require.NoError(t, err, "request %d, after %s idle", i, pause)
		assert.Equal(t, answer("/big", 64<<10), string(b))
	}
}

// The answer in flight when Shutdown begins reaches a client that reads
// it slowly, whole: the connection is not closed under the frames the
// client still sends as it reads (here PINGs), which would reset it and
// lose the answer's end.
func TestShutdownLetsTheLastAnswerArriveWhole(t *testing.T) {
	const size = 8 << 20
	want := answer("/big", size)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, want)
	})}
	addr := serve(t, s)
	r := dialRaw(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
	r.write(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(0, 1<<31-1-65535) })
	r.req(1, "GET", "/big", true)
	r.until("the answer", func(f rawFrame) bool { return f.Type == http2.FrameData })
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	got := len(r.body(1))
	for i := 0; got < size; i++ {
		f := r.next()
		require.NoError(t, f.err, "after %d of %d bytes", got, size)
		got += len(f.data)
		if i%8 == 0 {
			_ = r.tryWrite(func(fr *http2.Framer) error { return fr.WritePing(false, [8]byte{}) })
			time.Sleep(time.Millisecond)
		}
	}
	assert.True(t, string(r.body(1)) == want, "the answer's bytes differ")
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return")
	}
}

// A request body four times the 1 MiB windows, read slowly by the
// handler, arrives whole: the windows are given back as it reads.
func TestLargeBodyReadSlowly(t *testing.T) {
	const size = 4 << 20
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		buf := make([]byte, 64<<10)
		for {
			n, err := r.Body.Read(buf)
			h.Write(buf[:n])
			if err != nil {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		_, _ = io.WriteString(w, hex.EncodeToString(h.Sum(nil)))
	})}
	body := []byte(answer("/upload", size))
	res, err := client(t).Post("https://"+serve(t, s)+"/upload", "application/octet-stream", bytes.NewReader(body))
	require.NoError(t, err)
	defer res.Body.Close()
	got, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	sum := sha256.Sum256(body)
	assert.Equal(t, hex.EncodeToString(sum[:]), string(got), "the body the handler read")
}

// Request trailers the client declared reach r.Trailer once the body is
// read; undeclared ones do not.
func TestRequestTrailers(t *testing.T) {
	type seen struct{ before, after http.Header }
	got := make(chan seen, 1)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		before := r.Trailer.Clone()
		_, _ = io.Copy(io.Discard, r.Body)
		got <- seen{before, r.Trailer.Clone()}
	})}
	pr, pw := io.Pipe()
	req, err := http.NewRequest("POST", "https://"+serve(t, s)+"/", pr)
	require.NoError(t, err)
	req.Trailer = http.Header{"X-Sum": nil}
	go func() {
		_, _ = io.WriteString(pw, "the body")
		req.Trailer.Set("X-Sum", "abc")
		_ = pw.Close()
	}()
	res, err := client(t).Do(req)
	require.NoError(t, err)
	res.Body.Close()
	sn := <-got
	assert.Equal(t, http.Header{"X-Sum": nil}, sn.before, "r.Trailer before the body is read")
	assert.Equal(t, http.Header{"X-Sum": {"abc"}}, sn.after, "r.Trailer once the body is read")
}

// Expect: 100-continue is answered with 100 when the handler first reads
// the body, not before.
func TestExpectContinueOnFirstRead(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	})}
	r := dialRaw(t, serve(t, s))
	r.req(1, "PUT", "/", false, "expect", "100-continue", "content-length", "4")
	<-arrived
	for _, f := range r.quiet(200 * time.Millisecond) {
		assert.False(t, f.StreamID == 1, "%v before the handler read the body", f.FrameHeader)
	}
	close(release)
	cont := r.until("100 Continue", func(f rawFrame) bool { return f.Type == http2.FrameHeaders && f.StreamID == 1 })
	assert.Equal(t, "100", cont.field(":status"))
	assert.False(t, cont.Flags.Has(http2.FlagHeadersEndStream), "100 ends the stream")
	r.data(1, true, []byte("body"))
	r.ended(1)
	heads := r.heads(1)
	require.Len(t, heads, 2)
	assert.Equal(t, "200", heads[1].field(":status"))
	assert.Equal(t, "body", string(r.body(1)))
}

// A handler that panics mid-answer has its stream reset with
// INTERNAL_ERROR; the connection serves on. The panic is logged, unless
// it is http.ErrAbortHandler.
func TestHandlerPanicResetsTheStream(t *testing.T) {
	for _, tc := range []struct {
		name   string
		panic  any
		logged bool
	}{
		{"panic", "boom", true},
		{"abort", http.ErrAbortHandler, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuf
			s := &Server{Log: slog.New(slog.NewTextHandler(&logs, nil)), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/panic" {
					_, _ = io.WriteString(w, "half an answer")
					w.(http.Flusher).Flush()
					panic(tc.panic)
				}
				_, _ = io.WriteString(w, "ok")
			})}
			r := dialRaw(t, serve(t, s))
			r.req(1, "GET", "/panic", true)
			end := r.ended(1)
			assert.Equal(t, http2.FrameRSTStream, end.Type, "the panicking stream ends with")
			assert.Equal(t, http2.ErrCodeInternal, end.code)
			r.req(3, "GET", "/ok", true)
			r.ended(3)
			assert.Equal(t, "ok", string(r.body(3)), "the next request on the connection")
			assert.Empty(t, r.goAways())
			assert.Equal(t, tc.logged, strings.Contains(logs.String(), "handler panic"), "logged: %s", logs.String())
		})
	}
}

// What a handler flushes reaches the client while the handler runs.
func TestFlushStreams(t *testing.T) {
	next := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 3 {
			_, _ = io.WriteString(w, "chunk "+strconv.Itoa(i)+"\n")
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	})}
	res, err := client(t).Get("https://" + serve(t, s) + "/")
	require.NoError(t, err)
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, "chunk "+strconv.Itoa(i)+"\n", line)
		next <- struct{}{}
	}
	_, err = br.ReadByte()
	assert.Equal(t, io.EOF, err)
}

// SETTINGS_INITIAL_WINDOW_SIZE changed by the client mid-answer moves the
// stream's window by the difference, below zero too (RFC 9113, 6.9.2):
// the server sends exactly what the window allows.
func TestInitialWindowChangedMidAnswer(t *testing.T) {
	const size = 100000
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, answer(r.URL.Path, size))
	})}
	r := dialRaw(t, serve(t, s), http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1000})
	r.write(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(0, 1<<30) })
	r.req(1, "GET", "/big", true)
	settle := func(want int, what string) {
		t.Helper()
		r.until(what, func(f rawFrame) bool { return len(r.body(1)) >= want })
		r.quiet(200 * time.Millisecond)
		assert.Equal(t, want, len(r.body(1)), what)
	}
	settle(1000, "the first window")

	r.write(func(fr *http2.Framer) error {
		return fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	})
	r.write(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(1, 600) })
	settle(1000, "the window lowered to -1000, then 600 more")

	r.write(func(fr *http2.Framer) error {
		return fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 2000})
	})
	settle(2600, "the window raised by 2000")

	r.write(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(1, size) })
	r.ended(1)
	assert.Equal(t, answer("/big", size), string(r.body(1)))
}

// No frame exceeds the client's SETTINGS_MAX_FRAME_SIZE: large header
// blocks are split into CONTINUATION frames, bodies into DATA frames,
// within it (the client's framer fails on a larger one).
func TestClientMaxFrameSizeRespected(t *testing.T) {
	big := strings.Repeat("v", 40<<10)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Big", big)
		_, _ = io.WriteString(w, answer(r.URL.Path, 256<<10))
	})}
	addr := serve(t, s)
	for _, max := range []uint32{16384, 20000} {
		t.Run(strconv.Itoa(int(max)), func(t *testing.T) {
			settings := []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 1 << 30}}
			if max != 16384 {
				settings = append(settings, http2.Setting{ID: http2.SettingMaxFrameSize, Val: max})
			}
			r := dialRaw(t, addr, settings...)
			r.write(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(0, 1<<30) })
			r.req(1, "GET", "/big", true)
			r.ended(1)
			for _, f := range r.seen {
				assert.LessOrEqual(t, f.Length, max, "%v", f.FrameHeader)
			}
			require.Len(t, r.heads(1), 1)
			assert.Equal(t, big, r.heads(1)[0].field("x-big"))
			assert.Equal(t, answer("/big", 256<<10), string(r.body(1)))
		})
	}
}

// Shutdown with streams in flight: GOAWAY names the last of them at
// once; they are answered whole; a stream opened after is not served;
// the connection closes after the last answer and Shutdown returns.
func TestShutdownWithStreamsInFlight(t *testing.T) {
	const size = 64 << 10
	arrived := make(chan string, 3)
	release := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- r.URL.Path
		<-release
		_, _ = io.WriteString(w, answer(r.URL.Path, size))
	})}
	r := dialRaw(t, serve(t, s), http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	r.write(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(0, 1<<20) })
	r.req(1, "GET", "/one", true)
	r.req(3, "GET", "/three", true)
	<-arrived
	<-arrived
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	ga := r.until("GOAWAY", func(f rawFrame) bool { return f.Type == http2.FrameGoAway })
	assert.Equal(t, http2.ErrCodeNo, ga.code)
	assert.Equal(t, uint32(3), ga.last)
	r.req(5, "GET", "/five", true)
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with streams in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	r.ended(1)
	r.ended(3)
	assert.Equal(t, answer("/one", size), string(r.body(1)))
	assert.Equal(t, answer("/three", size), string(r.body(3)))
	end := r.until("the connection's end", func(f rawFrame) bool { return f.err != nil })
	assert.ErrorIs(t, end.err, io.EOF)
	assert.Empty(t, r.heads(5), "stream 5, after GOAWAY, was answered")
	assert.Empty(t, arrived, "stream 5 reached the handler")
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
}

// Close while handlers wait, one in Write on a zero window, one in a
// body Read: both get an error and return.
func TestCloseEndsBlockedHandlers(t *testing.T) {
	errs := make(chan error, 2)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var err error
		if r.URL.Path == "/write" {
			_, err = w.Write(make([]byte, 64<<10))
		} else {
			_, err = r.Body.Read(make([]byte, 10))
		}
		errs <- err
	})}
	r := dialRaw(t, serve(t, s), http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	r.req(1, "GET", "/write", true)
	r.until("the answer's HEADERS", func(f rawFrame) bool { return f.Type == http2.FrameHeaders })
	r.req(3, "POST", "/read", false)
	r.write(func(fr *http2.Framer) error { return fr.WritePing(false, [8]byte{1}) })
	r.until("the PING's answer", func(f rawFrame) bool { return f.Type == http2.FramePing })
	require.NoError(t, s.Close())
	for range 2 {
		select {
		case err := <-errs:
			assert.Error(t, err)
		case <-time.After(5 * time.Second):
			t.Fatal("a handler still blocked after Close")
		}
	}
}

// A PRIORITY frame that makes an idle stream depend on itself resets that
// stream (RFC 9113, 5.3.1) but opens nothing: the client may still open a
// lower-numbered stream than the one it named, on the same connection.
func TestSelfDependentPriorityOnIdleStream(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})}
	r := dialRaw(t, serve(t, s))
	r.write(func(fr *http2.Framer) error {
		return fr.WritePriority(9, http2.PriorityParam{StreamDep: 9, Weight: 15})
	})
	rst := r.until("RST_STREAM on stream 9", func(f rawFrame) bool { return f.Type == http2.FrameRSTStream && f.StreamID == 9 })
	assert.Equal(t, http2.ErrCodeProtocol, rst.code)
	r.req(1, "GET", "/", true)
	r.ended(1)
	assert.Equal(t, "ok", string(r.body(1)))
	assert.Empty(t, r.goAways(), "the connection was ended")
}

// Flush on a stream the client reset reports it, as net/http's does, so a
// handler streaming to a client that left stops.
func TestFlushAfterResetFails(t *testing.T) {
	flushed := make(chan error, 1)
	reset := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).Flush() // the head
		<-r.Context().Done()
		<-reset
		flushed <- http.NewResponseController(w).Flush()
	})}
	r := dialRaw(t, serve(t, s))
	r.req(1, "GET", "/events", true)
	r.until("the answer's head", func(f rawFrame) bool { return f.Type == http2.FrameHeaders && f.StreamID == 1 })
	r.write(func(fr *http2.Framer) error { return fr.WriteRSTStream(1, http2.ErrCodeCancel) })
	close(reset)
	select {
	case err := <-flushed:
		assert.Error(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the handler never got past its flush")
	}
}

// A request on a stream the client ended and the server answered reuses
// a closed stream: a connection error (GOAWAY), never a reset of the
// stream, whether or not the stream has left the server's table when it
// comes. h2spec (http2/5.1/12) once saw RST_STREAM in that moment: the
// stream left the table just after its END_STREAM went out.
func TestHeadersOnAnAnsweredStreamEndTheConnection(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})}
	addr := serve(t, s)
	for i := range 50 {
		r := dialRaw(t, addr)
		r.req(1, "GET", "/", true)
		r.ended(1)
		r.req(1, "GET", "/", true)
		f := r.until("GOAWAY or RST_STREAM", func(f rawFrame) bool {
			return f.Type == http2.FrameGoAway || f.Type == http2.FrameRSTStream
		})
		require.Equal(t, http2.FrameGoAway, f.Type, "round %d: a reset of stream %d (%v)", i, f.StreamID, f.code)
		assert.Contains(t, []http2.ErrCode{http2.ErrCodeStreamClosed, http2.ErrCodeProtocol}, f.code)
	}
}
