package controlplane_test

import (
	"context"
	"errors"
	"net/http"
	"os/user"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/controlplane"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestDeployLifecycle(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "life")

	// First deploy: two instances, a URL that serves.
	res := d.mustDeploy(appSpec(app, img, "    instances: 2\n    env: {VERSION: v1}\n"))
	require.Len(t, res.Deployed, 1)
	assert.Equal(t, 1, res.Deployed[0].Revision)
	require.NotEmpty(t, res.Deployed[0].URLs)
	assert.Contains(t, res.Deployed[0].URLs[0], "web."+app+".localhost:")

	code, body, err := d.get(app, "web", "/")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "hello from v1", strings.TrimSpace(body))
	st := d.status(app)
	assert.Equal(t, "running", st.State)
	assert.Equal(t, 2, st.Running)
	firstIDs := instanceIDs(st)

	// Redeploy under steady load: no failed request, traffic moves to v2.
	l := d.startLoad(app, "web", 8)
	time.Sleep(300 * time.Millisecond)
	res = d.mustDeploy(appSpec(app, img, "    instances: 2\n    env: {VERSION: v2}\n"))
	assert.Equal(t, 2, res.Deployed[0].Revision)
	time.Sleep(300 * time.Millisecond)
	l.finish()
	assert.Zero(t, l.failed.Load(), "failed requests during deploy: %v", l.errs)
	assert.Greater(t, l.ok.Load(), int64(50))
	assert.Positive(t, l.bodies["hello from v1"])
	assert.Positive(t, l.bodies["hello from v2"])
	_, body, _ = d.get(app, "web", "/")
	assert.Equal(t, "hello from v2", strings.TrimSpace(body))
	assert.NotEqual(t, firstIDs, instanceIDs(d.status(app)))

	// Rollback: back to v1 in about a second, under load, no failures.
	l = d.startLoad(app, "web", 4)
	// (Its speed is measured by bench/deploy, not asserted here.)
	rb, err := d.client.Rollback(context.Background(), app, "web", api.RollbackRequest{}, nil)
	l.finish()
	require.NoError(t, err)
	assert.Equal(t, 1, rb.Deployed[0].Revision)
	assert.Zero(t, l.failed.Load(), "failed requests during rollback: %v", l.errs)
	_, body, _ = d.get(app, "web", "/")
	assert.Equal(t, "hello from v1", strings.TrimSpace(body))
	// The previous revision's containers were reused, not recreated.
	assert.ElementsMatch(t, firstIDs, instanceIDs(d.status(app)))

	revs, err := d.client.Revisions(context.Background(), app, "web")
	require.NoError(t, err)
	require.Len(t, revs, 2)
	assert.Equal(t, 2, revs[0].Number)
	assert.Equal(t, "previous", revs[0].Status)
	assert.Equal(t, "active", revs[1].Status)
}

func instanceIDs(st api.ServiceStatus) []string {
	var ids []string
	for _, in := range st.Instances {
		ids = append(ids, in.ID)
	}
	return ids
}

