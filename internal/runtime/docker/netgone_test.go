package docker_test

import (
	"testing"
	"time"

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
