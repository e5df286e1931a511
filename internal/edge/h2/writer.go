package h2

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"runtime"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// kind is what a queued item writes.
type kind uint8

const (
	kindSettings kind = iota
	kindSettingsAck
	kindWindowUpdate
	kindPing
	kindRST
	kindGoAway
	kindHeaders
	kindData
	kindClose // close the connection once what is queued before is out
)

// item is one frame (or header block) queued for the writer.
type item struct {
	kind     kind
	end      bool // END_STREAM
	hasTable bool // kindSettingsAck: apply the client's table size first
	code     http2.ErrCode
	id       uint32
	n        uint32 // window increment, or the client's table size
	st       *stream
	fields   []hpack.HeaderField
	data     []byte
	buf      *[]byte // given back to the pool once data is written
	ping     [8]byte
}

// writer writes what the connection's goroutines queue, in the order
// they queue it, in batches with one flush each. A handler that queued its
// frames writes the queue itself when nobody is writing (kick), so an
// answer goes out without waking another goroutine; what the reader
// queues (acknowledgements, resets, window updates) wakes the writer's
// own goroutine (run), as the reader never writes.
type writer struct {
	c    *conn
	mu   sync.Mutex
	q    []item
	ctrl int  // control frames in q
	busy bool // a goroutine is writing
	wake chan struct{}

	// Owned by the goroutine that set busy.
	spare []item
	bw    *bufio.Writer
	enc   *hpack.Encoder
	hbuf  bytes.Buffer
	// scratch holds a frame header or field on its way into bw: a local
	// array would escape through bw's Write, one allocation per frame.
	scratch [9]byte
}

func (w *writer) init(c *conn) {
	w.c = c
	w.wake = make(chan struct{}, 1)
	w.bw = bufio.NewWriterSize(c.nc, 16<<10)
	w.enc = hpack.NewEncoder(&w.hbuf)
}

// enqueue queues it for the writer's goroutine.
func (w *writer) enqueue(it item) {
	w.mu.Lock()
	w.q = append(w.q, it)
	busy := w.busy
	w.mu.Unlock()
	if !busy {
		w.signal()
	}
}

func (w *writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// queue queues it for the caller's own kick, which must follow.
func (w *writer) queue(it item) {
	w.mu.Lock()
	w.q = append(w.q, it)
	w.mu.Unlock()
}

// kick writes what is queued, unless another goroutine is writing it.
func (w *writer) kick() {
	w.mu.Lock()
	if w.busy || len(w.q) == 0 {
		w.mu.Unlock()
		return
	}
	w.busy = true
	w.mu.Unlock()
	w.drain()
}

// enqueueControl queues a frame the client's own frames call for
// (acknowledgements, resets, window updates), refusing once a client that
// does not read has too many waiting.
func (w *writer) enqueueControl(it item) error {
	w.mu.Lock()
	if w.ctrl >= maxQueuedControl {
		w.mu.Unlock()
		// A client that does not read what its own frames call for:
		// nothing it is owed (a window update, a reset) may be dropped
		// with the connection kept.
		w.c.close(errTooManyCtrl)
		return errTooManyCtrl
	}
	w.ctrl++
	w.q = append(w.q, it)
	busy := w.busy
	w.mu.Unlock()
	if !busy {
		w.signal()
	}
	return nil
}

// run writes what enqueue queues until the connection closes.
func (w *writer) run() {
	c := w.c
	for {
		select {
		case <-w.wake:
		case <-c.done:
			w.drop()
			return
		}
		w.kick()
	}
}

// drain writes the queue until it is empty, flushing once per batch; the
// caller set busy, which drain clears.
func (w *writer) drain() {
	c := w.c
	for {
		var sent, dropped int
		closing := false
		for yielded := false; !closing; {
			w.mu.Lock()
			batch := w.q
			w.q = w.spare[:0]
			w.ctrl = 0
			w.mu.Unlock()
			w.spare = batch[:0] // never the array the queue now appends to
			if len(batch) == 0 {
				if yielded {
					break
				}
				// Once, before the flush: handlers made runnable by
				// their answers get to queue theirs, for one write.
				yielded = true
				runtime.Gosched()
				continue
			}
			// From each batch: a deadline set before the last flush
			// would have passed for a connection idle since.
			_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.stall()))
			for i := range batch {
				it := &batch[i]
				if !closing {
					s, d, cl := w.write(it)
					sent, dropped, closing = sent+s, dropped+d, cl
				} else if it.kind == kindData {
					dropped += len(it.data)
					putBuf(it.buf)
				}
				*it = item{}
			}
		}
		err := w.bw.Flush()
		if sent+dropped > 0 {
			c.fmu.Lock()
			c.queuedData -= sent + dropped
			c.sendWin += int64(dropped)
			c.fcond.Broadcast()
			c.fmu.Unlock()
		}
		if err != nil || closing {
			// busy stays set: nothing more is written.
			c.close(errConnClosed)
			w.drop()
			return
		}
		w.mu.Lock()
		if len(w.q) == 0 {
			w.busy = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
	}
}

