package h2

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

var (
	errServerClosed = errors.New("h2: server closed")
	errConnClosed   = errors.New("h2: connection closed")
	errStreamReset  = errors.New("h2: stream reset by the client")
	errClosedBody   = errors.New("h2: read on closed body")
	errTooManyCtrl  = errors.New("h2: too many control frames queued: the client does not read")
)

const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// conn is one HTTP/2 connection. Its reader goroutine (serve) owns the
// frame-reading state; the streams map, the flow-control windows and the
// write queue each have a lock of their own.
type conn struct {
	s          *Server
	nc         net.Conn
	fr         *http2.Framer
	vals       context.Context // the values of its streams' contexts (ctx.go)
	pool       *workers        // where its handlers run (workers.go)
	remoteAddr string
	tlsState   *tls.ConnectionState
	done       chan struct{} // closed by close
	closeOnce  sync.Once

	// Reader-only state.
	maxClientID uint32 // highest stream the client opened; written under mu
	sawSettings bool

	// mu guards the streams and what follows.
	mu        sync.Mutex
	streams   map[uint32]*stream
	goingAway bool // GOAWAY sent or due: no new stream is taken
	lastID    uint32
	idle      *time.Timer
	handlers  atomic.Int32 // handler goroutines running

	// fmu guards send-side flow control and the queued answer bytes;
	// fcond wakes the handlers waiting on either.
	fmu          sync.Mutex
	fcond        sync.Cond
	sendWin      int64 // the connection's send window
	initWin      int64 // the client's SETTINGS_INITIAL_WINDOW_SIZE
	queuedData   int
	closed       bool
	peerMaxFrame atomic.Uint32

	// inMu guards receive-side flow control.
	inMu     sync.Mutex
	inAvail  int64 // what the client may still send on the connection
	inUnsent int64 // bytes consumed, not yet given back by WINDOW_UPDATE

	w writer
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		s:          s,
		nc:         nc,
		remoteAddr: nc.RemoteAddr().String(),
		done:       make(chan struct{}),
		streams:    make(map[uint32]*stream),
		sendWin:    65535,
		initWin:    65535,
		inAvail:    connRecvWindow,
	}
	if tc, ok := nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		c.tlsState = &st
	}
	c.fcond.L = &c.fmu
	c.peerMaxFrame.Store(16384)
	ctx := context.WithValue(context.Background(), http.LocalAddrContextKey, nc.LocalAddr())
	if s.HTTP != nil {
		ctx = context.WithValue(ctx, http.ServerContextKey, s.HTTP)
	}
	c.vals = ctx
	c.pool = poolFor()
	c.fr = http2.NewFramer(nil, nc)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.MaxHeaderListSize = s.maxHeaderListSize()
	c.fr.SetReuseFrames()
	c.fr.SetMaxReadFrameSize(16384) // SETTINGS_MAX_FRAME_SIZE, not advertised: its default
	c.w.init(c)
	// The server's preface, first in the queue: a GOAWAY queued before
	// serve runs (a connection during a Shutdown) goes after it.
	c.w.enqueue(item{kind: kindSettings})
	c.w.enqueue(item{kind: kindWindowUpdate, n: connRecvWindow - 65535})
	return c
}

