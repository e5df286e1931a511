package docker

import (
	"context"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
)

// The container-level calls beneath the pod contract, for this package's
// tests of what only the Docker engine does (the holder, freeze, address
// renewal, the containers of a berth from before pods).

func (e *Engine) Create(ctx context.Context, spec runtime.ContainerSpec) (Container, error) {
	return e.createContainer(ctx, spec)
}

func (e *Engine) Start(ctx context.Context, id string) (Container, error) {
	return e.startContainer(ctx, id)
}

func (e *Engine) Stop(ctx context.Context, id string, grace time.Duration) error {
	return e.stopContainer(ctx, id, grace)
}

func (e *Engine) Inspect(ctx context.Context, id string) (Container, error) {
	return e.inspectContainer(ctx, id)
}

func (e *Engine) Wait(ctx context.Context, id string) (int, error) {
	return e.waitContainer(ctx, id)
}

func (e *Engine) Attach(ctx context.Context, id string) (runtime.Stream, error) {
	return e.attachContainer(ctx, id)
}

func (e *Engine) Freeze(ctx context.Context, id string) error { return e.freeze(ctx, id) }

func (e *Engine) Thaw(ctx context.Context, id string) (Container, error) {
	return e.thawContainer(ctx, id)
}

func (e *Engine) HolderImage(ctx context.Context) (string, error) { return e.ensureHolderImage(ctx) }

func (e *Engine) ContainerLogs(ctx context.Context, id string, opts runtime.LogOptions, fn func(runtime.LogLine)) error {
	return e.containerLogs(ctx, id, opts, fn)
}

func (e *Engine) Resize(ctx context.Context, id string, height, width uint) error {
	return e.resizeContainer(ctx, id, height, width)
}
