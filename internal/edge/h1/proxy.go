package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// exchange is what one request the fast path proxies shares with its
// Handler, over HTTP/1.1 (fastExchange) or HTTP/2 (streamExchange).
type exchange struct {
	ex    Exchange
	t     *Target
	addr  string // the upstream tried now: t.Addr, or where Retry sent it
	head  bool   // HEAD, else GET
	start time.Time
	done  bool // ex.Done was called
	res   Result
}

// fastExchange is one request the fast path proxies. It lives in its
// connection, which serves one request at a time.
type fastExchange struct {
	exchange
	fc     *fastConn
	accept string // the client's Accept, for error pages
	// closeAfter: the client asked to close, so the answer says so.
	closeAfter bool
}

// abort ends an exchange a panic cut short.
func (x *exchange) abort() {
	if !x.done {
		x.done = true
		x.ex.Done(nil)
	}
}

// deadline is when the request times out; zero for never.
func (x *exchange) deadline() time.Time {
	if x.t.Timeout > 0 {
		return x.start.Add(x.t.Timeout)
	}
	return time.Time{}
}

// failure says what follows a request that got no answer, with err,
// when it is not a stale kept-alive connection: again when it goes to
// another address, else why it failed.
func (x *exchange) failure(err error, deadline time.Time) (f Failure, again bool) {
	// Only the request's own deadline is a timeout (504); a dial that
	// timed out is an unreachable upstream, to retry elsewhere.
	switch {
	case !deadline.IsZero() && !time.Now().Before(deadline):
		return TimedOut, false
	case x.retry(err):
		return 0, true
	case IsDialError(err):
		return Unreachable, false
	default:
		return Broken, false
	}
}

// errChunk is a malformed chunked body from an instance.
var errChunk = errors.New("malformed chunked body from the instance")

// clientError is a failure to write to the client, or the client gone: not
// the instance's fault, never retried.
type clientError struct{ err error }

func (e clientError) Error() string { return "client: " + e.err.Error() }

func isClientError(err error) bool { return errors.As(err, new(clientError)) }

// proxy sends the request to the target and copies its answer to the
// client. Failures before an answer are handled as the edge's net/http
// path handles them: a refused connection, or a connection that broke
// before any answer, goes to another address if the Exchange gives one; a
// kept-alive connection the upstream had closed is replaced. It reports
// whether the client connection can carry another request.
func (x *fastExchange) proxy() bool {
	deadline := x.deadline()
	for {
		pc, err := x.t.Transport.connect(x.addr, deadline)
		if err == nil {
			var rh respHead
			var n int
			var res *http.Response
			n, res, err = x.send(pc, &rh, deadline)
			switch {
			case err == nil && res != nil:
				x.ex.Answered(res.StatusCode)
				return x.relaySlow(pc, res, deadline)
			case err == nil:
				x.ex.Answered(rh.status)
				return x.relay(pc, &rh, n, deadline)
			}
			_ = pc.conn.Close()
			if x.fc.gone.Load() || isClientError(err) {
				// The client left; nobody reads an answer.
				x.fc.s.log().Debug("client gone before the response", "host", x.fc.req.Host, "err", err)
				x.res.Status = http.StatusBadGateway
				return false
			}
			if pc.reused && pc.got == 0 && !isTimeout(err) {
				continue // a stale kept-alive connection: the same upstream, on another
			}
		}
		if f, again := x.failure(err, deadline); !again {
			return x.failed(f, err)
		}
	}
}

// retry asks the Exchange for another address, when the request may go
// to one; it reports whether it got one.
func (x *exchange) retry(err error) bool {
	if !IsDialError(err) && !BrokeBeforeAnswer(err) {
		return false
	}
	addr, ok := x.ex.Retry(err)
	if ok {
		x.addr = addr
	}
	return ok
}

// failed answers a request that got no answer with the server's own error
// page, as the Exchange words it.
func (x *fastExchange) failed(f Failure, err error) bool {
	return x.fail(x.ex.Failed(f, err))
}