// serve reads frames until the connection ends.
func (c *conn) serve() {
	defer c.close(errConnClosed)
	go c.w.run()

	_ = c.nc.SetReadDeadline(time.Now().Add(prefaceTimeout))
	var pre [len(clientPreface)]byte
	if _, err := io.ReadFull(c.nc, pre[:]); err != nil || string(pre[:]) != clientPreface {
		c.s.log().Debug("HTTP/2 client sent no preface", "client", c.remoteAddr, "err", err)
		return
	}
	c.armIdle()
	for {
		f, err := c.fr.ReadFrame()
		if err == nil {
			if !c.sawSettings {
				if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
					c.goAway(http2.ErrCodeProtocol, "the first frame must be SETTINGS")
					return
				}
				c.sawSettings = true
				_ = c.nc.SetReadDeadline(time.Time{})
			}
			err = c.process(f)
		}
		if err == nil {
			continue
		}
		var se http2.StreamError
		var ce http2.ConnectionError
		switch {
		case errors.As(err, &se):
			c.streamError(se.StreamID, se.Code)
			continue
		case errors.As(err, &ce):
			c.goAway(http2.ErrCode(ce), "")
		case errors.Is(err, http2.ErrFrameTooLarge):
			c.goAway(http2.ErrCodeFrameSize, "")
		default:
			c.s.log().Debug("HTTP/2 connection ends", "client", c.remoteAddr, "err", err)
		}
		return
	}
}

// goAway sends GOAWAY with code and waits a moment for it to go out
// before the connection closes.
func (c *conn) goAway(code http2.ErrCode, debug string) {
	c.s.log().Debug("HTTP/2 connection error", "client", c.remoteAddr, "code", code, "detail", debug, "frame", c.fr.ErrorDetail())
	c.mu.Lock()
	if !c.goingAway {
		c.goingAway = true
		c.lastID = c.maxClientID
	}
	// Never above a GOAWAY sent before: the client may have retried the
	// streams past it elsewhere.
	last := c.lastID
	c.mu.Unlock()
	c.w.enqueue(item{kind: kindGoAway, code: code, id: last})
	// Read on, discarding, until the client closes or goAwayTimeout: a
	// close with the client's frames unread resets the connection, and the
	// client may never see the GOAWAY (as x/net does).
	_ = c.nc.SetReadDeadline(time.Now().Add(goAwayTimeout))
	_, _ = io.Copy(io.Discard, c.nc)
}

// startGracefulShutdown sends GOAWAY with the last stream the client
// opened: the streams up to it are answered, the connection closes once
// they are done, later ones are left for the client to retry.
func (c *conn) startGracefulShutdown() {
	c.mu.Lock()
	if c.goingAway {
		c.mu.Unlock()
		return
	}
	c.goingAway = true
	c.lastID = c.maxClientID
	last := c.lastID
	idle := len(c.streams) == 0
	c.mu.Unlock()
	c.w.enqueue(item{kind: kindGoAway, code: http2.ErrCodeNo, id: last})
	if idle {
		c.closeSoon()
	}
}

// closeSoon closes the connection goAwayTimeout from now, the reader
// reading on meanwhile. Closed at once, with frames of the client's
// unread or still arriving (its WINDOW_UPDATEs, a request sent before
// the GOAWAY reached it), the connection is reset, and what the client
// has not read yet is lost: the GOAWAY, or the end of the last answer
// (golang.org/issue/18701).
func (c *conn) closeSoon() {
	time.AfterFunc(goAwayTimeout, func() { c.w.enqueue(item{kind: kindClose}) })
}

// armIdle starts the idle timer when the connection has no stream.
func (c *conn) armIdle() {
	d := c.s.IdleTimeout
	if d <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle == nil {
		c.idle = time.AfterFunc(d, c.onIdle)
		return
	}
	c.idle.Reset(d)
}

func (c *conn) onIdle() {
	c.mu.Lock()
	idle := len(c.streams) == 0
	c.mu.Unlock()
	if idle {
		c.startGracefulShutdown()
	}
}

// close ends the connection: every stream's context, body and pending
// write fail with err.
func (c *conn) close(err error) {
	c.closeOnce.Do(func() {
		c.fmu.Lock()
		c.closed = true
		c.fcond.Broadcast()
		c.fmu.Unlock()
		c.mu.Lock()
		c.goingAway = true
		streams := make([]*stream, 0, len(c.streams))
		for _, st := range c.streams {
			streams = append(streams, st)
		}
		if c.idle != nil {
			c.idle.Stop()
		}
		c.mu.Unlock()
		for _, st := range streams {
			st.ctx.cancel()
			st.body.fail(err)
		}
		close(c.done)
		_ = c.nc.Close()
	})
}

