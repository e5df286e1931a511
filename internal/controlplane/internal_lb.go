package controlplane

import (
	"net"

	"github.com/berth-dev/berth/internal/controlplane/fleet"
	"github.com/berth-dev/berth/internal/controlplane/traffic"
	"github.com/berth-dev/berth/internal/runtime"
)

// newInternal wires the apps' internal load balancers
// (internal/controlplane/traffic) to the daemon: the engine's networks,
// the local edge that serves their requests, and its lifetime.
func newInternal(d *Daemon) *traffic.InternalLBs {
	gw, _ := d.pods.(runtime.InternalGateway)
	return traffic.NewInternal(traffic.InternalConfig{
		Log:            d.log,
		Net:            gw,
		Network:        fleet.NetworkName,
		Edge:           d.edgeHTTP,
		EdgeOnAllAddrs: onAllAddrs80(d.cfg.HTTPAddr),
		Ctx:            d.ctx,
		BG:             &d.bg,
	})
}

// onAllAddrs80 reports whether a listener on addr is on port 80 of every
// address, and so also receives the internal names' requests.
func onAllAddrs80(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != "80" {
		return false
	}
	ip := net.ParseIP(host)
	return host == "" || ip != nil && ip.IsUnspecified()
}