// fail answers with the server's own error page.
func (x *fastExchange) fail(status int, reason, msg string) bool {
	x.res.Status, x.res.Reason = status, reason
	x.res.Bytes = x.fc.writeErrorPage(x.head, x.closeAfter, x.accept, x.t.Controls, status, reason, msg)
	return true
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// IsDialError reports whether err is a failure to connect, which
// guarantees that no byte of the request reached the upstream.
func IsDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// BrokeBeforeAnswer reports whether err is a connection that broke before
// any answer: an idempotent request may go to another upstream then.
func BrokeBeforeAnswer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// connect returns a kept-alive connection to addr, or dials one.
func (t *Transport) connect(addr string, deadline time.Time) (*upConn, error) {
	if pc := t.pool.get(addr); pc != nil {
		return pc, nil
	}
	ctx := context.Background()
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	c, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return newUpConn(c, addr), nil
}

// send writes the request head on pc and reads the head of the answer,
// passing informational answers (103 Early Hints) on to the client. It
// returns the length of a head the fast parser took, or the answer as
// net/http read it when the head was one it does not take.
func (x *fastExchange) send(pc *upConn, rh *respHead, deadline time.Time) (int, *http.Response, error) {
	pc.setDeadline(deadline, x.start)
	pc.got = 0
	if err := pc.sendHead(x.fc.out); err != nil {
		return 0, nil, err
	}
	for {
		pc.limit = maxResponseHeaderBytes
		x.fc.arm(pc)
		n, v, err := readResponseHead(pc, rh)
		x.fc.disarm()
		if err != nil {
			return 0, nil, err
		}
		if v == headOK {
			if rh.status >= 200 {
				return n, nil, nil
			}
			if rh.status == http.StatusSwitchingProtocols {
				return 0, nil, errSwitchedProtocols
			}
			buf, _ := pc.br.Peek(n)
			bw := x.fc.bw
			writeHead(bw, rh, buf, nil) // as respWriter: no controls on a 1xx
			_, _ = bw.WriteString("\r\n")
			_, _ = pc.br.Discard(n)
			if err := bw.Flush(); err != nil {
				return 0, nil, clientError{err}
			}
			continue
		}
		req := &http.Request{Method: http.MethodGet}
		if x.head {
			req.Method = http.MethodHead
		}
		x.fc.arm(pc)
		res, err := http.ReadResponse(pc.br, req)
		x.fc.disarm()
		if err != nil {
			return 0, nil, err
		}
		if res.StatusCode >= 200 {
			return 0, res, nil
		}
		if res.StatusCode == http.StatusSwitchingProtocols {
			return 0, nil, errSwitchedProtocols
		}
		bw := x.fc.bw
		_, _ = bw.WriteString("HTTP/1.1 ")
		_, _ = bw.WriteString(res.Status)
		_, _ = bw.WriteString("\r\n")
		_ = res.Header.Write(bw)
		_, _ = bw.WriteString("\r\n")
		if err := bw.Flush(); err != nil {
			return 0, nil, clientError{err}
		}
	}
}

// readResponseHead waits until the answer's head is in pc's buffer and
// parses it. headUnsupported means net/http must read it: the fast parser
// did not take it, or it is larger than the buffer.
func readResponseHead(pc *upConn, rh *respHead) (int, verdict, error) {
	for {
		buf, _ := pc.br.Peek(pc.br.Buffered())
		n, v := parseResponse(buf, rh)
		switch {
		case v == headOK:
			return n, v, nil
		case v == headUnsupported || len(buf) >= pc.br.Size():
			return 0, headUnsupported, nil
		}
		if _, err := pc.br.Peek(len(buf) + 1); err != nil {
			if err == io.EOF && len(buf) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return 0, 0, err
		}
	}
}

// bodyless reports whether an answer with this status to this request has
// no body whatever its head says.
func (x *exchange) bodyless(status int) bool {
	return x.head || status == http.StatusNoContent || status == http.StatusNotModified
}

// relay copies an answer whose head the fast parser took. It reports
// whether the client connection can carry another request.
func (x *fastExchange) relay(pc *upConn, rh *respHead, n int, deadline time.Time) bool {
	bw := x.fc.bw
	buf, _ := pc.br.Peek(n)
	x.res.Status = rh.status
	writeHead(bw, rh, buf, x.t.Controls)
	if !rh.hasDate {
		writeDate(bw)
	}
	noBody := x.bodyless(rh.status)
	untilClose := !noBody && !rh.chunked && rh.length < 0
	if rh.chunked && rh.status != http.StatusNoContent && rh.status != http.StatusNotModified || untilClose {
		_, _ = bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if x.closeAfter {
		_, _ = bw.WriteString("Connection: close\r\n")
	}
	_, _ = bw.WriteString("\r\n")
	_, _ = pc.br.Discard(n)
	pc.limit = -1

	var err error
	switch {
	case noBody:
	case rh.chunked:
		err = x.copyChunked(pc)
	case rh.length >= 0:
		err = x.copyN(pc, rh.length)
	default:
		err = x.copyToEOF(pc)
	}
	keep := !rh.close && !x.head && !untilClose
	return x.finish(pc, err, keep, deadline)
}

// writeHead writes the status line and the forwarded header lines of a
// head the fast parser took, under header controls (nil: none); the caller
// adds its own lines and the blank line.
func writeHead(bw *bufio.Writer, rh *respHead, buf []byte, ctl *HeaderControls) {
	_, _ = bw.WriteString("HTTP/1.1 ")
	_, _ = bw.Write(rh.statusText.of(buf))
	_, _ = bw.WriteString("\r\n")
	for _, l := range rh.lines[:rh.nlines] {
		if line := l.of(buf); !ctl.controlled(line) {
			_, _ = bw.Write(line)
		}
	}
	ctl.writeAdded(bw)
}

// finish releases pc after an answer: back to the pool when it was read
// whole and the instance keeps the connection, else closed. It reports
// whether the client connection can go on.
func (x *fastExchange) finish(pc *upConn, err error, keep bool, deadline time.Time) bool {
	if err != nil {
		_ = pc.conn.Close()
		if !isClientError(err) {
			x.fc.s.log().Debug("answer cut short", "host", x.fc.req.Host, "path", x.fc.req.Path, "err", err)
		}
		return false
	}
	if !keep || x.fc.gone.Load() {
		// A client watch that saw the client leave may have set a
		// deadline in the past on pc.
		_ = pc.conn.Close()
		return true
	}
	// The deadline stays: the next request sets its own (deadline.go).
	x.t.Transport.pool.put(pc)
	return true
}

// flushIfDry sends what the client is owed before a read from pc that may
// block, so a streamed answer (server-sent events) reaches it as it comes.
func (x *fastExchange) flushIfDry(pc *upConn) error {
	if pc.br.Buffered() == 0 && x.fc.bw.Buffered() > 0 {
		if err := x.fc.bw.Flush(); err != nil {
			return clientError{err}
		}
	}
	return nil
}

// fill waits for more of the body when none is buffered, first sending the
// client what it is owed. While it waits the client is watched, so a
// client that leaves a long stream ends the request at the instance.
func (x *fastExchange) fill(pc *upConn) error {
	if pc.br.Buffered() > 0 {
		return nil
	}
	if err := x.flushIfDry(pc); err != nil {
		return err
	}
	x.fc.arm(pc)
	_, err := pc.br.Peek(1)
	x.fc.disarm()
	if err != nil && x.fc.gone.Load() {
		return clientError{err}
	}
	return err
}

// copyN copies n bytes of body.
func (x *fastExchange) copyN(pc *upConn, n int64) error {
	bw := x.fc.bw
	if n <= int64(pc.br.Buffered()) {
		b, _ := pc.br.Peek(int(n))
		if _, err := bw.Write(b); err != nil {
			return clientError{err}
		}
		_, _ = pc.br.Discard(int(n))
		x.res.Bytes += n
		return nil
	}
	for n > 0 {
		if err := x.fill(pc); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		b, _ := pc.br.Peek(int(min(n, int64(pc.br.Buffered()))))
		if _, err := bw.Write(b); err != nil {
			return clientError{err}
		}
		_, _ = pc.br.Discard(len(b))
		n -= int64(len(b))
		x.res.Bytes += int64(len(b))
	}
	return nil
}

// copyChunked copies a chunked body as it is framed, trailers included.
func (x *fastExchange) copyChunked(pc *upConn) error {
	bw := x.fc.bw
	for {
		line, err := x.readLine(pc)
		if err != nil {
			return err
		}
		size, ok := parseChunkSize(line[:len(line)-2])
		if !ok {
			return errChunk
		}
		if _, err := bw.Write(line); err != nil {
			return clientError{err}
		}
		if size == 0 {
			return x.copyTrailers(pc)
		}
		if err := x.copyN(pc, size); err != nil {
			return err
		}
		if line, err = x.readLine(pc); err != nil {
			return err
		}
		if len(line) != 2 {
			return errChunk
		}
		if _, err := bw.Write(line); err != nil {
			return clientError{err}
		}
	}
}

// copyTrailers copies the trailer section after the last chunk.
func (x *fastExchange) copyTrailers(pc *upConn) error {
	for {
		line, err := x.readLine(pc)
		if err != nil {
			return err
		}
		if len(line) > 2 {
			var hl headerLine
			if v, _ := nextLine(line, 0, &hl); v != headOK {
				return errChunk
			}
		}
		if _, err := x.fc.bw.Write(line); err != nil {
			return clientError{err}
		}
		if len(line) == 2 {
			return nil
		}
	}
}

// readLine reads one CRLF-terminated line of a chunked body.
func (x *fastExchange) readLine(pc *upConn) ([]byte, error) {
	err := x.fill(pc)
	var line []byte
	if err == nil {
		line, err = pc.br.ReadSlice('\n')
	}
	switch {
	case err == io.EOF:
		return nil, io.ErrUnexpectedEOF
	case err != nil:
		return nil, err
	case len(line) < 2 || line[len(line)-2] != '\r':
		return nil, errChunk
	}
	return line, nil
}

// copyToEOF copies a body that ends when the instance closes the
// connection, chunked for the client, whose connection stays open.
func (x *fastExchange) copyToEOF(pc *upConn) error {
	cw := chunkWriter{x: x, pc: pc}
	for {
		if err := x.fill(pc); err == io.EOF {
			if _, werr := x.fc.bw.WriteString("0\r\n\r\n"); werr != nil {
				return clientError{werr}
			}
			return nil
		} else if err != nil {
			return err
		}
		b, _ := pc.br.Peek(pc.br.Buffered())
		if _, err := cw.Write(b); err != nil {
			return err
		}
		_, _ = pc.br.Discard(len(b))
	}
}

// relaySlow copies an answer whose head net/http read: larger than the
// fast parser's buffer, or unusual. The body is copied decoded and framed
// again; trailers are dropped.
func (x *fastExchange) relaySlow(pc *upConn, res *http.Response, deadline time.Time) bool {
	pc.limit = -1
	bw := x.fc.bw
	x.res.Status = res.StatusCode
	removeHopByHop(res.Header)
	x.t.Controls.Apply(res.Header)
	noBody := x.bodyless(res.StatusCode)
	chunked := !noBody && res.ContentLength < 0
	if chunked {
		res.Header.Del("Content-Length")
		res.Header["Transfer-Encoding"] = []string{"chunked"}
	}
	_, _ = bw.WriteString("HTTP/1.1 ")
	_, _ = bw.WriteString(res.Status)
	_, _ = bw.WriteString("\r\n")
	if _, ok := res.Header["Date"]; !ok {
		writeDate(bw)
	}
	if x.closeAfter {
		res.Header["Connection"] = []string{"close"}
	}
	_ = res.Header.Write(bw)
	_, _ = bw.WriteString("\r\n")

	body := &watchedBody{x: x, pc: pc, rc: res.Body}
	var err error
	switch {
	case noBody:
	case chunked:
		cw := &chunkWriter{x: x, pc: pc}
		_, err = io.Copy(cw, body)
		if err == nil {
			_, err = bw.WriteString("0\r\n\r\n")
		}
	default:
		var n int64
		n, err = io.Copy(&countWriter{x: x}, body)
		if err == nil && n != res.ContentLength {
			err = io.ErrUnexpectedEOF
		}
	}
	if err != nil {
		// Closing the body would read the rest of it, for nobody.
		return x.finish(pc, err, false, deadline)
	}
	_ = res.Body.Close()
	return x.finish(pc, nil, !res.Close && !x.head, deadline)
}

// watchedBody reads a body net/http frames, watching the client while a
// read waits for the instance (see fill).
type watchedBody struct {
	x  *fastExchange
	pc *upConn
	rc io.Reader
}

func (b *watchedBody) Read(p []byte) (int, error) {
	if err := b.x.fill(b.pc); err != nil && err != io.EOF {
		return 0, err
	}
	return b.rc.Read(p)
}

// removeHopByHop deletes the hop-by-hop headers of an answer (RFC 9110
// 7.6.1), those its Connection header names first.
func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" {
				h.Del(tok)
			}
		}
	}
	for _, k := range [...]string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
		delete(h, k)
	}
}

