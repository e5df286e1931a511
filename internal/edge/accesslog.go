package edge

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// An access log line, one JSON object per request:
//
//	{"time":"2025-01-02T15:04:05.123456Z","entrypoint":"www","host":"www.example.com",
//	 "method":"GET","path":"/","status":200,"bytes":1024,"duration_ms":0.412,
//	 "origin":"shop/web","cache":"hit","error":""}
//
// entrypoint and origin are as in Metrics; cache is "hit", "stale",
// "revalidated", "miss", "bypass", or "" without a cache; error is the
// X-Berth-Error reason when the edge answered by itself. The query string is
// left out: it often carries tokens.

// accessLog serialises lines onto one writer. Each line is one Write.
type accessLog struct {
	mu sync.Mutex
	w  io.Writer
}

var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// accessRecord is what one line says.
type accessRecord struct {
	time       time.Time
	entrypoint string
	host       string
	method     string
	path       string
	status     int
	bytes      int64
	duration   time.Duration
	origin     string
	cache      string
	reason     string
}

func (l *accessLog) write(rec *accessRecord) {
	bp := lineBufs.Get().(*[]byte)
	b := appendAccessLine((*bp)[:0], rec)
	l.mu.Lock()
	_, _ = l.w.Write(b)
	l.mu.Unlock()
	*bp = b
	lineBufs.Put(bp)
}

func appendAccessLine(b []byte, rec *accessRecord) []byte {
	b = append(b, `{"time":"`...)
	b = appendLogTime(b, rec.time)
	b = append(b, `","entrypoint":`...)
	b = appendJSONString(b, rec.entrypoint)
	b = append(b, `,"host":`...)
	b = appendJSONString(b, rec.host)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, rec.method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, rec.path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(rec.status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, rec.bytes, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(rec.duration.Microseconds())/1000, 'f', -1, 64)
	b = append(b, `,"origin":`...)
	b = appendJSONString(b, rec.origin)
	b = append(b, `,"cache":`...)
	b = appendJSONString(b, rec.cache)
	b = append(b, `,"error":`...)
	b = appendJSONString(b, rec.reason)
	return append(b, "}\n"...)
}

// logTimeLayout is the access log's time format, in UTC.
const logTimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// appendLogTime appends t in UTC as logTimeLayout formats it, without
// interpreting the layout for every line (a third of a line's cost).
func appendLogTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, logTimeLayout)
	}
	hour, minute, sec := t.Clock()
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/1000, 6)
	return append(b, 'Z')
}

// appendDigits appends the n lowest decimal digits of v >= 0.
func appendDigits(b []byte, v, n int) []byte {
	start := len(b)
	for range n {
		b = append(b, '0')
	}
	for i := len(b) - 1; i >= start; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 (a client can
// send any bytes in a path) becomes U+FFFD, so every line stays valid JSON.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// cacheResult condenses a Cache-Status value set by the edge's cache into
// the access log's one word.
func cacheResult(v string) string {
	i := strings.LastIndex(v, "berth;")
	if i < 0 {
		return ""
	}
	v = v[i:]
	if j := strings.IndexByte(v, ','); j >= 0 {
		v = v[:j]
	}
	switch {
	case strings.Contains(v, "; hit"):
		if strings.Contains(v, "detail=") {
			return "stale"
		}
		return "hit"
	case strings.Contains(v, "stale-if-error"):
		return "stale"
	case strings.Contains(v, "fwd=miss"):
		return "miss"
	case strings.Contains(v, "fwd=stale"), strings.Contains(v, "fwd=request"):
		return "revalidated"
	}
	return "bypass"
}

// LogFile is an access log file that rotates by size: when a write would
// take it past its limit, FILE becomes FILE.1 (FILE.1 becomes FILE.2 ...,
// the oldest beyond keep is deleted) and a new FILE starts. Writes are
// buffered and flushed every flushEvery, and on Close.
type LogFile struct {
	path     string
	maxBytes int64
	keep     int

	mu   sync.Mutex
	f    *os.File
	buf  *bufio.Writer
	size int64
	err  error // the first write error, reported once

	stop chan struct{}
	done chan struct{}
}

var _ io.WriteCloser = (*LogFile)(nil)

// flushEvery bounds how stale the file is behind the requests it logs.
const flushEvery = 200 * time.Millisecond

// DefaultLogMaxBytes and DefaultLogKeep are the daemon's access log
// rotation: 64 MiB files, three old ones kept.
const (
	DefaultLogMaxBytes = 64 << 20
	DefaultLogKeep     = 3
)

// OpenLogFile opens (appending) or creates path (mode 0600) as a log that
// rotates past maxBytes, keeping keep old files.
func OpenLogFile(path string, maxBytes int64, keep int) (*LogFile, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultLogMaxBytes
	}
	l := &LogFile{path: path, maxBytes: maxBytes, keep: max(keep, 0), stop: make(chan struct{}), done: make(chan struct{})}
	if err := l.open(); err != nil {
		return nil, err
	}
	go l.flushLoop()
	return l, nil
}

func (l *LogFile) open() error {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open access log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open access log: %w", err)
	}
	l.f, l.size = f, st.Size()
	if l.buf == nil {
		l.buf = bufio.NewWriterSize(f, 64<<10)
	} else {
		l.buf.Reset(f)
	}
	return nil
}

// Write appends p (one or more whole lines).
func (l *LogFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return 0, os.ErrClosed
	}
	if l.size > 0 && l.size+int64(len(p)) > l.maxBytes {
		if err := l.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := l.buf.Write(p)
	l.size += int64(n)
	return n, err
}

// rotate shifts the files by one. Called with mu held.
func (l *LogFile) rotate() error {
	_ = l.buf.Flush()
	_ = l.f.Close()
	l.f = nil
	if l.keep == 0 {
		_ = os.Remove(l.path)
	} else {
		_ = os.Remove(l.path + "." + strconv.Itoa(l.keep))
		for i := l.keep - 1; i >= 1; i-- {
			_ = os.Rename(l.path+"."+strconv.Itoa(i), l.path+"."+strconv.Itoa(i+1))
		}
		if err := os.Rename(l.path, l.path+".1"); err != nil {
			return fmt.Errorf("rotate access log: %w", err)
		}
	}
	return l.open()
}

// Flush writes buffered lines to the file.
func (l *LogFile) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	return l.buf.Flush()
}

func (l *LogFile) flushLoop() {
	defer close(l.done)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			if err := l.Flush(); err != nil {
				l.mu.Lock()
				if l.err == nil {
					l.err = err
				}
				l.mu.Unlock()
			}
		}
	}
}

// Close flushes and closes the file.
func (l *LogFile) Close() error {
	l.mu.Lock()
	if l.f == nil {
		l.mu.Unlock()
		return nil
	}
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.buf.Flush()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}
