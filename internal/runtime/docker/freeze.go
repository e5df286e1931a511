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
// its network, so a container taken off the network (see freeze) comes back
// under the same names, also after a daemon restart.
const labelAliases = "berth.network.aliases"

// freeze suspends every process of a running container with the cgroup
// freezer (Docker's pause): it uses no CPU and keeps its memory, and thaw
// resumes it in milliseconds, where a start takes a second. Scale to zero
// and the warm rollback target park instances this way.
//
// A frozen container is first taken off its network: otherwise its name
// would still resolve on the app network and a service calling it by name
// would hang on a process that never answers. Its published port goes with
// it; thaw puts it back with the same address on the network (so the
// connections it holds, to a database say, still work) and returns its new
// published address.
func (e *Engine) freeze(ctx context.Context, id string) error {
	start := time.Now()
	info, err := e.cli.ContainerInspect(ctx, id)
	if err != nil {
		return notFoundOr(id, "freeze", err)
	}
	netName := ownNetwork(info)
	if ep := info.NetworkSettings.Networks[netName]; netName != "" && ep != nil {
		if err := e.cli.NetworkDisconnect(ctx, netName, info.ID, true); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("freeze container %s: take it off network %s: %w", shortID(id), netName, err)
		}
		e.holdIP(info.ID, ep.IPAddress)
	}
	if err := e.cli.ContainerPause(ctx, id); err != nil {
		if netName != "" {
			_ = e.connect(context.WithoutCancel(ctx), info.ID, netName, info.Config.Labels)
		}
		return notFoundOr(id, "freeze", err)
	}
	e.log.Debug("container frozen", "id", shortID(id), "took", time.Since(start))
	return nil
}

// thawContainer resumes a frozen container, put back on its network under its names
// and with its address first, and returns its state, with the new HostAddr
// of its published port.
func (e *Engine) thawContainer(ctx context.Context, id string) (Container, error) {
	info, err := e.cli.ContainerInspect(ctx, id)
	if err != nil {
		return Container{}, notFoundOr(id, "thaw", err)
	}
	return e.thaw(ctx, info)
}

func (e *Engine) thaw(ctx context.Context, info container.InspectResponse) (Container, error) {
	start := time.Now()
	id := info.ID
	if err := e.ensureConnected(ctx, info); err != nil {
		return Container{}, err
	}
	if err := e.cli.ContainerUnpause(ctx, id); err != nil {
		return Container{}, notFoundOr(id, "thaw", err)
	}
	c, err := e.inspectContainer(ctx, id)
	if err != nil {
		return Container{}, err
	}
	e.log.Debug("container thawed", "id", shortID(id), "addr", c.HostAddr, "took", time.Since(start))
	return c, nil
}

// ensureConnected puts a container that freeze took off its network back
// on it, and one that Deregister took off its names (and whose Stop could
// not put them back: an earlier daemon's) back under them.
func (e *Engine) ensureConnected(ctx context.Context, info container.InspectResponse) error {
	netName := ownNetwork(info)
	if netName == "" {
		return nil
	}
	ep, on := info.NetworkSettings.Networks[netName]
	if !on {
		return e.connect(ctx, info.ID, netName, info.Config.Labels)
	}
	if names := aliasesOf(info.Config.Labels); ep != nil && !listedUnder(ep, names) {
		return e.reconnect(ctx, info, netName, names)
	}
	return nil
}

// frozenIP returns, and forgets, the address a container had on its
// network when it was frozen ("" for none).
func (e *Engine) frozenIP(id string) string {
	e.frozenMu.Lock()
	defer e.frozenMu.Unlock()
	ip := e.frozenIPs[id]
	delete(e.frozenIPs, id)
	return ip
}

// connect puts a container on its network under its names, with the
// address it had when frozen if it can have it (a container that runs on
// needs it; another may have taken it meanwhile).
func (e *Engine) connect(ctx context.Context, id, netName string, labels map[string]string) error {
	return e.connectAs(ctx, id, netName, e.frozenIP(id), "", aliasesOf(labels))
}

// connectAs puts a container on a network under the given names (none: it
// is found by no name of berth's), with address ip if it can have it, and
// MAC address mac if set (engines before API 1.44 derive it from ip).
func (e *Engine) connectAs(ctx context.Context, id, netName, ip, mac string, aliases []string) error {
	ep := &network.EndpointSettings{Aliases: aliases}
	if ip != "" {
		ep.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ip}
		ep.MacAddress = mac
	}
	err := e.cli.NetworkConnect(ctx, netName, id, ep)
	if err != nil && ip != "" && !strings.Contains(err.Error(), "already exists") {
		e.log.Warn("container comes back on its network with a new address; connections it held are lost",
			"id", shortID(id), "network", netName, "address", ip, "err", err)
		err = e.cli.NetworkConnect(ctx, netName, id, &network.EndpointSettings{Aliases: aliases})
	}
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("connect container %s to network %s: %w", shortID(id), netName, err)
	}
	if len(aliases) > 0 {
		e.forgetUnlisted(id)
	}
	return nil
}

// aliasesOf are the names a container answers to on its network, as
// recorded at create.
func aliasesOf(labels map[string]string) []string {
	if a := labels[labelAliases]; a != "" {
		return strings.Split(a, ",")
	}
	if svc := labels[runtime.LabelService]; svc != "" && labels[runtime.LabelRole] == string(runtime.RoleInstance) {
		return []string{svc} // created before the label existed
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
