package docker

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/berth-dev/berth/internal/runtime"
)

// ImageID returns the ID of a local image, or runtime.ErrImageNotFound. It
// never pulls.
func (e *Engine) ImageID(ctx context.Context, ref string) (string, error) {
	img, err := e.cli.ImageInspect(ctx, ref)
	if err != nil {
		return "", imageError(ref, err)
	}
	return img.ID, nil
}

// imageError turns the engine's "no such image" into runtime.ErrImageNotFound
// with what to do about it.
func imageError(ref string, err error) error {
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("%w: %s is not on this engine: build it or load it with docker load; berth never pulls", runtime.ErrImageNotFound, ref)
	}
	return fmt.Errorf("inspect image %s: %w", ref, err)
}
