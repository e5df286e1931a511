package controlplane_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/testutil"
)

// TestDockerSmoke takes one app on the real Docker Engine once through
// each feature whose own tests run on the fake engine: a deploy with a
// release and a secret, a redeploy and a rollback under load (the previous
// revision frozen by the cgroup freezer, then thawed), scale, a crashed
// instance replaced, pause and resume, a canary, one-off tasks, the logs,
// and a restarted daemon adopting the running containers. The features
// that need a real container have their own tests on Docker.
func TestDockerSmoke(t *testing.T) {
	t.Parallel()
	img := testutil.TestAppImage(t)
	app := testutil.UniqueName(t, "smoke")
	leaveNothing(t, app)
	d := startDaemon(t, "")
	d.destroyOnCleanup(app)
	ctx := context.Background()
	state := func(id string) string { return inspect(t, id).State.Status }
	body := func(hdr ...string) string {
		t.Helper()
		code, body, err := d.hostGet("web."+app+".localhost", "/", hdr...)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code, body)
		return body
	}
	spec := func(version string) string {
		return appSpec(app, img, "    env: {VERSION: "+version+"}\n    secrets: [TOKEN]\n    release: [\"/testapp\", \"migrate\"]\n")
	}
	_, err := d.client.SecretSet(ctx, app, "web", map[string]string{"TOKEN": "tok-1"})
	require.NoError(t, err)

	t.Run("deploy with a release and a secret", func(t *testing.T) {
		res, msgs, err := d.deploy(spec("v1"))
		require.NoError(t, err, "%v", msgs)
		require.True(t, res.OK)
		assert.Equal(t, []string{"migrating...", "migrated"}, releaseLogs(msgs))
		assert.Equal(t, "hello from v1", body())
		_, token, err := d.get(app, "web", "/env/TOKEN")
		require.NoError(t, err)
		assert.Equal(t, "tok-1", token)
	})

	t.Run("redeploy and rollback under load; the previous revision frozen, then thawed", func(t *testing.T) {
		first := instanceIDs(d.status(app))
		firstContainer := d.status(app).Instances[0].ContainerID
		l := d.startLoad(app, "web", 4)
		time.Sleep(200 * time.Millisecond)
		d.mustDeploy(spec("v2"))
		time.Sleep(200 * time.Millisecond)
		l.finish()
		assert.Zero(t, l.failed.Load(), "failed requests during the deploy: %v", l.errs)
		assert.Positive(t, l.bodies["hello from v2"])
		assert.Equal(t, "hello from v2", body())
		assert.Equal(t, "paused", state(firstContainer), "the rollback target is frozen")

		l = d.startLoad(app, "web", 4)
		d.mustDeployRollback(app, "web")
		l.finish()
		assert.Zero(t, l.failed.Load(), "failed requests during the rollback: %v", l.errs)
		assert.Equal(t, "hello from v1", body())
		assert.Equal(t, "running", state(firstContainer), "thawed")
		assert.Equal(t, first, instanceIDs(d.status(app)), "the same instance, not a new one")
	})

	t.Run("scale", func(t *testing.T) {
		_, err := d.client.Scale(ctx, app, map[string]int{"web": 2})
		require.NoError(t, err)
		assert.Equal(t, 2, d.status(app).Running)
		_, err = d.client.Scale(ctx, app, map[string]int{"web": 1})
		require.NoError(t, err)
		assert.Equal(t, 1, d.status(app).Running)
	})

	t.Run("a crashed instance is replaced", func(t *testing.T) {
		victim := d.status(app).Instances[0]
		require.NoError(t, testutil.DockerClient(t).ContainerKill(ctx, victim.ContainerID, "KILL"))
		eventually(t, 20*time.Second, "a replacement instance serving", func() bool {
			st := d.status(app)
			return st.Running == 1 && !slices.Contains(instanceIDs(st), victim.ID)
		})
		assert.Equal(t, "hello from v1", body())
		assert.Contains(t, eventsText(t, d, app), "instance "+victim.ID+" exited with code 137")
	})

	t.Run("pause and resume", func(t *testing.T) {
		ids := instanceIDs(d.status(app))
		_, err := d.client.Pause(ctx, app, "web")
		require.NoError(t, err)
		code, _, err := d.get(app, "web", "/")
		require.NoError(t, err)
		assert.Equal(t, http.StatusServiceUnavailable, code)
		for _, c := range containersOf(t, app, "berth.service=web") {
			assert.NotEqual(t, "running", c.State, "paused service still runs %s", c.Names)
		}
		_, err = d.client.Resume(ctx, app, "web", nil)
		require.NoError(t, err)
		assert.Equal(t, "hello from v1", body())
		assert.Equal(t, ids, instanceIDs(d.status(app)), "resume restarts the same instances")
	})

	t.Run("canary, then promoted", func(t *testing.T) {
		res, err := d.client.Deploy(ctx, api.DeployRequest{File: "berth.yaml", BaseDir: d.dataDir, YAML: spec("v3"), Canary: 30}, nil)
		require.NoError(t, err)
		require.True(t, res.OK)
		assert.Equal(t, "hello from v3", body("X-Berth-Origin", "canary"))
		assert.Equal(t, "hello from v1", body("X-Berth-Origin", "stable"))
		res, err = d.client.Deploy(ctx, api.DeployRequest{File: "berth.yaml", BaseDir: d.dataDir, YAML: spec("v3"), Promote: true}, nil)
		require.NoError(t, err)
		require.True(t, res.OK)
		for range 10 {
			assert.Equal(t, "hello from v3", body())
		}
	})

	t.Run("tasks", func(t *testing.T) {
		r := d.mustRunTask(app, cmd("/testapp", "exit", "3"))
		assert.Equal(t, api.TaskFailed, r.task.Status)
		assert.Equal(t, 3, r.task.ExitCode)
		r = d.mustRunTask(app, cmd("/testapp", "env", "TOKEN"))
		assert.Equal(t, []string{"tok-1"}, r.stdout, "the service's secret")
		r = d.mustRunTask(app, cmd("/testapp", "lines", "3"))
		assert.Equal(t, []string{"line 1", "line 2", "line 3"}, r.stdout)
		assert.Equal(t, r.stdout, d.taskLogs(r.task.ID, false))
		d.noContainers(r.task.ID)

		// Detached, then its logs followed. (On Docker only for now: the
		// daemon may answer a follow with no line when the task ends
		// between its two reads of it, which a fake task, done in
		// microseconds, meets about once in 30 runs.)
		task, err := d.client.RunTaskDetached(ctx, app, cmd("/testapp", "lines", "3"))
		require.NoError(t, err)
		assert.Equal(t, []string{"line 1", "line 2", "line 3"}, d.taskLogs(task.ID, true))
		done := d.waitTask(task.ID, 10*time.Second)
		assert.Equal(t, api.TaskSucceeded, done.Status)
		assert.Equal(t, []string{"line 1", "line 2", "line 3"}, d.taskLogs(task.ID, false))
	})

	t.Run("logs", func(t *testing.T) {
		lines, err := d.readLogs(app, "web", client.LogsOptions{})
		require.NoError(t, err)
		var text []string
		for _, m := range lines {
			text = append(text, m.Text)
		}
		assert.Contains(t, strings.Join(text, "\n"), "listening on :8080")
	})

	// A restarted daemon adopts the running containers and serves the very
	// first request. (At the top level: the new daemon must outlive the
	// subtests, for the cleanup's destroy.)
	before := d.status(app)
	d.stop()
	d = startDaemon(t, d.dataDir)
	d.destroyOnCleanup(app)
	assert.Equal(t, "hello from v3", body())
	after := d.status(app)
	assert.Equal(t, before.Revision, after.Revision)
	assert.Equal(t, instanceIDs(before), instanceIDs(after), "the same instances, adopted")
	for _, in := range after.Instances {
		assert.Equal(t, "running", state(in.ContainerID))
	}
}
