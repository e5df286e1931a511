package controlplane_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/testutil"
)

// An app network removed behind berth's back (every container forced off
// it, then docker network rm) is made again by the reconciler, and the
// services serve again within seconds, through the edge and through the
// internal names, with no deploy.
func TestRemovedNetworkComesBack(t *testing.T) {
	t.Parallel()
	img := testutil.TestAppImage(t)
	app := testutil.UniqueName(t, "netloss")
	leaveNothing(t, app)
	d := startDaemon(t, "")
	d.destroyOnCleanup(app)
	d.mustDeploy(twoServices(app, img, "v0"))
	d.mustDeploy(twoServices(app, img, "v1")) // api's v0 is the stopped rollback target
	internal := fmt.Sprintf("http://api.%s.internal/", app)
	got, err := d.fetch(app, "web", internal)
	require.NoError(t, err)
	require.Equal(t, "200\nhello from v1\n", got)

	cli := testutil.DockerClient(t)
	ctx := context.Background()
	name := "berth-" + app
	// As a user would: force everything off, remove; again if something
	// joined meanwhile (berth keeps a holder ready for tasks).
	for try := 0; ; try++ {
		nw, err := cli.NetworkInspect(ctx, name, network.InspectOptions{})
		require.NoError(t, err)
		for id := range nw.Containers {
			_ = cli.NetworkDisconnect(ctx, name, id, true)
		}
		if err = cli.NetworkRemove(ctx, name); err == nil {
			break
		}
		require.Less(t, try, 5, "docker network rm: %v", err)
	}
	removed := time.Now()

	eventually(t, 20*time.Second, "web answers through the edge again", func() bool {
		code, _, err := d.get(app, "web", "/")
		return err == nil && code == http.StatusOK
	})
	t.Logf("serving again %s after the network was removed", time.Since(removed).Round(time.Millisecond))
	eventually(t, 20*time.Second, "web reaches api by its internal name again", func() bool {
		got, err := d.fetch(app, "web", internal)
		return err == nil && got == "200\nhello from v1\n"
	})
	_, err = cli.NetworkInspect(ctx, name, network.InspectOptions{})
	require.NoError(t, err, "the network is back")

	// The rollback target, stopped while its network went away, still
	// comes back.
	_, err = d.client.Rollback(ctx, app, "api", api.RollbackRequest{}, nil)
	require.NoError(t, err)
	got, err = d.fetch(app, "web", internal)
	require.NoError(t, err)
	assert.Equal(t, "200\nhello from v0\n", got)

	var said []string
	require.NoError(t, d.client.Events(ctx, client.EventsOptions{App: app}, func(m api.Message) {
		if m.Event != nil {
			said = append(said, m.Event.Message)
		}
	}))
	assert.Contains(t, strings.Join(said, "\n"), "was removed outside berth: re-created it")
}
