package docker

import (
	"context"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
)

// The container-level calls beneath the pod contract, for this package's
// tests of what only the Docker engine does (the holder, freeze, address
// renewal, the containers of a berth from before pods).

// Create is createContainer, for the tests.
func (e *Engine) Create(ctx context.Context, spec runtime.ContainerSpec) (Container, error) {
	return e.createContainer(ctx, spec)
}

// Start is startContainer, for the tests.
func (e *Engine) Start(ctx context.Context, id string) (Container, error) {
	return e.startContainer(ctx, id)
}

// Stop is stopContainer, for the tests.
func (e *Engine) Stop(ctx context.Context, id string, grace time.Duration) error {
	return e.stopContainer(ctx, id, grace)
}

// Inspect is inspectContainer, for the tests.
func (e *Engine) Inspect(ctx context.Context, id string) (Container, error) {
	return e.inspectContainer(ctx, id)
}

// Wait is waitContainer, for the tests.
func (e *Engine) Wait(ctx context.Context, id string) (int, error) {
	return e.waitContainer(ctx, id)
}

// Attach is attachContainer, for the tests.
func (e *Engine) Attach(ctx context.Context, id string) (runtime.Stream, error) {
	return e.attachContainer(ctx, id)
}

// Freeze is freeze, for the tests.
func (e *Engine) Freeze(ctx context.Context, id string) error { return e.freeze(ctx, id) }

// Thaw is thawContainer, for the tests.
func (e *Engine) Thaw(ctx context.Context, id string) (Container, error) {
	return e.thawContainer(ctx, id)
}

// HolderImage is ensureHolderImage, for the tests.
func (e *Engine) HolderImage(ctx context.Context) (string, error) { return e.ensureHolderImage(ctx) }

// ContainerLogs is containerLogs, for the tests.
func (e *Engine) ContainerLogs(ctx context.Context, id string, opts runtime.LogOptions, fn func(runtime.LogLine)) error {
	return e.containerLogs(ctx, id, opts, fn)
}

// Resize is resizeContainer, for the tests.
func (e *Engine) Resize(ctx context.Context, id string, height, width uint) error {
	return e.resizeContainer(ctx, id, height, width)
}

// TaskNetReady reports whether a task network holder is ready on network
// for the next task-shaped pod.
func (e *Engine) TaskNetReady(network string) bool {
	e.tasks.mu.Lock()
	defer e.tasks.mu.Unlock()
	return len(e.tasks.pool(network).ready) > 0
}

// OOMEvent is oomEvent, for the tests.
func (e *Engine) OOMEvent(ctx context.Context, id string, since time.Time, wait time.Duration) bool {
	return e.oomEvent(ctx, id, since, wait)
}