// Every way a deploy can fail leaves the previous revision serving, says
// why, and includes the failing instance's last output.
func TestFailedDeploysRollBack(t *testing.T) {
	t.Parallel()
	// A health check that never passes fails at the deploy timeout: a
	// short one, as the fake starts an instance in milliseconds.
	d := startFakeDaemon(t, "", func(c *controlplane.Config) { c.DeployTimeout = 5 * time.Second })
	img := d.image()
	app := testutil.UniqueName(t, "fail")
	d.mustDeploy(appSpec(app, img, "    env: {VERSION: good}\n"))

	tests := []struct {
		name     string
		spec     string
		wantErr  string
		wantCode string
		wantLogs string
	}{
		{
			name:     "no such image",
			spec:     appSpec(app, "berth-test/does-not-exist:1", ""),
			wantErr:  "berth-test/does-not-exist:1",
			wantCode: "image_not_found",
		},
		{
			name:     "crash on start",
			spec:     appSpec(app, img, "    env: {CRASH: \"1\"}\n"),
			wantErr:  "exited with code 1",
			wantCode: "unhealthy",
			wantLogs: "crashing on purpose",
		},
		{
			name:     "health never passes",
			spec:     appSpec(app, img, "    env: {HEALTH_FAIL: \"1\"}\n"),
			wantErr:  "never passed its health check",
			wantCode: "unhealthy",
			wantLogs: "listening on",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := d.startLoad(app, "web", 4)
			res, _, err := d.deploy(tc.spec)
			l.finish()
			var re *client.ResultError
			require.ErrorAs(t, err, &re)
			assert.False(t, res.OK)
			assert.Contains(t, re.Result.Error, tc.wantErr)
			assert.NotContains(t, re.Result.Error, "\n")
			assert.Equal(t, tc.wantCode, re.Result.Code)
			if tc.wantLogs != "" {
				assert.Contains(t, strings.Join(re.Result.LastLogs, "\n"), tc.wantLogs)
			}
			assert.Zero(t, l.failed.Load(), "the old revision stopped serving: %v", l.errs)
			_, body, _ := d.get(app, "web", "/")
			assert.Equal(t, "hello from good", strings.TrimSpace(body))
			st := d.status(app)
			assert.Equal(t, 1, st.Revision)
			assert.Equal(t, 1, st.Running)
		})
	}
	// Failed revisions are recorded as such, never reused.
	revs, err := d.client.Revisions(context.Background(), app, "web")
	require.NoError(t, err)
	// (A missing image is refused before any revision is recorded.)
	require.Len(t, revs, 3)
	for _, r := range revs[:2] {
		assert.Equal(t, "failed", r.Status, "revision %d", r.Number)
	}
}

func TestSecondConcurrentDeployIsRefused(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "conc")

	slow := appSpec(app, img, "    env: {START_DELAY: 2s}\n")
	first := make(chan error, 1)
	go func() {
		_, _, err := d.deploy(slow)
		first <- err
	}()
	// Wait until the first deploy holds the service.
	eventually(t, 10*time.Second, "first deploy in progress", func() bool {
		st, err := d.client.Status(context.Background(), app)
		return err == nil && len(st.Apps) == 1 && len(st.Apps[0].Services) == 1 && st.Apps[0].Services[0].State == "deploying"
	})
	_, _, err := d.deploy(appSpec(app, img, ""))
	var re *client.ResultError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "deploy_in_progress", re.Result.Code)
	assert.Contains(t, re.Result.Error, "already in progress")
	require.NoError(t, <-first)
}

func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "bad")
	d.mustDeploy(appSpec(app, img, ""))

	tests := []struct {
		name    string
		yaml    string
		wantErr string
	}{
		{"malformed yaml", "app: " + app + "\nservices:\n  web: [\n", "berth.yaml:"},
		{"unknown key", appSpec(app, img, "    colour: blue\n"), `berth.yaml:7: services.web: unknown key "colour"`},
		{"wrong type", appSpec(app, img, "    instances: two\n"), "services.web.instances"},
		{"negative memory", appSpec(app, img, "    memory: -5MiB\n"), "services.web.memory"},
		{"port 0", strings.Replace(appSpec(app, img, ""), "port: 8080", "port: 0", 1), "services.web.port"},
		{"bad app name", appSpec("Bad_App", img, ""), "app"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := d.deploy(tc.yaml)
			var re *client.ResultError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, "invalid", re.Result.Code)
			assert.Contains(t, re.Result.Error, tc.wantErr)
			assert.NotContains(t, re.Result.Error, "\n")
			revs, err := d.client.Revisions(context.Background(), app, "web")
			require.NoError(t, err)
			assert.Len(t, revs, 1, "a rejected spec must not create a revision")
		})
	}

	t.Run("unknown service on the command line", func(t *testing.T) {
		_, _, err := d.deploy(appSpec(app, img, ""), "nope")
		var re *client.ResultError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, "not_found", re.Result.Code)
		assert.Contains(t, re.Result.Error, `unknown service "nope"`)
		_, err = d.client.Revisions(context.Background(), app, "nope")
		var ae *client.APIError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, http.StatusNotFound, ae.StatusCode)
	})
	t.Run("invalid secret name", func(t *testing.T) {
		_, err := d.client.SecretSet(context.Background(), app, "web", map[string]string{"1BAD-NAME": "x"})
		var ae *client.APIError
		require.ErrorAs(t, err, &ae)
		assert.Contains(t, ae.Body.Message, "1BAD-NAME")
		keys, err := d.client.SecretList(context.Background(), app, "web")
		require.NoError(t, err)
		assert.Empty(t, keys)
	})
	t.Run("rollback with nothing to roll back to", func(t *testing.T) {
		_, err := d.client.Rollback(context.Background(), app, "web", api.RollbackRequest{}, nil)
		var re *client.ResultError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, "no_revision", re.Result.Code)
	})
	assert.Equal(t, "running", d.status(app).State)
}

