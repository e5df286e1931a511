package docker

import (
	"context"
	"fmt"
	"maps"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"

	"github.com/berth-dev/berth/internal/runtime"
)

// SetOwner makes the engine act for one berth server on an engine that
// others may share: every container and network it creates carries the
// owner's labels, List and Events see only the owner's containers (and
// unlabelled ones, made by a berth that did not label its owner yet),
// EnsureNetwork refuses a network another owner holds, and RemoveNetwork
// leaves it. Call it before the engine is used; without it the engine
// owns everything, as before.
func (e *Engine) SetOwner(o runtime.Owner) {
	e.owner = o
}

// Owner returns the owner the engine acts for.
func (e *Engine) Owner() runtime.Owner { return e.owner }

// withOwner returns labels plus the owner's, as a new map.
func (e *Engine) withOwner(labels map[string]string) map[string]string {
	out := make(map[string]string, len(labels)+2)
	maps.Copy(out, labels)
	if e.owner.ID != "" {
		maps.Copy(out, e.owner.Labels())
	}
	return out
}

// NetworkHeld is ErrNetworkHeld when a network of that name exists and
// belongs to another berth server; nil when it is the owner's or missing.
// It changes nothing, so a deploy can be refused before it records anything.
func (e *Engine) NetworkHeld(ctx context.Context, name string) error {
	nw, err := e.cli.NetworkInspect(ctx, name, network.InspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect network %s: %w", name, err)
	}
	return e.checkHeld(name, nw.Labels)
}
