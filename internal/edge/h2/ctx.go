package h2

import (
	"context"
	"sync"
	"time"
)

// streamCtx is a stream's context: done when the stream is reset, when
// its handler returns, or when the connection ends.
//
// It is part of the stream and registers nowhere. A child of one
// connection-wide context.WithCancel did: every stream opened and ended
// took that context's lock, which all of the connection's streams share,
// and a map entry in it, and the handlers' context.AfterFunc another map
// in the child. Instead the connection cancels each of its streams when
// it ends (conn.close).
//
// Its values are the connection's (the server, the local address); no
// context in them can be cancelled, so context.Cause sees no other
// context's cause, only Err.
type streamCtx struct {
	vals context.Context

	mu    sync.Mutex
	done  chan struct{} // made on the first Done, or closed at the cancel
	err   error
	seq   uint64
	after []afterFn  // what AfterFunc registered and stop has not removed
	one   [1]afterFn // after's first backing array: the edge registers one
}

type afterFn struct {
	id uint64
	f  func()
}

// closedChan is Done's channel for a context cancelled before anyone asked.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

func (c *streamCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *streamCtx) Value(key any) any           { return c.vals.Value(key) }

func (c *streamCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.err != nil {
			return closedChan
		}
		c.done = make(chan struct{})
	}
	return c.done
}

func (c *streamCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// AfterFunc calls f in the goroutine that cancels the context, or at once
// in this one when it already is; stop unregisters f and reports whether
// it did so before f was called. context.AfterFunc and context.WithCancel
// use it, on a context of this type, instead of a goroutine of their own.
func (c *streamCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		f()
		return func() bool { return false }
	}
	c.seq++
	id := c.seq
	if c.after == nil {
		c.after = c.one[:0]
	}
	c.after = append(c.after, afterFn{id: id, f: f})
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, a := range c.after {
			if a.id == id {
				c.after = append(c.after[:i], c.after[i+1:]...)
				return true
			}
		}
		return false
	}
}

// cancel ends the context; later calls do nothing.
func (c *streamCtx) cancel() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = context.Canceled
	if c.done != nil {
		close(c.done)
	}
	after := c.after
	c.after = nil
	c.mu.Unlock()
	// after may be c.one: nothing appends to it once err is set.
	for _, a := range after {
		a.f()
	}
}