// drop gives back the buffers of what will never be written.
func (w *writer) drop() {
	w.mu.Lock()
	q := w.q
	w.q = nil
	w.mu.Unlock()
	for i := range q {
		putBuf(q[i].buf)
	}
}

// write writes one item to the buffer; it returns the answer bytes it
// wrote and dropped, and whether the connection is to close now.
func (w *writer) write(it *item) (sent, dropped int, closeNow bool) {
	switch it.kind {
	case kindHeaders, kindData:
		if it.st.reset.Load() || it.st.rstSent {
			putBuf(it.buf)
			return 0, len(it.data), false
		}
	}
	switch it.kind {
	case kindSettings:
		w.frameHeader(3*6, http2.FrameSettings, 0, 0)
		w.setting(http2.SettingMaxConcurrentStreams, maxStreams)
		w.setting(http2.SettingInitialWindowSize, streamRecvWindow)
		w.setting(http2.SettingMaxHeaderListSize, w.c.s.maxHeaderListSize())
	case kindSettingsAck:
		if it.hasTable {
			w.enc.SetMaxDynamicTableSizeLimit(it.n)
		}
		w.frameHeader(0, http2.FrameSettings, http2.FlagSettingsAck, 0)
	case kindWindowUpdate:
		w.frameHeader(4, http2.FrameWindowUpdate, 0, it.id)
		w.uint32(it.n & (1<<31 - 1))
	case kindPing:
		w.frameHeader(8, http2.FramePing, http2.FlagPingAck, 0)
		_, _ = w.bw.Write(it.ping[:])
	case kindRST:
		if it.st != nil {
			if it.st.rstSent {
				return 0, 0, false
			}
			it.st.rstSent = true
		}
		w.frameHeader(4, http2.FrameRSTStream, 0, it.id)
		w.uint32(uint32(it.code))
	case kindGoAway:
		w.frameHeader(8, http2.FrameGoAway, 0, 0)
		w.uint32(it.id)
		w.uint32(uint32(it.code))
		return 0, 0, false
	case kindHeaders:
		if it.end {
			it.st.endSent.Store(true)
		}
		w.headers(it)
	case kindData:
		var flags http2.Flags
		if it.end {
			flags = http2.FlagDataEndStream
			it.st.endSent.Store(true)
		}
		w.frameHeader(len(it.data), http2.FrameData, flags, it.st.id)
		_, _ = w.bw.Write(it.data)
		putBuf(it.buf)
		return len(it.data), 0, false
	case kindClose:
		return 0, 0, true
	}
	return 0, 0, false
}

// headers writes a header block as HEADERS and, past the client's frame
// size, CONTINUATION frames.
func (w *writer) headers(it *item) {
	w.hbuf.Reset()
	for _, f := range it.fields {
		_ = w.enc.WriteField(f)
	}
	block := w.hbuf.Bytes()
	max := int(w.c.peerMaxFrame.Load())
	typ := http2.FrameHeaders
	var flags http2.Flags
	if it.end {
		flags = http2.FlagHeadersEndStream
	}
	for first := true; first || len(block) > 0; first = false {
		frag := block
		if len(frag) > max {
			frag = frag[:max]
		}
		block = block[len(frag):]
		if len(block) == 0 {
			flags |= http2.FlagHeadersEndHeaders // same bit as CONTINUATION's END_HEADERS
		}
		w.frameHeader(len(frag), typ, flags, it.st.id)
		_, _ = w.bw.Write(frag)
		typ, flags = http2.FrameContinuation, 0
	}
}

func (w *writer) frameHeader(length int, typ http2.FrameType, flags http2.Flags, id uint32) {
	h := w.scratch[:9]
	h[0], h[1], h[2] = byte(length>>16), byte(length>>8), byte(length)
	h[3], h[4] = byte(typ), byte(flags)
	binary.BigEndian.PutUint32(h[5:], id&(1<<31-1))
	_, _ = w.bw.Write(h)
}

func (w *writer) setting(id http2.SettingID, v uint32) {
	b := w.scratch[:6]
	binary.BigEndian.PutUint16(b, uint16(id))
	binary.BigEndian.PutUint32(b[2:], v)
	_, _ = w.bw.Write(b)
}

func (w *writer) uint32(v uint32) {
	b := w.scratch[:4]
	binary.BigEndian.PutUint32(b, v)
	_, _ = w.bw.Write(b)
}

// bufSize is the size of an answer's buffer: a DATA frame of the default
// size.
const bufSize = 16 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if b != nil {
		bufPool.Put(b)
	}
}
