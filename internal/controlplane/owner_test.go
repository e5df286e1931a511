package controlplane_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/testutil"
)

// A second berth server on the same engine cannot take an app the first
// runs: its deploy is refused in one line naming the first's data
// directory, nothing is recorded, and the first's containers and network
// stay as they were (they carry the first's identity).
func TestSecondServerCannotTakeAnApp(t *testing.T) {
	a := startDaemon(t, "")
	b := startDaemon(t, "")
	app := testutil.UniqueName(t, "own")
	a.destroyOnCleanup(app)
	img := testutil.TestAppImage(t)
	a.mustDeploy(appSpec(app, img, ""))

	raw, err := os.ReadFile(filepath.Join(a.dataDir, "identity"))
	require.NoError(t, err)
	id := strings.TrimSpace(string(raw))
	require.Len(t, id, 32)
	cli := testutil.DockerClient(t)
	ctx := context.Background()
	listA := func() []string {
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "berth.app="+app))})
		require.NoError(t, err)
		var out []string
		for _, c := range cs {
			assert.Equal(t, id, c.Labels["berth.owner"], "container %s", c.Names)
			if c.Labels["berth.role"] == "instance" { // not the task holders a's own daemon renews
				out = append(out, c.ID+" "+c.State)
			}
		}
		return out
	}
	before := listA()
	require.NotEmpty(t, before)
	nw, err := cli.NetworkInspect(ctx, "berth-"+app, network.InspectOptions{})
	require.NoError(t, err)
	assert.Equal(t, id, nw.Labels["berth.owner"])

	_, _, err = b.deploy(appSpec(app, img, ""))
	require.Error(t, err)
	absA, _ := filepath.Abs(a.dataDir)
	assert.Contains(t, err.Error(), "another berth server")
	assert.Contains(t, err.Error(), absA)
	assert.NotContains(t, err.Error(), "\n")
	st, err := b.client.Status(ctx, "")
	require.NoError(t, err)
	assert.Empty(t, st.Apps, "the refused deploy recorded nothing")
	_, err = b.client.Destroy(ctx, app, nil)
	require.Error(t, err, "b has no such app to destroy")

	assert.Equal(t, before, listA(), "a's containers untouched")
	code, _, err := a.get(app, "web", "/")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)

	// A restarted b still keeps off them.
	b.stop()
	b = startDaemon(t, b.dataDir)
	_, _, err = b.deploy(appSpec(app, img, ""))
	require.Error(t, err)
	assert.Equal(t, before, listA())
}
