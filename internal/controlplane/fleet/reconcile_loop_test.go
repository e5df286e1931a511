package fleet

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/runtime"
)

// brokenEvents is an engine whose event stream fails at once, every time it
// is subscribed to. Only Events is served: the reconciler must not call
// anything else before its first resync.
type brokenEvents struct {
	runtime.PodEngine
	received chan struct{} // one value each time the loop took the error
}

func (e *brokenEvents) Events(ctx context.Context) (<-chan runtime.PodEvent, <-chan error) {
	errs := make(chan error) // unbuffered: the send ends when the loop took it
	go func() {
		select {
		case errs <- errors.New("event stream broken"):
			e.received <- struct{}{}
		case <-ctx.Done():
		}
	}()
	return make(chan runtime.PodEvent), errs
}

// TestReconcileLoopStopsWhileWaitingToResubscribe: a daemon told to stop
// while the reconciler waits to resubscribe to a broken event stream stops
// at once, not when the wait is over.
func TestReconcileLoopStopsWhileWaitingToResubscribe(t *testing.T) {
	eng := &brokenEvents{received: make(chan struct{}, 1)}
	f := &Fleet{pods: eng, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.ReconcileLoop(ctx)
	}()
	select {
	case <-eng.received:
	case <-time.After(5 * time.Second):
		t.Fatal("the reconciler never read the event stream's error")
	}
	cancel()
	start := time.Now()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the reconciler did not stop")
	}
	require.Less(t, time.Since(start), 300*time.Millisecond, "the reconciler waited out its resubscribe delay after the daemon stopped")
}