// countWriter writes a body to the client, counting it.
type countWriter struct{ x *fastExchange }

func (w *countWriter) Write(p []byte) (int, error) {
	n, err := w.x.fc.bw.Write(p)
	w.x.res.Bytes += int64(n)
	if err != nil {
		err = clientError{err}
	}
	return n, err
}

// chunkWriter writes a body to the client in chunks, each sent on before
// a read from the instance may block.
type chunkWriter struct {
	x  *fastExchange
	pc *upConn
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	bw := w.x.fc.bw
	var hdr [20]byte
	_, _ = bw.Write(appendChunkHeader(hdr[:0], len(p)))
	_, _ = bw.Write(p)
	if _, err := bw.WriteString("\r\n"); err != nil {
		return 0, clientError{err}
	}
	w.x.res.Bytes += int64(len(p))
	if err := w.x.flushIfDry(w.pc); err != nil {
		return 0, err
	}
	return len(p), nil
}

var _ io.Writer = (*chunkWriter)(nil)

// clientWatchAfter is how long the fast path waits for an answer before it
// watches the client connection too: a client that leaves then gets its
// request cancelled at the instance, as net/http's background read does,
// without the cost of that read for the many requests answered sooner.
const clientWatchAfter = 100 * time.Millisecond

// clientWatch watches a client connection for its end while the fast path
// waits for an answer.
//
// Arming and disarming cost the request path an atomic store each: state
// holds when the wait began, and one timer per connection, started by the
// first wait and not stopped by the others, looks at it when it fires. It
// starts the watch when the wait has gone on for clientWatchAfter, and
// otherwise sets itself again for the rest of that time, or not at all when
// no wait is on.
type clientWatch struct {
	// state is 0 with no wait on, clock()+1 from when a wait began,
	// watching while the watch's read runs. Only a watch that won it by
	// CompareAndSwap reads the client.
	state atomic.Int64
	pc    atomic.Pointer[upConn] // the upstream connection of the wait
	set   atomic.Bool            // the timer is set

	mu    sync.Mutex    // orders the watch's start with disarm's end of it
	done  chan struct{} // closed when the watch's read ended
	dup   *os.File      // what a watch of serveLoop's socket waits on
	timer *time.Timer
}