// process handles one frame; a StreamError or ConnectionError it returns
// resets the stream or ends the connection.
func (c *conn) process(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return c.processHeaders(f)
	case *http2.DataFrame:
		return c.processData(f)
	case *http2.SettingsFrame:
		return c.processSettings(f)
	case *http2.WindowUpdateFrame:
		return c.processWindowUpdate(f)
	case *http2.PingFrame:
		if !f.IsAck() {
			return c.w.enqueueControl(item{kind: kindPing, ping: f.Data})
		}
		return nil
	case *http2.RSTStreamFrame:
		if f.StreamID > c.maxClientID {
			return http2.ConnectionError(http2.ErrCodeProtocol) // idle stream
		}
		if st := c.stream(f.StreamID); st != nil {
			c.resetStream(st, errStreamReset)
		}
		return nil
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			// A stream error that opens no stream: a PRIORITY frame may
			// name an idle stream, whose number stays the client's to use.
			st := c.stream(f.StreamID)
			if st != nil {
				c.resetStream(st, errStreamReset)
			}
			return c.w.enqueueControl(item{kind: kindRST, st: st, id: f.StreamID, code: http2.ErrCodeProtocol})
		}
		return nil
	case *http2.GoAwayFrame:
		c.startGracefulShutdown()
		return nil
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol) // clients cannot push
	default:
		return nil // unknown frame types are ignored
	}
}

func (c *conn) stream(id uint32) *stream {
	c.mu.Lock()
	st := c.streams[id]
	c.mu.Unlock()
	return st
}

// streamError resets stream id with code.
func (c *conn) streamError(id uint32, code http2.ErrCode) {
	if id > c.maxClientID && id%2 == 1 {
		// A HEADERS frame refused before its stream was taken: the
		// stream is closed all the same.
		c.mu.Lock()
		c.maxClientID = id
		c.mu.Unlock()
	}
	st := c.stream(id)
	if st != nil {
		c.resetStream(st, fmt.Errorf("h2: stream error %v", code))
	}
	c.s.log().Debug("HTTP/2 stream error", "client", c.remoteAddr, "stream", id, "code", code, "detail", c.fr.ErrorDetail())
	_ = c.w.enqueueControl(item{kind: kindRST, st: st, id: id, code: code})
}

// resetStream ends st at once: its handler's context is cancelled, its
// body and writes fail, what it queued is dropped, and it leaves the
// connection.
func (c *conn) resetStream(st *stream, err error) {
	st.reset.Store(true)
	st.ctx.cancel()
	st.body.fail(err)
	c.fmu.Lock()
	st.sendErr = err
	c.fcond.Broadcast()
	c.fmu.Unlock()
	c.forget(st)
}

// forget removes st from the open streams; the last one out of a
// connection going away closes it, or re-arms the idle timer.
func (c *conn) forget(st *stream) {
	c.mu.Lock()
	if c.streams[st.id] != st {
		c.mu.Unlock()
		return
	}
	delete(c.streams, st.id)
	st.gone.Store(true)
	last := len(c.streams) == 0
	going := c.goingAway
	c.mu.Unlock()
	if !last {
		return
	}
	if going {
		c.closeSoon()
		return
	}
	c.armIdle()
}

func (c *conn) processSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	var tableSize uint32
	hasTable := false
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingHeaderTableSize:
			tableSize, hasTable = s.Val, true
		case http2.SettingInitialWindowSize:
			return c.setInitialWindow(int64(s.Val))
		case http2.SettingMaxFrameSize:
			c.peerMaxFrame.Store(s.Val)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.w.enqueueControl(item{kind: kindSettingsAck, n: tableSize, hasTable: hasTable})
}

