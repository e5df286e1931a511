package controlplane_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane"
	"github.com/berth-dev/berth/internal/runtime/docker"
	"github.com/berth-dev/berth/internal/testutil"
)

// gatewayTaker is the real Docker engine, except that the first time the
// daemon asks for an app network's gateway, something else takes port 80
// there first, as another program on the host would.
type gatewayTaker struct {
	*docker.Pods
	mu    sync.Mutex
	taken net.Listener
	gw    string
}

func (e *gatewayTaker) NetworkAddrs(ctx context.Context, name string) (string, string, error) {
	gw, subnet, err := e.Pods.NetworkAddrs(ctx, name)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err == nil && e.gw == "" {
		e.gw = gw
		if ln, lerr := net.Listen("tcp", net.JoinHostPort(gw, "80")); lerr == nil {
			e.taken = ln
		}
	}
	return gw, subnet, err
}

// release frees the port it took and returns the gateway.
func (e *gatewayTaker) release(t testing.TB) string {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	require.NotNil(t, e.taken, "the test could not take port 80 on the gateway %q", e.gw)
	require.NoError(t, e.taken.Close())
	e.taken = nil
	return e.gw
}

func internalOf(t testing.TB, d *daemon, app, svc string) *api.InternalTraffic {
	t.Helper()
	st, err := d.client.Status(context.Background(), app)
	require.NoError(t, err)
	require.Len(t, st.Apps, 1)
	for _, s := range st.Apps[0].Services {
		if s.Name == svc {
			return s.Internal
		}
	}
	t.Fatalf("no service %s in the status of %s", svc, app)
	return nil
}

// TestInternalLoadBalancerRetriesAfterFailedListen: when the internal load
// balancer cannot listen on the app network's gateway, the daemon says so,
// and the app's next deploy tries again; once it listens, the internal
// names answer.
func TestInternalLoadBalancerRetriesAfterFailedListen(t *testing.T) {
	t.Parallel()
	img := testutil.TestAppImage(t)
	app := testutil.UniqueName(t, "ilbretry")
	leaveNothing(t, app)
	de, err := docker.New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	t.Cleanup(func() { de.Close() })
	eng := &gatewayTaker{Pods: de.Pods()}
	d := startDaemon(t, "", func(c *controlplane.Config) { c.Engine = eng })
	d.destroyOnCleanup(app)

	d.mustDeploy(twoServices(app, img, "v1"))
	in := internalOf(t, d, app, "api")
	require.NotNil(t, in)
	assert.Empty(t, in.Listener, "port 80 on the gateway was taken")
	assert.Contains(t, d.logs.String(), "internal load balancing unavailable: cannot listen on the app network's gateway")

	gw := eng.release(t)
	d.mustDeploy(twoServices(app, img, "v2"))
	in = internalOf(t, d, app, "api")
	require.NotNil(t, in)
	assert.Equal(t, net.JoinHostPort(gw, "80"), in.Listener, "the second deploy listened")
	got, err := d.fetch(app, "web", fmt.Sprintf("http://api.%s.internal/", app))
	require.NoError(t, err)
	assert.Equal(t, "200\nhello from v2\n", got, "web reaches api by its internal name")
}