// watching is clientWatch.state while the watch reads the client.
const watching = -1

// arm starts watching the client if pc has not answered within
// clientWatchAfter.
func (fc *fastConn) arm(pc *upConn) {
	w := &fc.watch
	w.pc.Store(pc)
	w.state.Store(clock() + 1)
	if w.set.Load() {
		return
	}
	w.mu.Lock()
	if !w.set.Load() {
		w.set.Store(true)
		if w.timer == nil {
			w.timer = time.AfterFunc(clientWatchAfter, fc.watchClient)
		} else {
			w.timer.Reset(clientWatchAfter)
		}
	}
	w.mu.Unlock()
}

// disarm ends the wait and, when the watch is reading, stops its read and
// waits for it, so the connection's reader is the caller's again.
func (fc *fastConn) disarm() {
	w := &fc.watch
	if s := w.state.Load(); s == 0 || s != watching && w.state.CompareAndSwap(s, 0) {
		return
	}
	// The watch won the state: it is reading, or about to.
	w.mu.Lock()
	done := w.done
	switch {
	case fc.loop == nil:
		_ = fc.c.SetReadDeadline(aLongTimeAgo)
	case w.dup != nil:
		_ = w.dup.SetReadDeadline(aLongTimeAgo)
	}
	w.mu.Unlock()
	<-done
	if fc.loop == nil {
		fc.rdl.forget()
	}
	w.state.Store(0)
}

