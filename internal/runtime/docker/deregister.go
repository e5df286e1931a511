package docker

import (
	"context"
	"fmt"
	"slices"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
)

// Deregister takes a running container off its names on its network (the
// aliases it was created with: a service's name) while it keeps running
// there with its address, and reports whether it was found under them.
// Callers stop finding it by name at once; the connections open to it,
// and a caller that looked the name up just before, still reach it. Stop
// it a moment later, not at once:
//
// The engine takes a container's name out of the network's DNS only after
// its process is gone and its network interface with it. Until then, for
// a tenth of a second and more on a busy host, the name still gives its
// address, and a connection to it is never answered: the SYN goes nowhere,
// so the caller hangs until its own timeout rather than failing over.
//
// The engine cannot change the names of a connected container, so
// Deregister disconnects it and connects it again, with its address and
// without the names. For the tens of milliseconds in between, packets to
// it are lost and TCP sends them again: an open connection carries on, a
// connection attempt is retried after a second (the SYN's initial
// retransmission timeout). Its published port goes with the disconnect
// and comes back on a new host port, so let the requests in flight through
// it finish first.
//
// Stop puts the names back in its network settings, so its next start
// (a rollback) serves under them; Start does so too for one an earlier
// daemon deregistered.
//
// A container that joined another's namespace (a pod's main container,
// whose ID is the pod's: runtime.Deregisterer) is deregistered through
// that one, which holds the names.
func (e *Engine) Deregister(ctx context.Context, id string) (bool, error) {
	start := time.Now()
	info, err := e.cli.ContainerInspect(ctx, id)
	if err != nil {
		return false, notFoundOr(id, "deregister", err)
	}
	if info.HostConfig != nil && info.HostConfig.NetworkMode.IsContainer() {
		return e.Deregister(ctx, info.HostConfig.NetworkMode.ConnectedContainer())
	}
	netName := ownNetwork(info)
	if netName == "" || info.State == nil || !info.State.Running || info.State.Paused {
		return false, nil // no name of its resolves to it
	}
	ep := info.NetworkSettings.Networks[netName]
	names := aliasesOf(info.Config.Labels)
	if ep == nil || !slices.ContainsFunc(names, func(n string) bool { return slices.Contains(ep.Aliases, n) }) {
		return false, nil
	}
	e.markUnlisted(info.ID)
	if err := e.reconnect(ctx, info, netName, nil); err != nil {
		return true, fmt.Errorf("deregister container %s: %w", shortID(id), err)
	}
	e.log.Debug("container deregistered", "id", shortID(id), "names", names, "took", time.Since(start))
	return true, nil
}

// reconnect disconnects a container from its network and connects it
// again under the given names, with the address it has (running: and its
// MAC address, so its neighbours' ARP caches stay right) or is configured
// with (stopped). The address is held meanwhile, so a container created in
// between does not get it (see pickAddress).
func (e *Engine) reconnect(ctx context.Context, info container.InspectResponse, netName string, names []string) error {
	ip, mac := "", ""
	if ep := info.NetworkSettings.Networks[netName]; ep != nil {
		ip, mac = ep.IPAddress, ep.MacAddress
		if ip == "" && ep.IPAMConfig != nil {
			ip, mac = ep.IPAMConfig.IPv4Address, ""
		}
	}
	if ip != "" {
		e.holdIP(info.ID, ip)
	}
	if err := e.cli.NetworkDisconnect(ctx, netName, info.ID, false); err != nil && !cerrdefs.IsNotFound(err) {
		e.frozenIP(info.ID)
		return fmt.Errorf("disconnect from network %s: %w", netName, err)
	}
	return e.connectAs(ctx, info.ID, netName, e.frozenIP(info.ID), mac, names)
}

// relist puts a container that Deregister took off its names, and that has
// stopped since, back under them in its network settings, so that its next
// start serves under them; for a stopped container that is no more than a
// settings change. One that runs on or left its network meanwhile (freeze)
// is left to Start.
func (e *Engine) relist(ctx context.Context, id string) {
	e.frozenMu.Lock()
	unlisted := e.unlisted[id]
	e.frozenMu.Unlock()
	if !unlisted {
		return
	}
	info, err := e.cli.ContainerInspect(ctx, id)
	if err != nil {
		return
	}
	netName := ownNetwork(info)
	ep := info.NetworkSettings.Networks[netName]
	if netName == "" || ep == nil {
		e.forgetUnlisted(info.ID)
		return
	}
	if info.State != nil && info.State.Running {
		return
	}
	if err := e.reconnect(ctx, info, netName, aliasesOf(info.Config.Labels)); err != nil {
		e.log.Warn("put a stopped container back under its names; its next start does", "id", shortID(id), "err", err)
	}
}

// listedUnder reports whether a network endpoint carries all the names.
func listedUnder(ep *network.EndpointSettings, names []string) bool {
	for _, n := range names {
		if !slices.Contains(ep.Aliases, n) {
			return false
		}
	}
	return true
}

func (e *Engine) holdIP(id, ip string) {
	e.frozenMu.Lock()
	defer e.frozenMu.Unlock()
	if e.frozenIPs == nil {
		e.frozenIPs = map[string]string{}
	}
	e.frozenIPs[id] = ip
}

func (e *Engine) markUnlisted(id string) {
	e.frozenMu.Lock()
	defer e.frozenMu.Unlock()
	if e.unlisted == nil {
		e.unlisted = map[string]bool{}
	}
	e.unlisted[id] = true
}

func (e *Engine) forgetUnlisted(id string) {
	e.frozenMu.Lock()
	defer e.frozenMu.Unlock()
	delete(e.unlisted, id)
}
