package docker

import (
	"context"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/berth-dev/berth/internal/runtime"
)

// Freeze suspends every process of a running container with the cgroup
// freezer (Docker's pause): it uses no CPU and keeps its memory, its network
// and its published port, and Thaw resumes it in milliseconds, where a start
// takes a second. Scale to zero parks idle instances this way.
func (e *Engine) Freeze(ctx context.Context, id string) error {
	start := time.Now()
	if err := e.cli.ContainerPause(ctx, id); err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("%w: %s", runtime.ErrNotFound, id)
		}
		return fmt.Errorf("freeze container %s: %w", shortID(id), err)
	}
	e.log.Debug("container frozen", "id", shortID(id), "took", time.Since(start))
	return nil
}

// Thaw resumes a frozen container.
func (e *Engine) Thaw(ctx context.Context, id string) error {
	start := time.Now()
	if err := e.cli.ContainerUnpause(ctx, id); err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("%w: %s", runtime.ErrNotFound, id)
		}
		return fmt.Errorf("thaw container %s: %w", shortID(id), err)
	}
	e.log.Debug("container thawed", "id", shortID(id), "took", time.Since(start))
	return nil
}