// watchClient runs when the timer fires. If a wait is on and has lasted
// clientWatchAfter, it watches the client until it closes or disarm ends
// the watch: on serveLoop's socket by waiting on a duplicate of it
// (peekEnd); on any other connection by reading it until it sends
// something (the next request, which stays buffered) or closes. A closed
// client aborts the wait on pc.
func (fc *fastConn) watchClient() {
	w := &fc.watch
	w.mu.Lock()
	w.set.Store(false)
	var pc *upConn
	for pc == nil {
		s := w.state.Load()
		if s <= 0 {
			w.mu.Unlock()
			return
		}
		if left := clientWatchAfter - time.Duration(clock()+1-s); left > 0 {
			w.set.Store(true)
			w.timer.Reset(left)
			w.mu.Unlock()
			return
		}
		if w.state.CompareAndSwap(s, watching) {
			pc = w.pc.Load()
		}
	}
	w.done = make(chan struct{})
	done := w.done
	var gone bool
	if fc.loop != nil {
		// serveLoop holds the socket's reads: the watch waits on a
		// duplicate of it and peeks, leaving what it finds.
		dup, err := dupSocket(fc.loop.rc)
		w.dup = dup
		w.mu.Unlock()
		if err == nil {
			gone = peekEnd(dup)
			w.mu.Lock()
			w.dup = nil
			w.mu.Unlock()
			_ = dup.Close()
		}
	} else {
		_ = fc.c.SetReadDeadline(time.Time{})
		w.mu.Unlock()
		_, err := fc.br.Peek(1)
		gone = err != nil && !isTimeout(err)
	}
	if gone {
		fc.gone.Store(true)
		_ = pc.conn.SetDeadline(aLongTimeAgo)
	}
	close(done)
}

