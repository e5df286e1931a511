package docker_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	dockernet "github.com/docker/docker/api/types/network"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/testutil"
)

// A stopped container whose network was removed and made again (by hand,
// then by berth's reconciler) starts on the new network of the same name,
// rather than failing as if the container itself were missing.
func TestStartAfterNetworkRecreated(t *testing.T) {
	e := newEngine(t)
	appName := app(t)
	netName := network(t, e)
	c := create(t, e, appName, runtime.ContainerSpec{Port: 8080, Network: netName, Aliases: []string{"web"}})
	start(t, e, c.ID)
	require.NoError(t, e.Stop(ctx(t), c.ID, 0))

	require.NoError(t, testutil.DockerClient(t).NetworkRemove(ctx(t), netName))
	require.NoError(t, e.EnsureNetwork(ctx(t), netName, map[string]string{"berth.test": "1"}))

	got, err := e.Start(ctx(t), c.ID)
	require.NoError(t, err)
	testutil.WaitHTTP(t, "http://"+got.HostAddr+"/healthz", 30*time.Second)
}

// The same when the network is made again on another subnet (its old one
// was taken meanwhile): the container's former address is not on it, so
// it starts with a fresh one.
func TestStartAfterNetworkRecreatedOnAnotherSubnet(t *testing.T) {
	e := newEngine(t)
	dc := testutil.DockerClient(t)
	appName := app(t)
	netName := network(t, e)
	c := create(t, e, appName, runtime.ContainerSpec{Port: 8080, Network: netName, Aliases: []string{"web"}})
	start(t, e, c.ID)
	require.NoError(t, e.Stop(ctx(t), c.ID, 0))

	old, err := dc.NetworkInspect(ctx(t), netName, dockernet.InspectOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, old.IPAM.Config)
	require.NoError(t, dc.NetworkRemove(ctx(t), netName))
	// Another network takes the old subnet before berth makes its own again.
	blocker := testutil.UniqueName(t, "blocker")
	_, err = dc.NetworkCreate(ctx(t), blocker, dockernet.CreateOptions{
		IPAM: &dockernet.IPAM{Config: []dockernet.IPAMConfig{{Subnet: old.IPAM.Config[0].Subnet}}},
	})
	if err != nil && strings.Contains(err.Error(), "overlaps") {
		// A network of a test running beside this one took the subnet
		// first: it is taken all the same, which is what this test needs.
		err = nil
	}
	require.NoError(t, err)
	t.Cleanup(func() { _ = dc.NetworkRemove(context.Background(), blocker) })
	require.NoError(t, e.EnsureNetwork(ctx(t), netName, map[string]string{"berth.test": "1"}))
	renewed, err := dc.NetworkInspect(ctx(t), netName, dockernet.InspectOptions{})
	require.NoError(t, err)
	require.NotEqual(t, old.IPAM.Config[0].Subnet, renewed.IPAM.Config[0].Subnet)

	// As the reconciler's restore does for a frozen container: it is put
	// back on the network with the address it had, which a stopped
	// container is not refused until it starts.
	_ = dc.NetworkDisconnect(ctx(t), netName, c.ID, true)
	oldIP := netip.MustParsePrefix(old.IPAM.Config[0].Subnet).Addr().Next().Next().Next()
	err = dc.NetworkConnect(ctx(t), netName, c.ID, &dockernet.EndpointSettings{
		Aliases: []string{"web"}, IPAMConfig: &dockernet.EndpointIPAMConfig{IPv4Address: oldIP.String()},
	})
	t.Logf("connect with the old address %s: %v", oldIP, err)

	got, err := e.Start(ctx(t), c.ID)
	require.NoError(t, err)
	testutil.WaitHTTP(t, "http://"+got.HostAddr+"/healthz", 30*time.Second)
}
