package controlplane_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/store"
	"github.com/berth-dev/berth/internal/testutil"
)

// What a daemon killed in the middle of deploys leaves (a second revision
// still marked previous, a half-started instance of a deploy that never
// switched) is settled at the next start: one rollback target, the stray
// container removed, and `berth events` says so.
func TestStartSettlesCrashLeftovers(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "settle")
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
	// A pod of the same owner (the engine's view carries the daemon's
	// identity), of a revision the state never recorded.
	stray, err := d.fake.CreatePod(ctx, runtime.PodSpec{
		Name: testutil.UniqueName(t, "stray"),
		Labels: map[string]string{
			runtime.LabelApp: app, runtime.LabelService: "web", runtime.LabelRevision: "9",
			runtime.LabelInstance: "stray", runtime.LabelRole: string(runtime.RoleInstance),
		},
		Main: runtime.ContainerSpec{Image: img},
	})
	require.NoError(t, err)

	d = d.again()
	revs, err := d.client.Revisions(ctx, app, "web")
	require.NoError(t, err)
	status := map[int]string{}
	for _, r := range revs {
		status[r.Number] = r.Status
	}
	assert.Equal(t, map[int]string{1: "retired", 2: "previous", 3: "active", 4: "failed"}, status)
	assert.Equal(t, "last deploy failed: revision 4: the daemon stopped during this deploy", d.status(app).Message)
	eventually(t, 10*time.Second, "the stray container is removed", func() bool {
		_, err := d.fake.InspectPod(ctx, stray.ID)
		return errors.Is(err, runtime.ErrNotFound)
	})
	assert.NotEmpty(t, d.pods(app, "berth.revision=2"), "the rollback target's container is kept")

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
