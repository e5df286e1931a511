package h2

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
)

// A handler's context ends when its stream is reset and when its
// connection ends, and what waits on it hears: Done, Err, context.AfterFunc
// (with a stop that works before the end), a context.WithCancel child and
// context.Cause. The context carries the server's values.
func TestStreamContextEndsWithItsStreamOrConnection(t *testing.T) {
	for _, how := range []string{"reset", "connection closed", "server closed"} {
		t.Run(how, func(t *testing.T) {
			type seen struct {
				err, childErr, cause error
				ran, stopped         bool
				server               bool
			}
			got := make(chan seen, 1)
			started := make(chan struct{})
			s := &Server{}
			s.HTTP = &http.Server{}
			s.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx := r.Context()
				var ran, stoppedRan atomic.Bool
				after := make(chan struct{})
				context.AfterFunc(ctx, func() { ran.Store(true); close(after) })
				stop := context.AfterFunc(ctx, func() { stoppedRan.Store(true) })
				stopped := stop()
				child, cancel := context.WithCancel(ctx)
				defer cancel()
				w.WriteHeader(http.StatusOK)
				http.NewResponseController(w).Flush()
				close(started)
				<-ctx.Done()
				<-child.Done()
				select {
				case <-after:
				case <-time.After(5 * time.Second):
				}
				got <- seen{err: ctx.Err(), childErr: child.Err(), cause: context.Cause(ctx), ran: ran.Load(),
					stopped: stopped && !stoppedRan.Load(), server: ctx.Value(http.ServerContextKey) == s.HTTP}
			})
			r := dialRaw(t, serve(t, s))
			r.req(1, "GET", "/wait", true)
			<-started
			switch how {
			case "reset":
				r.write(func(fr *http2.Framer) error { return fr.WriteRSTStream(1, http2.ErrCodeCancel) })
			case "connection closed":
				require.NoError(t, r.TC.Close())
			case "server closed":
				require.NoError(t, s.Close())
			}
			select {
			case v := <-got:
				assert.Equal(t, context.Canceled, v.err)
				assert.Equal(t, context.Canceled, v.childErr)
				assert.Equal(t, context.Canceled, v.cause)
				assert.True(t, v.ran, "context.AfterFunc's function ran")
				assert.True(t, v.stopped, "a stopped AfterFunc did not run")
				assert.True(t, v.server, "the context carries the http.Server")
			case <-time.After(10 * time.Second):
				t.Fatal("the handler's context never ended")
			}
		})
	}
}

// The context's own AfterFunc, which the edge calls directly: a function
// runs once at the cancel, in the cancelling goroutine; stop unregisters it
// and reports whether it did; one registered after the cancel runs at once.
func TestStreamCtxAfterFunc(t *testing.T) {
	c := &streamCtx{vals: context.Background()}
	var a, b, late int
	stopA := c.AfterFunc(func() { a++ })
	stopB := c.AfterFunc(func() { b++ })
	assert.True(t, stopB())
	assert.False(t, stopB(), "a second stop")
	assert.NoError(t, c.Err())
	done := c.Done()
	c.cancel()
	c.cancel()
	assert.Equal(t, 1, a)
	assert.Equal(t, 0, b)
	assert.False(t, stopA(), "stop after the function ran")
	assert.Equal(t, context.Canceled, c.Err())
	select {
	case <-done:
	default:
		t.Fatal("Done not closed by the cancel")
	}
	select {
	case <-(&streamCtx{err: context.Canceled}).Done():
	default:
		t.Fatal("Done of a context cancelled before it was asked for is not closed")
	}
	stop := c.AfterFunc(func() { late++ })
	assert.Equal(t, 1, late)
	assert.False(t, stop())
	_, has := c.Deadline()
	assert.False(t, has)
}
