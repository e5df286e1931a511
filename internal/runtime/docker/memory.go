package docker

import (
	"context"
	"fmt"
)

// MemTotal returns the memory of the machine that runs the containers, as
// the engine reports it (docker info's MemTotal). The daemon refuses a
// memory limit above it: the engine would accept one, and it would limit
// nothing.
func (e *Engine) MemTotal(ctx context.Context) (int64, error) {
	info, err := e.cli.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("docker info: %w", err)
	}
	return info.MemTotal, nil
}
