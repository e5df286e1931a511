package controlplane_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/store"
	"github.com/berth-dev/berth/internal/testutil"
)

// What a daemon killed in the middle of deploys leaves (a second revision
// still marked previous, a half-started instance of a deploy that never
// switched) is settled at the next start: one rollback target, the stray
// container removed, and `berth events` says so.
func TestStartSettlesCrashLeftovers(t *testing.T) {
	t.Parallel()
	img := testutil.TestAppImage(t)
	app := testutil.UniqueName(t, "settle")
	leaveNothing(t, app)
	d := startDaemon(t, "")
	d.destroyOnCleanup(app)
	for _, v := range []string{"v1", "v2", "v3"} {
		d.mustDeploy(appSpec(app, img, "    env: {VERSION: "+v+"}\n"))
	}
	d.stop()

	// The leftovers of two deploys the daemon died in.
	ctx := context.Background()
	st, err := store.Open(d.dataDir)
	require.NoError(t, err)
	r1, err := st.GetRevision(ctx, app, "web", 1)
	require.NoError(t, err)
	r1.Status = store.RevisionPrevious
	require.NoError(t, st.PutRevision(ctx, r1))
	r4 := r1
	r4.Number, r4.Status = 4, store.RevisionDeploying
	require.NoError(t, st.PutRevision(ctx, r4))
	require.NoError(t, st.Close())
	id, err := os.ReadFile(filepath.Join(d.dataDir, "identity"))
	require.NoError(t, err)
	cli := testutil.DockerClient(t)
	stray, err := cli.ContainerCreate(ctx, &container.Config{Image: img, Labels: map[string]string{
		"berth.app": app, "berth.service": "web", "berth.revision": "9", "berth.instance": "stray",
		"berth.role": "instance", "berth.owner": strings.TrimSpace(string(id)),
	}}, nil, nil, nil, testutil.UniqueName(t, "stray"))
	require.NoError(t, err)

	d = startDaemon(t, d.dataDir)
	revs, err := d.client.Revisions(ctx, app, "web")
	require.NoError(t, err)
	status := map[int]string{}
	for _, r := range revs {
		status[r.Number] = r.Status
	}
	assert.Equal(t, map[int]string{1: "retired", 2: "previous", 3: "active", 4: "failed"}, status)
	assert.Equal(t, "last deploy failed: revision 4: the daemon stopped during this deploy", d.status(app).Message)
	eventually(t, 10*time.Second, "the stray container is removed", func() bool {
		_, err := cli.ContainerInspect(ctx, stray.ID)
		return err != nil
	})
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "berth.app="+app), filters.Arg("label", "berth.revision=2"))})
	require.NoError(t, err)
	assert.NotEmpty(t, cs, "the rollback target's container is kept")

	var said []string
	require.NoError(t, d.client.Events(ctx, client.EventsOptions{App: app}, func(m api.Message) {
		if m.Event != nil && m.Event.Kind == "recover" {
			said = append(said, m.Event.Message)
		}
	}))
	require.Len(t, said, 1)
	assert.Contains(t, said[0], "revision 2 is the rollback target")
	assert.Contains(t, said[0], "revision 1 previous -> retired")
	assert.Contains(t, said[0], "removed 1 instance(s) of revision 9")
	assert.Contains(t, said[0], "revision 4 deploying -> failed")
	d.mustDeploy(appSpec(app, img, "    env: {VERSION: v4}\n"))
}