// setInitialWindow applies a new SETTINGS_INITIAL_WINDOW_SIZE to every
// open stream's send window.
func (c *conn) setInitialWindow(v int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fmu.Lock()
	defer c.fmu.Unlock()
	delta := v - c.initWin
	c.initWin = v
	for _, st := range c.streams {
		st.sendWin += delta
		if st.sendWin > 1<<31-1 {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
	}
	c.fcond.Broadcast()
	return nil
}

func (c *conn) processWindowUpdate(f *http2.WindowUpdateFrame) error {
	inc := int64(f.Increment)
	if f.StreamID == 0 {
		c.fmu.Lock()
		defer c.fmu.Unlock()
		c.sendWin += inc
		if c.sendWin > 1<<31-1 {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		c.fcond.Broadcast()
		return nil
	}
	if f.StreamID > c.maxClientID {
		return http2.ConnectionError(http2.ErrCodeProtocol) // idle stream
	}
	st := c.stream(f.StreamID)
	if st == nil {
		return nil // closed: a late update
	}
	c.fmu.Lock()
	st.sendWin += inc
	over := st.sendWin > 1<<31-1
	c.fcond.Broadcast()
	c.fmu.Unlock()
	if over {
		return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeFlowControl}
	}
	return nil
}

func (c *conn) processData(f *http2.DataFrame) error {
	id, n := f.StreamID, int64(f.Length)
	c.inMu.Lock()
	if n > c.inAvail {
		c.inMu.Unlock()
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	c.inAvail -= n
	c.inMu.Unlock()

	st := c.stream(id)
	if st == nil || st.remoteDone.Load() {
		// Not on an open stream: the connection's window is given back
		// all the same.
		c.refund(nil, n)
		if id > c.maxClientID {
			return http2.ConnectionError(http2.ErrCodeProtocol) // idle stream
		}
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
	}
	c.inMu.Lock()
	if n > st.inAvail {
		c.inMu.Unlock()
		c.refund(nil, n)
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeFlowControl}
	}
	st.inAvail -= n
	c.inMu.Unlock()

	data := f.Data()
	if pad := n - int64(len(data)); pad > 0 {
		c.refund(st, pad)
	}
	if len(data) > 0 && !st.body.write(data) {
		c.refund(st, int64(len(data))) // the handler is done with the body
	}
	if f.StreamEnded() {
		return c.endOfBody(st, nil)
	}
	if st.body.overLength() {
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	return nil
}

// endOfBody ends st's request body, with trailers when they came.
func (c *conn) endOfBody(st *stream, trailer http.Header) error {
	if err := st.body.end(trailer); err != nil {
		return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
	}
	c.mu.Lock()
	st.remoteDone.Store(true)
	done := st.localDone
	c.mu.Unlock()
	if done {
		c.forget(st)
	}
	return nil
}

// refund gives n received bytes back to the client's windows (st's too,
// unless nil), sending WINDOW_UPDATE once enough has gathered.
func (c *conn) refund(st *stream, n int64) {
	if n <= 0 {
		return
	}
	var connInc, streamInc int64
	c.inMu.Lock()
	c.inUnsent += n
	if c.inUnsent >= connRecvWindow/4 {
		connInc, c.inAvail, c.inUnsent = c.inUnsent, c.inAvail+c.inUnsent, 0
	}
	if st != nil && !st.remoteDone.Load() && !st.gone.Load() {
		st.inUnsent += n
		if st.inUnsent >= streamRecvWindow/4 {
			streamInc, st.inAvail, st.inUnsent = st.inUnsent, st.inAvail+st.inUnsent, 0
		}
	}
	c.inMu.Unlock()
	if connInc > 0 {
		_ = c.w.enqueueControl(item{kind: kindWindowUpdate, n: uint32(connInc)})
	}
	if streamInc > 0 {
		_ = c.w.enqueueControl(item{kind: kindWindowUpdate, id: st.id, n: uint32(streamInc)})
	}
}
