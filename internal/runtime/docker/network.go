package docker

import (
	"context"
	"fmt"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"
)

// EnsureNetwork creates the named bridge network if it does not exist. Two
// concurrent calls for one name both succeed and leave one network.
func (e *Engine) EnsureNetwork(ctx context.Context, name string, labels map[string]string) error {
	if _, err := e.cli.NetworkInspect(ctx, name, network.InspectOptions{}); err == nil {
		return nil
	} else if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("inspect network %s: %w", name, err)
	}
	// The client asks old engines to CheckDuplicate, so a racing create
	// fails with a conflict instead of making a second network of this name.
	_, err := e.cli.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Labels: labels})
	if err != nil && !cerrdefs.IsConflict(err) && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("create network %s: %w", name, err)
	}
	e.log.Debug("network ensured", "name", name)
	return nil
}

// RemoveNetwork removes the named network; a missing one is not an error.
// One with containers still attached is.
func (e *Engine) RemoveNetwork(ctx context.Context, name string) error {
	if err := e.cli.NetworkRemove(ctx, name); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove network %s: %w", name, err)
	}
	return nil
}
