package controlplane_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/controlplane"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/testutil"
)

// faultyEngine is an engine with a bug injected on demand: a
// panic where the control plane calls it, standing for a bug anywhere on
// those paths. The product has no such switch; the test wraps the engine.
type faultyEngine struct {
	runtime.PodEngine
	panicEvents, panicList atomic.Bool
	eventsCalls            atomic.Int32
}

func (e *faultyEngine) Events(ctx context.Context) (<-chan runtime.PodEvent, <-chan error) {
	e.eventsCalls.Add(1)
	if e.panicEvents.Load() {
		panic("injected bug: engine events")
	}
	return e.PodEngine.Events(ctx)
}

func (e *faultyEngine) ListPods(ctx context.Context, labels map[string]string) ([]runtime.Pod, error) {
	if e.panicList.Load() {
		panic("injected bug: engine list")
	}
	return e.PodEngine.ListPods(ctx, labels)
}

// TestPanicsInTheControlPlaneAreContained: a panic in the reconciler's loop
// and one in an API handler are logged with their stack; the daemon (an
// in-process Run: a panic not contained would end this test binary) keeps
// routing traffic through the edge and answering the API, the handler's
// client gets a 500 with a reason, and the reconciler runs again.
func TestPanicsInTheControlPlaneAreContained(t *testing.T) {
	fe := newFake(t)
	eng := &faultyEngine{PodEngine: fe}
	eng.panicEvents.Store(true)
	d := startOnFake(t, fe, "", func(c *controlplane.Config) { c.Engine = eng })
	img := d.image()
	app := testutil.UniqueName(t, "panic")
	d.mustDeploy(appSpec(app, img, ""))

	// The reconciler panicked at its start and is restarted, panicking
	// again, while the edge serves.
	eventually(t, 10*time.Second, "the reconciler restarted after its panic", func() bool { return eng.eventsCalls.Load() >= 2 })
	l := d.startLoad(app, "web", 4)
	time.Sleep(500 * time.Millisecond)

	// An API handler's panic: a 500 saying so, not a dropped connection.
	eng.panicList.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := d.client.Logs(ctx, app, "web", client.LogsOptions{}, func(api.Message) {})
	eng.panicList.Store(false)
	var apiErr *client.APIError
	require.ErrorAs(t, err, &apiErr, "the handler's client gets an answer")
	assert.Equal(t, http.StatusInternalServerError, apiErr.StatusCode)
	assert.Contains(t, apiErr.Body.Message, "internal error")

	l.finish()
	assert.Zero(t, l.failed.Load(), "requests through the edge failed: %v", l.errs)
	assert.Positive(t, l.ok.Load())
	_, err = d.client.Status(ctx, app)
	require.NoError(t, err, "the API answers after the panics")

	logs := d.logs.String()
	assert.Contains(t, logs, "control plane panicked; contained, serving on")
	assert.Contains(t, logs, "injected bug: engine events")
	assert.Contains(t, logs, "injected bug: engine list")
	assert.Contains(t, logs, "goroutine ", "the stack is logged")

	// Fixed, the reconciler runs again and subscribes to engine events.
	eng.panicEvents.Store(false)
	calls := eng.eventsCalls.Load()
	eventually(t, 10*time.Second, "the reconciler runs again", func() bool { return eng.eventsCalls.Load() > calls })
}
