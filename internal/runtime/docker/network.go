package docker

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"

	"github.com/berth-dev/berth/internal/runtime"
)

// EnsureNetwork creates the named bridge network if it does not exist. Two
// concurrent calls for one name both succeed and leave one network. A
// network of that name another berth server holds (owner.go) is
// ErrNetworkHeld, whether it was there before or won a race to create it.
//
// berth gives the network a /24 of its own pool rather than letting the
// engine pick one: an address can only be asked for on a network with a
// configured subnet, and a frozen container (see freeze) must come back
// with the address its open connections are bound to. (The engine's
// default pools also hand out a /16 per network and run out after about
// thirty.)
func (e *Engine) EnsureNetwork(ctx context.Context, name string, labels map[string]string) error {
	if nw, err := e.cli.NetworkInspect(ctx, name, network.InspectOptions{}); err == nil {
		return e.checkHeld(name, nw.Labels)
	} else if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("inspect network %s: %w", name, err)
	}
	// The client asks old engines to CheckDuplicate, so a racing create
	// fails with a conflict instead of making a second network of this name.
	err := e.createInPool(ctx, name, e.withOwner(labels))
	if err != nil && !cerrdefs.IsConflict(err) && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("create network %s: %w", name, err)
	}
	if err != nil {
		// Another made it meanwhile: whose is it?
		nw, err := e.cli.NetworkInspect(ctx, name, network.InspectOptions{})
		if err != nil {
			return fmt.Errorf("inspect network %s: %w", name, err)
		}
		if err := e.checkHeld(name, nw.Labels); err != nil {
			return err
		}
	}
	e.openTaskNets(name)
	e.log.Debug("network ensured", "name", name)
	return nil
}

// checkHeld is ErrNetworkHeld, naming the holder's data directory, when
// the network labelled so is another owner's.
func (e *Engine) checkHeld(name string, labels map[string]string) error {
	if e.owner.Owns(labels) {
		return nil
	}
	by := "another berth server"
	if dir := labels[runtime.LabelOwnerDir]; dir != "" {
		by += " (data directory " + dir + ")"
	}
	return fmt.Errorf("%w: network %s is held by %s on this Docker Engine", runtime.ErrNetworkHeld, name, by)
}

// subnetPool is where berth carves the /24 networks of apps.
var subnetPool = netip.MustParsePrefix("10.213.0.0/16")

// createInPool creates the network on the first /24 of subnetPool that
// overlaps no existing network, trying the next one when a concurrent
// create took it.
func (e *Engine) createInPool(ctx context.Context, name string, labels map[string]string) error {
	nets, err := e.cli.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return fmt.Errorf("list networks: %w", err)
	}
	var taken []netip.Prefix
	for _, n := range nets {
		for _, c := range n.IPAM.Config {
			if p, err := netip.ParsePrefix(c.Subnet); err == nil {
				taken = append(taken, p)
			}
		}
	}
	// Nor a network this host is on (a LAN in 10.213/16): when the engine
	// is local, its containers could not reach it.
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				taken = append(taken, p.Masked())
			}
		}
	}
	base := subnetPool.Addr().As4()
	var lastErr error
	for i := 0; i < 256; i++ {
		sub := netip.PrefixFrom(netip.AddrFrom4([4]byte{base[0], base[1], byte(i), 0}), 24)
		if slices.ContainsFunc(taken, sub.Overlaps) {
			continue
		}
		gw := netip.AddrFrom4([4]byte{base[0], base[1], byte(i), 1})
		_, err := e.cli.NetworkCreate(ctx, name, network.CreateOptions{
			Driver: "bridge", Labels: labels,
			IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: sub.String(), Gateway: gw.String()}}},
		})
		if err == nil || cerrdefs.IsConflict(err) || strings.Contains(err.Error(), "already exists") {
			return err
		}
		if !strings.Contains(err.Error(), "overlap") {
			return err
		}
		lastErr = err // taken meanwhile: try the next one
	}
	return fmt.Errorf("no free /24 left in %s: %w", subnetPool, lastErr)
}

// RemoveNetwork removes the named network; a missing one is not an error.
// One with containers still attached is (the network holders kept ready
// for tasks are removed first), and so is one another berth server holds,
// which is left alone.
func (e *Engine) RemoveNetwork(ctx context.Context, name string) error {
	nw, err := e.cli.NetworkInspect(ctx, name, network.InspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect network %s: %w", name, err)
	}
	if err := e.checkHeld(name, nw.Labels); err != nil {
		return err
	}
	e.closeTaskNets(ctx, name) // pod_tasknet.go: its ready holders go first
	if err := e.cli.NetworkRemove(ctx, name); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove network %s: %w", name, err)
	}
	return nil
}

// pickAddress chooses the address of a new container on one of berth's
// networks. The engine would give the lowest free one, which is often the
// address a frozen container had (freeze takes it off the network), so its
// thaw would find it taken and its open connections would break. berth
// goes round the /24 instead, after the last address it gave, skipping the
// connected containers' and the frozen ones': an address comes back into
// use only after all the others. "" (the engine picks) for a network made
// elsewhere or an engine that cannot tell.
func (e *Engine) pickAddress(ctx context.Context, netName string) string {
	nw, err := e.cli.NetworkInspect(ctx, netName, network.InspectOptions{})
	if err != nil || len(nw.IPAM.Config) != 1 {
		return ""
	}
	sub, err := netip.ParsePrefix(nw.IPAM.Config[0].Subnet)
	if err != nil || sub.Bits() != 24 || !subnetPool.Contains(sub.Addr()) {
		return ""
	}
	used := map[netip.Addr]bool{}
	if gw, err := netip.ParseAddr(nw.IPAM.Config[0].Gateway); err == nil {
		used[gw] = true
	}
	for _, c := range nw.Containers {
		if p, err := netip.ParsePrefix(c.IPv4Address); err == nil {
			used[p.Addr()] = true
		}
	}
	e.frozenMu.Lock()
	defer e.frozenMu.Unlock()
	for _, ip := range e.frozenIPs {
		if a, err := netip.ParseAddr(ip); err == nil {
			used[a] = true
		}
	}
	if e.nextAddr == nil {
		e.nextAddr = map[string]netip.Addr{}
	}
	first := sub.Addr().Next().Next() // .2: .1 is the gateway
	next, ok := e.nextAddr[nw.ID]
	if !ok {
		// A new daemon starts after the highest address in use.
		next = first
		for a := range used {
			if sub.Contains(a) && !a.Less(next) {
				next = a.Next()
			}
		}
	}
	last := sub.Addr().As4()
	last[3] = 254
	for range 253 {
		if !sub.Contains(next) || netip.AddrFrom4(last).Less(next) {
			next = first
		}
		a := next
		next = next.Next()
		if !used[a] {
			e.nextAddr[nw.ID] = next
			return a.String()
		}
	}
	return "" // all taken: the engine says so
}
