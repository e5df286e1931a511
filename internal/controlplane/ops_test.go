package controlplane_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/controlplane"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/fake"
	"github.com/berth-dev/berth/internal/store"
	"github.com/berth-dev/berth/internal/testutil"
)

// runOnce runs a daemon that must fail to start, and returns its error.
func runOnce(t testing.TB, httpAddr string) error {
	t.Helper()
	dir, err := os.MkdirTemp("", "berth-cp-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eng := fake.New() // no container runs: what is checked is the start
	defer eng.Close()
	return controlplane.Run(ctx, controlplane.Config{
		DataDir:  dir,
		HTTPAddr: httpAddr,
		Engine:   eng,
		Logger:   slog.New(slog.DiscardHandler),
		Ready:    func(controlplane.Addrs) { cancel() },
	})
}

func TestCrashedInstanceIsReplaced(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "crash")
	d.mustDeploy(appSpec(app, img, "    instances: 2\n"))
	st := d.status(app)
	require.Len(t, st.Instances, 2)
	victim := st.Instances[0]

	require.NoError(t, d.fake.Kill(d.pod(victim.ContainerID).ID))

	eventually(t, 20*time.Second, "a replacement instance serving", func() bool {
		st := d.status(app)
		if st.Running != 2 {
			return false
		}
		for _, in := range st.Instances {
			if in.ID == victim.ID {
				return false
			}
		}
		return true
	})
	code, _, err := d.get(app, "web", "/")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, eventsText(t, d, app), "instance "+victim.ID+" exited with code 137")
}

func TestCrashLoopBacksOff(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "loop")
	// Healthy at first, then exits: every replacement does the same.
	d.mustDeploy(appSpec(app, img, "    env: {CRASH_AFTER: 300ms}\n"))
	eventually(t, 30*time.Second, "crash-loop state", func() bool {
		st := d.status(app)
		return st.State == "crash-loop" && strings.Contains(st.Message, "next restart in")
	})
	st := d.status(app)
	assert.Contains(t, st.Message, "exited with code 3")
	assert.GreaterOrEqual(t, strings.Count(eventsText(t, d, app), "crash"), 2)
}

func eventsText(t testing.TB, d *daemon, app string) string {
	t.Helper()
	var b strings.Builder
	err := d.client.Events(context.Background(), client.EventsOptions{App: app}, func(m api.Message) {
		if m.Event != nil {
			b.WriteString(m.Event.Kind + ": " + m.Event.Message + "\n")
		}
	})
	require.NoError(t, err)
	return b.String()
}

func TestRestartedDaemonAdoptsRunningContainers(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "adopt")
	d.mustDeploy(appSpec(app, img, "    instances: 2\n"))
	before := d.status(app)
	d.stop()

	// The containers keep running while no daemon runs.
	started := map[string]time.Time{}
	for _, in := range before.Instances {
		p := d.pod(in.ContainerID)
		assert.Equal(t, runtime.PodRunning, p.State)
		started[in.ContainerID] = p.StartedAt
	}

	// The very first request after the daemon is ready is served: routes
	// are rebuilt from the running containers before the edge listens.
	d2 := d.again()
	code, _, err := d2.get(app, "web", "/")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)

	after := d2.status(app)
	assert.Equal(t, "running", after.State)
	assert.Equal(t, before.Revision, after.Revision)
	var beforeIDs, afterIDs []string
	for _, in := range before.Instances {
		beforeIDs = append(beforeIDs, in.ContainerID)
	}
	for _, in := range after.Instances {
		afterIDs = append(afterIDs, in.ContainerID)
		p := d2.pod(in.ContainerID)
		assert.Equal(t, runtime.PodRunning, p.State)
		assert.Equal(t, started[in.ContainerID], p.StartedAt, "not restarted")
	}
	assert.ElementsMatch(t, beforeIDs, afterIDs, "the same containers, not new ones")
}

func TestPauseAndResume(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "pause")
	d.mustDeploy(appSpec(app, img, ""))
	ids := instanceIDs(d.status(app))

	st, err := d.client.Pause(context.Background(), app, "web")
	require.NoError(t, err)
	assert.Equal(t, "paused", st.State)
	code, body, err := d.get(app, "web", "/")
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, strings.ToLower(body), "paused")
	ps := d.pods(app, "berth.service=web")
	require.NotEmpty(t, ps)
	for _, p := range ps {
		assert.NotEqual(t, runtime.PodRunning, p.State, "paused service still runs %s", p.Name)
	}

	_, err = d.client.Resume(context.Background(), app, "web", nil)
	require.NoError(t, err)
	code, _, err = d.get(app, "web", "/")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "running", d.status(app).State)
	assert.Equal(t, ids, instanceIDs(d.status(app)), "resume restarts the same instances")
}

func TestSecretsReachTheContainerAndNothingElse(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "secret")
	const value = "postgres://user:s3cr3t-Value-42@db/shop"
	_, err := d.client.SecretSet(context.Background(), app, "web", map[string]string{"DATABASE_URL": value})
	require.NoError(t, err)
	d.mustDeploy(appSpec(app, img, "    secrets: [DATABASE_URL]\n"))

	code, body, err := d.get(app, "web", "/env/DATABASE_URL")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, value, strings.TrimSpace(body))

	keys, err := d.client.SecretList(context.Background(), app, "web")
	require.NoError(t, err)
	require.Len(t, keys, 1)
	assert.Equal(t, "DATABASE_URL", keys[0].Key)

	st, err := d.client.Status(context.Background(), "")
	require.NoError(t, err)
	js, err := json.Marshal(st)
	require.NoError(t, err)
	assert.NotContains(t, string(js), "s3cr3t")
	assert.NotContains(t, eventsText(t, d, app), "s3cr3t")
	assert.NotContains(t, d.logs.String(), "s3cr3t")
	raw, err := os.ReadFile(d.dataDir + "/berth.db")
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "s3cr3t")
}

func TestScale(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "scale")
	d.mustDeploy(appSpec(app, img, ""))
	_, err := d.client.Scale(context.Background(), app, map[string]int{"web": 3})
	require.NoError(t, err)
	assert.Equal(t, 3, d.status(app).Running)
	_, err = d.client.Scale(context.Background(), app, map[string]int{"web": 1})
	require.NoError(t, err)
	assert.Equal(t, 1, d.status(app).Running)
	_, err = d.client.Scale(context.Background(), app, map[string]int{"nope": 1})
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusNotFound, ae.StatusCode)
}

func TestUnknownHostIs404(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	code, body, err := d.get("nobody", "web", "/")
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, code)
	assert.NotContains(t, body, "hello")
}

// The store's instances table follows the live instances.
func TestInstancesAreRecordedInTheStore(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "rows")
	d.mustDeploy(appSpec(app, img, "    instances: 2\n"))
	st, err := store.Open(d.dataDir)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	rows := func() []string {
		is, err := st.ListInstances(context.Background(), app, "web")
		require.NoError(t, err)
		var ids []string
		for _, in := range is {
			ids = append(ids, in.ID)
		}
		return ids
	}
	want := instanceIDs(d.status(app))
	eventually(t, 5*time.Second, "two instance rows", func() bool { return assert.ObjectsAreEqual(len(want), len(rows())) })
	assert.ElementsMatch(t, want, rows())

	_, err = d.client.Scale(context.Background(), app, map[string]int{"web": 1})
	require.NoError(t, err)
	eventually(t, 5*time.Second, "one instance row", func() bool { return len(rows()) == 1 })
	assert.ElementsMatch(t, instanceIDs(d.status(app)), rows())
}