func TestDaemonNotRunning(t *testing.T) {
	t.Parallel()
	c, err := client.New("unix:///nonexistent/berth.sock", "", "")
	require.NoError(t, err)
	_, err = c.Status(context.Background(), "")
	require.ErrorIs(t, err, client.ErrDaemonUnreachable)
	assert.Contains(t, err.Error(), "berth server")
}

func TestTakenPortIsReported(t *testing.T) {
	t.Parallel()
	busy := startFakeDaemon(t, "")
	// A second daemon asked to use the first one's edge port.
	dir := t.TempDir()
	_ = dir
	err := runOnce(t, busy.addrs.HTTP)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--http "+busy.addrs.HTTP)
	assert.Contains(t, err.Error(), "address already in use")
}

var _ = errors.New

// The previous revision of an HTTP service is frozen for the warm window
// (a rollback thaws it), then stopped; either way it stays the rollback
// target. (The real freeze, on Docker: TestDockerSmoke.)
func TestRollbackTargetIsFrozenThenStopped(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "", func(c *controlplane.Config) { c.RollbackWarm = 3 * time.Second })
	img := d.image()
	app := testutil.UniqueName(t, "warm")
	d.mustDeploy(appSpec(app, img, "    env: {VERSION: v1}\n"))
	first := d.status(app).Instances[0].ContainerID
	d.mustDeploy(appSpec(app, img, "    env: {VERSION: v2}\n"))

	state := func(id string) runtime.PodState { return d.pod(id).State }
	assert.Equal(t, runtime.PodSuspended, state(first), "frozen during the warm window")
	eventually(t, 20*time.Second, "stopped after the warm window", func() bool { return state(first) == runtime.PodExited })

	_, err := d.client.Rollback(context.Background(), app, "web", api.RollbackRequest{}, nil)
	require.NoError(t, err)
	_, body, _ := d.get(app, "web", "/")
	assert.Equal(t, "hello from v1", strings.TrimSpace(body))
	assert.Equal(t, runtime.PodRunning, state(first))

	// In an app with several services the previous revision is stopped at
	// once: a freeze would leave the others' kept-alive connections to it
	// hanging.
	shop := testutil.UniqueName(t, "warm2")
	d.mustDeploy(twoServices(shop, img, "v1"))
	st, err := d.client.Status(context.Background(), shop)
	require.NoError(t, err)
	var oldAPI string
	for _, svc := range st.Apps[0].Services {
		if svc.Name == "api" && len(svc.Instances) > 0 {
			oldAPI = svc.Instances[0].ContainerID
		}
	}
	require.NotEmpty(t, oldAPI)
	_, _, err = d.deploy(twoServices(shop, img, "v2"), "api")
	require.NoError(t, err)
	eventually(t, 40*time.Second, "the previous api stopped, not frozen", func() bool {
		s := state(oldAPI)
		require.NotEqual(t, runtime.PodSuspended, s)
		return s == runtime.PodExited
	})
}

// A revision records who deployed it as the daemon knows the caller (the
// Unix socket peer's user), never as the client says: a DeployRequest's
// own By is replaced.
func TestRevisionRecordsWhoDeployed(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	app := testutil.UniqueName(t, "who")
	me, err := user.Current()
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := d.client.Deploy(ctx, api.DeployRequest{File: "berth.yaml", BaseDir: t.TempDir(), YAML: appSpec(app, d.image(), ""), By: "mallory"}, nil)
	require.NoError(t, err)
	require.True(t, res.OK, res.Error)
	revs, err := d.client.Revisions(ctx, app, "web")
	require.NoError(t, err)
	require.Len(t, revs, 1)
	assert.Equal(t, me.Username, revs[0].By)
}