// dupSocket returns a duplicate of a socket, in the poller, for a wait
// that must not take the socket's own read lock.
func dupSocket(rc syscall.RawConn) (*os.File, error) {
	nfd, errno := -1, syscall.Errno(0)
	if err := rc.Control(func(fd uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
		nfd, errno = int(r), e
	}); err != nil {
		return nil, err
	}
	if errno != 0 {
		return nil, os.NewSyscallError("fcntl", errno)
	}
	// It shares the socket's non-blocking mode, so the file is pollable.
	return os.NewFile(uintptr(nfd), "client"), nil
}

// peekEnd waits for the end of the client connection under f, a
// duplicate of its socket, and reports whether it came: the client closed
// (or half-closed) or reset it. What the client sends meanwhile (the next
// request, a TLS close_notify) is left unread. A deadline on f ends the
// wait, reporting false.
func peekEnd(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	var end bool
	if err := rc.Read(func(fd uintptr) bool {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLRDHUP}}
		n, err := unix.Poll(p, 0)
		for err == unix.EINTR {
			n, err = unix.Poll(p, 0)
		}
		if err != nil {
			return true
		}
		// Nothing yet, or data alone, which is not the end: wait for
		// more to happen.
		end = n > 0 && p[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) != 0
		return end
	}); err != nil {
		return false
	}
	return end
}

// equalFoldASCII compares a header name or token with s, ignoring ASCII
// case.
func equalFoldASCII[T string | []byte](b T, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
