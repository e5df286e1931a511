package docker

import (
	"context"
)

// CheckPlatform refuses, before anything is created, an image that cannot
// run on this host for platform ("" = whatever the image is): built for
// another architecture than asked, or for one the host can neither run nor
// emulate. The error wraps runtime.ErrPlatform and names the architecture
// and how to enable emulation. A missing image is runtime.ErrImageNotFound.
func (e *Engine) CheckPlatform(ctx context.Context, ref, plat string) error {
	img, err := e.cli.ImageInspect(ctx, ref)
	if err != nil {
		return imageError(ref, err)
	}
	host, err := e.hostPlatform(ctx)
	if err != nil {
		return err
	}
	var want platform
	if plat != "" {
		if want, err = parsePlatform(plat); err != nil {
			return err
		}
	}
	return checkPlatform(ref, img, want, host)
}
