package fake

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
)

// logBuf is a container's log: every line of every run, kept until the
// pod is removed, as the engine keeps a container's log across restarts.
type logBuf struct {
	mu      sync.Mutex
	lines   []runtime.LogLine
	notify  chan struct{} // closed and replaced on every change
	run     int           // which run writes now
	running bool
	removed bool
}

func newLogBuf() *logBuf { return &logBuf{notify: make(chan struct{})} }

func (b *logBuf) changed() {
	close(b.notify)
	b.notify = make(chan struct{})
}

// begin marks a new run of the container.
func (b *logBuf) begin(run int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.run, b.running = run, true
	b.changed()
}

// end marks the container stopped: followers end once they have read
// everything.
func (b *logBuf) end() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.running = false
	b.changed()
}

// remove ends every follower: the pod is gone.
func (b *logBuf) remove() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.removed, b.running = true, false
	b.changed()
}

func (b *logBuf) add(stream, text string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, runtime.LogLine{Time: time.Now(), Stream: stream, Text: text})
	b.changed()
}

// stream sends the selected lines to fn, and with Follow the lines that
// come after, until the run that was current ends, the pod is removed or
// ctx ends.
func (b *logBuf) stream(ctx context.Context, opts runtime.LogOptions, fn func(runtime.LogLine)) error {
	b.mu.Lock()
	first := 0
	if !opts.Since.IsZero() {
		for first < len(b.lines) && b.lines[first].Time.Before(opts.Since) {
			first++
		}
	}
	if opts.Tail > 0 && len(b.lines)-first > opts.Tail {
		first = len(b.lines) - opts.Tail
	}
	run := b.run
	next := first
	for {
		batch := b.lines[next:len(b.lines):len(b.lines)]
		next = len(b.lines)
		over := b.removed || !b.running || b.run != run
		notify := b.notify
		b.mu.Unlock()
		for _, l := range batch {
			fn(l)
		}
		if !opts.Follow || over {
			return nil
		}
		select {
		case <-notify:
		case <-ctx.Done():
			return nil
		}
		b.mu.Lock()
	}
}

// lineWriter turns a process's writes to one stream into log lines.
type lineWriter struct {
	b      *logBuf
	stream string
	mu     sync.Mutex
	part   []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.part = append(w.part, p...)
	for {
		i := bytes.IndexByte(w.part, '\n')
		if i < 0 {
			break
		}
		w.b.add(w.stream, string(w.part[:i]))
		w.part = w.part[i+1:]
	}
	return len(p), nil
}

// flush logs an unfinished last line.
func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.part) > 0 {
		w.b.add(w.stream, string(w.part))
		w.part = nil
	}
}

// Logs streams a container's log lines ("" or the main container's name:
// the main container).
func (e *Engine) Logs(ctx context.Context, id, container string, opts runtime.LogOptions, fn func(runtime.LogLine)) error {
	if err := e.w.fail(opLogs); err != nil {
		return err
	}
	e.w.mu.Lock()
	p, err := e.w.pod(id)
	if err != nil {
		e.w.mu.Unlock()
		return err
	}
	c := p.container(container)
	if c == nil {
		e.w.mu.Unlock()
		return fmt.Errorf("%w: no container %q in pod %s", runtime.ErrNotFound, container, p.name)
	}
	logs := c.logs
	e.w.mu.Unlock()
	return logs.stream(ctx, opts, fn)
}
