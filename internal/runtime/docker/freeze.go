package docker

import (
	"context"
	"fmt"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"

	"github.com/berth-dev/berth/internal/runtime"
)

// labelAliases records, at create, the DNS names a container answers to on
// its network, so a container taken off the network (see Freeze) comes back
// under the same names, also after a daemon restart.
const labelAliases = "berth.network.aliases"

// Freeze suspends every process of a running container with the cgroup
// freezer (Docker's pause): it uses no CPU and keeps its memory, and Thaw
// resumes it in milliseconds, where a start takes a second. Scale to zero
// and the warm rollback target park instances this way.
//
// A frozen container is first taken off its network: otherwise its name
// would still resolve on the app network and a service calling it by name
// would hang on a process that never answers. Its published port goes with
// it; Thaw reconnects it and returns the new address.
func (e *Engine) Freeze(ctx context.Context, id string) error {
	start := time.Now()
	info, err := e.cli.ContainerInspect(ctx, id)
	if err != nil {
		return notFoundOr(id, "freeze", err)
	}
	netName := ownNetwork(info)
	if netName != "" {
		if _, on := info.NetworkSettings.Networks[netName]; on {
			if err := e.cli.NetworkDisconnect(ctx, netName, id, true); err != nil && !cerrdefs.IsNotFound(err) {
				return fmt.Errorf("freeze container %s: take it off network %s: %w", shortID(id), netName, err)
			}
		}
	}
	if err := e.cli.ContainerPause(ctx, id); err != nil {
		if netName != "" {
			_ = e.connect(context.WithoutCancel(ctx), id, netName, info.Config.Labels)
		}
		return notFoundOr(id, "freeze", err)
	}
	e.log.Debug("container frozen", "id", shortID(id), "took", time.Since(start))
	return nil
}

// Thaw resumes a frozen container, puts it back on its network under its
// names and returns its state, with the new HostAddr of its published port.
func (e *Engine) Thaw(ctx context.Context, id string) (runtime.Container, error) {
	start := time.Now()
	if err := e.cli.ContainerUnpause(ctx, id); err != nil {
		return runtime.Container{}, notFoundOr(id, "thaw", err)
	}
	c, err := e.reconnected(ctx, id)
	if err != nil {
		return runtime.Container{}, err
	}
	e.log.Debug("container thawed", "id", shortID(id), "addr", c.HostAddr, "took", time.Since(start))
	return c, nil
}

// reconnected puts a container that Freeze took off its network back on
// it (a no-op for one that is on it) and returns its fresh state.
func (e *Engine) reconnected(ctx context.Context, id string) (runtime.Container, error) {
	info, err := e.cli.ContainerInspect(ctx, id)
	if err != nil {
		return runtime.Container{}, notFoundOr(id, "inspect", err)
	}
	if changed, err := e.ensureConnected(ctx, info); err != nil || !changed {
		return toContainer(info), err
	}
	return e.Inspect(ctx, id)
}

// ensureConnected puts a container that Freeze took off its network back
// on it, and says whether it had to.
func (e *Engine) ensureConnected(ctx context.Context, info container.InspectResponse) (bool, error) {
	netName := ownNetwork(info)
	if netName == "" {
		return false, nil
	}
	if _, on := info.NetworkSettings.Networks[netName]; on {
		return false, nil
	}
	return true, e.connect(ctx, info.ID, netName, info.Config.Labels)
}

func (e *Engine) connect(ctx context.Context, id, netName string, labels map[string]string) error {
	var aliases []string
	if a := labels[labelAliases]; a != "" {
		aliases = strings.Split(a, ",")
	}
	err := e.cli.NetworkConnect(ctx, netName, id, &network.EndpointSettings{Aliases: aliases})
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("connect container %s to network %s: %w", shortID(id), netName, err)
	}
	return nil
}

// ownNetwork is the user-defined network a container was created on, ""
// for one that shares another's namespace or uses a built-in network.
func ownNetwork(info container.InspectResponse) string {
	if info.HostConfig == nil || info.NetworkSettings == nil || info.Config == nil {
		return ""
	}
	return info.HostConfig.NetworkMode.UserDefined()
}

func notFoundOr(id, verb string, err error) error {
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("%w: %s", runtime.ErrNotFound, id)
	}
	return fmt.Errorf("%s container %s: %w", verb, shortID(id), err)
}
