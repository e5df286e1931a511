package controlplane_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/testutil"
)

// sidecarSpec is a web service with a helper sidecar (the test app on port
// 9090, env ROLE=role) in its network namespace; extra is appended to the
// service, and helperExtra to the sidecar.
func sidecarSpec(app, image, extra, role, helperExtra string) string {
	return fmt.Sprintf(`app: %s
services:
  web:
    image: %s
    port: 8080
    health: {path: /healthz}
%s    sidecars:
      helper:
        image: %s
        env: {PORT: "9090", ROLE: %s}
%s`, app, image, extra, image, role, helperExtra)
}

// fetch asks svc's instance to GET u from inside its container, through
// the edge, and returns what the instance got: "STATUS\nBODY".
func (d *daemon) fetch(app, svc, u string) (string, error) {
	code, body, err := d.get(app, svc, "/fetch?url="+url.QueryEscape(u))
	if err != nil {
		return "", err
	}
	if code != http.StatusOK {
		return "", fmt.Errorf("fetch %s from %s: %d %s", u, svc, code, strings.TrimSpace(body))
	}
	return body, nil
}

// logs reads a service's log lines (not following).
func (d *daemon) readLogs(app, svc string, opts client.LogsOptions) ([]api.Message, error) {
	var out []api.Message
	err := d.client.Logs(context.Background(), app, svc, opts, func(m api.Message) {
		if m.Kind == api.KindLog {
			out = append(out, m)
		}
	})
	return out, err
}

func inspect(t testing.TB, id string) container.InspectResponse {
	t.Helper()
	info, err := testutil.DockerClient(t).ContainerInspect(context.Background(), id)
	require.NoError(t, err)
	return info
}

// containersOf lists the containers of an app carrying the given labels.
func containersOf(t testing.TB, app string, labels ...string) []container.Summary {
	t.Helper()
	f := []string{"label=berth.app=" + app}
	for _, l := range labels {
		f = append(f, "label="+l)
	}
	args := dockerFilters(f...)
	cs, err := testutil.DockerClient(t).ContainerList(context.Background(), container.ListOptions{All: true, Filters: args})
	require.NoError(t, err)
	// The network holder kept for the app's next task is no service's.
	return slices.DeleteFunc(cs, func(c container.Summary) bool { return c.Labels[runtime.LabelRole] == string(runtime.RoleTaskNet) })
}

func TestSidecarsShareLocalhost(t *testing.T) {
	t.Parallel()
	img := testutil.TestAppImage(t)
	app := testutil.UniqueName(t, "sidecar")
	leaveNothing(t, app)
	d := startDaemon(t, "")
	d.destroyOnCleanup(app)
	d.mustDeploy(sidecarSpec(app, img, "    instances: 2\n    pids: 128\n", "helper", "        cpu: 0.25\n        memory: 64MiB\n        pids: 64\n"))

	// The main container reaches its sidecar on localhost. (A sidecar has
	// no health check: started is ready to the deploy, and under load its
	// server may listen a moment later.)
	var got string
	eventually(t, 10*time.Second, "web reaches its sidecar on localhost", func() bool {
		var err error
		got, err = d.fetch(app, "web", "http://localhost:9090/env/ROLE")
		return err == nil
	})
	assert.Equal(t, "200\nhelper", got)

	st := d.status(app)
	require.Len(t, st.Instances, 2)
	for _, in := range st.Instances {
		require.Len(t, in.Sidecars, 1, "status lists each instance's sidecars")
		sc := in.Sidecars[0]
		assert.Equal(t, "helper", sc.Name)
		assert.Equal(t, "running", sc.State)
		assert.True(t, sc.Essential)
		require.NotNil(t, sc.Limits)
		assert.Equal(t, int64(64), sc.Limits.Pids)
	}

	// Labels, the shared namespace and the sidecar's own limits.
	side := containersOf(t, app, "berth.role=sidecar", "berth.sidecar=helper")
	require.Len(t, side, 2)
	for _, c := range side {
		info := inspect(t, c.ID)
		assert.True(t, strings.HasPrefix(string(info.HostConfig.NetworkMode), "container:"), "a sidecar joins its instance's namespace")
		assert.Equal(t, "web", info.Config.Labels["berth.service"])
		assert.NotEmpty(t, info.Config.Labels["berth.instance"])
		assert.Equal(t, int64(250_000_000), info.HostConfig.NanoCPUs)
		assert.Equal(t, int64(64<<20), info.HostConfig.Memory)
		require.NotNil(t, info.HostConfig.PidsLimit)
		assert.Equal(t, int64(64), *info.HostConfig.PidsLimit)
	}
	for _, c := range containersOf(t, app, "berth.role=instance") {
		info := inspect(t, c.ID)
		require.NotNil(t, info.HostConfig.PidsLimit)
		assert.Equal(t, int64(128), *info.HostConfig.PidsLimit)
	}

	t.Run("logs", func(t *testing.T) {
		// Every instance and every sidecar has spoken (a sidecar under
		// load may write its first line a moment after the deploy).
		sources := map[string]bool{}
		eventually(t, 10*time.Second, "lines from each instance and each sidecar", func() bool {
			all, err := d.readLogs(app, "web", client.LogsOptions{})
			require.NoError(t, err)
			for _, m := range all {
				sources[m.Source] = true
			}
			for _, in := range st.Instances {
				if !sources[in.ID] || !sources[in.ID+"/helper"] {
					return false
				}
			}
			return true
		})
		only, err := d.readLogs(app, "web", client.LogsOptions{Container: "helper"})
		require.NoError(t, err)
		require.NotEmpty(t, only)
		for _, m := range only {
			assert.True(t, strings.HasSuffix(m.Source, "/helper"), "only the sidecar speaks: %+v", m)
			assert.Contains(t, m.Text, "9090")
		}
		_, err = d.readLogs(app, "web", client.LogsOptions{Container: "nope"})
		var ae *client.APIError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, http.StatusNotFound, ae.StatusCode)
		assert.Contains(t, ae.Body.Message, `no container named "nope"`)
		assert.Contains(t, ae.Body.Message, "helper")
	})

	t.Run("exec into the sidecar", func(t *testing.T) {
		conn, err := d.client.Exec(context.Background(), app, "web", api.ExecRequest{Container: "helper", Command: []string{"/testapp", "env", "PORT"}})
		require.NoError(t, err)
		defer conn.Close()
		s := &session{conn: conn}
		s.closeStdin()
		code, _ := s.wait(t)
		assert.Equal(t, 0, code)
		assert.Equal(t, "9090\n", s.stdout.String(), "the sidecar's own environment")
	})

	t.Run("deploys roll sidecars with no failed request; rollback reuses them", func(t *testing.T) {
		before := containersOf(t, app, "berth.role=sidecar", "berth.sidecar=helper")
		l := d.startLoad(app, "web", 4)
		d.mustDeploy(sidecarSpec(app, img, "    instances: 2\n    env: {VERSION: v2}\n", "helper2", ""))
		time.Sleep(200 * time.Millisecond)
		d.mustDeployRollback(app, "web")
		time.Sleep(200 * time.Millisecond)
		l.finish()
		assert.Zero(t, l.failed.Load(), "failed requests: %v", l.errs)
		assert.Positive(t, l.bodies["hello from v2"], "revision 2 served")

		got, err := d.fetch(app, "web", "http://localhost:9090/env/ROLE")
		require.NoError(t, err)
		assert.Equal(t, "200\nhelper", got, "the rollback brought revision 1's sidecars back")
		var ids []string
		for _, c := range containersOf(t, app, "berth.role=sidecar", "berth.sidecar=helper", "berth.revision=1") {
			if c.State == "running" {
				ids = append(ids, c.ID)
			}
		}
		var was []string
		for _, c := range before {
			was = append(was, c.ID)
		}
		slices.Sort(ids)
		slices.Sort(was)
		assert.Equal(t, was, ids, "rollback restarts the stopped sidecars instead of creating new ones")
	})

	// A restarted daemon re-adopts the instances with their sidecars. (At
	// the top level: the new daemon must outlive the subtests, for the
	// cleanup's destroy.)
	before := d.status(app)
	d.stop()
	d2 := startDaemon(t, d.dataDir)
	d2.destroyOnCleanup(app)
	after := d2.status(app)
	if len(after.Instances) != len(before.Instances) {
		t.Logf("the first daemon's log:\n%s\nthe new daemon's log:\n%s", d.logs.String(), d2.logs.String())
	}
	require.Len(t, after.Instances, len(before.Instances))
	for i := range before.Instances {
		assert.Equal(t, before.Instances[i].ID, after.Instances[i].ID, "not restarted")
		require.Len(t, after.Instances[i].Sidecars, 1)
		assert.Equal(t, before.Instances[i].Sidecars[0].ContainerID, after.Instances[i].Sidecars[0].ContainerID)
	}
	got, err := d2.fetch(app, "web", "http://localhost:9090/env/ROLE")
	require.NoError(t, err)
	assert.Equal(t, "200\nhelper", got)
}

// mustDeployRollback rolls svc back to its previous revision.
func (d *daemon) mustDeployRollback(app, svc string) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := d.client.Rollback(ctx, app, svc, api.RollbackRequest{}, nil)
	require.NoError(d.t, err)
	require.True(d.t, res.OK)
}

func dockerFilters(kv ...string) filters.Args {
	args := filters.NewArgs()
	for _, f := range kv {
		k, v, _ := strings.Cut(f, "=")
		args.Add(k, v)
	}
	return args
}

func TestInitContainerGatesStart(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "init")
	spec := func(version, migrateExit string) string {
		return fmt.Sprintf(`app: %s
services:
  web:
    image: %s
    port: 8080
    health: {path: /healthz}
    env: {VERSION: %s}
    depends_on: {migrate: success}
    sidecars:
      migrate:
        image: %s
        command: ["/testapp", "migrate"]
        env: {MIGRATE_EXIT: "%s"}
        essential: false
      shipper:
        image: %s
        command: ["/testapp", "sleep", "1h"]
        essential: false
        depends_on: {web: healthy}
`, app, img, version, img, migrateExit, img)
	}
	d.mustDeploy(spec("v1", "0"))
	code, body, err := d.get(app, "web", "/")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "hello from v1\n", body)

	// The init container ran to its end before the service's container
	// started; the shipper waited for the service to be healthy.
	times := map[string][2]time.Time{}
	pods := d.pods(app)
	require.Len(t, pods, 1)
	for _, c := range pods[0].Containers {
		name := c.Name
		if c.Main {
			name = "web"
		}
		times[name] = [2]time.Time{c.StartedAt, c.FinishedAt}
	}
	require.Contains(t, times, "migrate")
	assert.False(t, times["migrate"][1].IsZero(), "migrate ran to its end")
	assert.True(t, times["web"][0].After(times["migrate"][1]), "web started after migrate exited: %v", times)
	assert.True(t, times["shipper"][0].After(times["web"][0]), "the shipper started after web")
	st := d.status(app)
	require.Len(t, st.Instances, 1)
	assert.Equal(t, "completed", st.Instances[0].Sidecars[0].State)
	assert.True(t, st.Instances[0].Sidecars[0].Init)

	// An init container that fails fails the deploy, with its output, and
	// the previous revision keeps serving.
	_, _, err = d.deploy(spec("v2", "1"))
	var re *client.ResultError
	require.ErrorAs(t, err, &re)
	assert.Contains(t, re.Result.Error, "init container migrate")
	assert.Contains(t, re.Result.Error, "exited with code 1")
	assert.Contains(t, strings.Join(re.Result.LastLogs, "\n"), "migrating...", "the init container's own output")
	code, body, err = d.get(app, "web", "/")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "hello from v1\n", body, "revision 1 still serves")
	assert.Empty(t, d.pods(app, "berth.revision=2"), "the failed revision left nothing behind")
}

func TestSidecarDeathEssentialOrNot(t *testing.T) {
	t.Parallel()
	img := testutil.TestAppImage(t)
	app := testutil.UniqueName(t, "essential")
	leaveNothing(t, app)
	d := startDaemon(t, "")
	d.destroyOnCleanup(app)
	// The extra sidecar is built by the deploy, from the test app's image.
	dir := t.TempDir()
	writeFile(t, dir, "Dockerfile", "FROM "+img+"\nENV PORT=9091\n")
	d.mustDeploy(fmt.Sprintf(`app: %s
services:
  web:
    image: %s
    port: 8080
    health: {path: /healthz}
    sidecars:
      core:
        image: %s
        env: {PORT: "9090"}
      extra:
        build: %s
        essential: false
`, app, img, img, dir))
	t.Cleanup(func() {
		_, _ = testutil.DockerClient(t).ImageRemove(context.Background(), "berth/"+app+"-web-extra:1", image.RemoveOptions{Force: true})
	})
	st := d.status(app)
	require.Len(t, st.Instances, 1)
	first := st.Instances[0].ID
	cli := testutil.DockerClient(t)
	ctx := context.Background()
	find := func(name string) container.Summary {
		cs := containersOf(t, app, "berth.sidecar="+name, "berth.instance="+first)
		require.Len(t, cs, 1)
		return cs[0]
	}

	// A non-essential sidecar that dies is restarted alone.
	extra := find("extra")
	require.NoError(t, cli.ContainerKill(ctx, extra.ID, "KILL"))
	eventually(t, 15*time.Second, "the extra sidecar restarted", func() bool {
		return inspect(t, extra.ID).State.Running && d.status(app).Instances[0].Sidecars[1].Restarts == 1
	})
	st = d.status(app)
	require.Len(t, st.Instances, 1)
	assert.Equal(t, first, st.Instances[0].ID, "the instance itself was left alone")
	eventually(t, 5*time.Second, "the restarted sidecar is back in the namespace", func() bool {
		got, err := d.fetch(app, "web", "http://localhost:9091/healthz")
		return err == nil && got == "200\nok"
	})

	// An essential one takes its instance with it.
	require.NoError(t, cli.ContainerKill(ctx, find("core").ID, "KILL"))
	eventually(t, 30*time.Second, "a new instance replaced the old one", func() bool {
		st := d.status(app)
		return len(st.Instances) == 1 && st.Instances[0].ID != first && st.Running == 1
	})
	eventually(t, 10*time.Second, "the old instance's containers are gone", func() bool {
		return len(containersOf(t, app, "berth.instance="+first)) == 0
	})
	eventually(t, 5*time.Second, "the new instance's sidecar answers", func() bool {
		got, err := d.fetch(app, "web", "http://localhost:9090/healthz")
		return err == nil && got == "200\nok"
	})
	events := d.events(app)
	assert.Contains(t, events, "lost its essential sidecar core")
	assert.Contains(t, events, "sidecar extra of instance "+first)
}

// events returns the app's recorded events, one per line.
func (d *daemon) events(app string) string {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var b strings.Builder
	err := d.client.Events(ctx, client.EventsOptions{App: app}, func(m api.Message) {
		if m.Event != nil {
			b.WriteString(m.Event.Kind + ": " + m.Event.Message + "\n")
		}
	})
	require.NoError(d.t, err)
	return b.String()
}

// leaveNothing removes whatever of app is left on the engine when the test
// ends, after the daemons stopped: a destroy refused or interrupted must not
// leak containers and networks into the shared engine.
func leaveNothing(t testing.TB, app string) {
	t.Helper()
	cli := testutil.DockerClient(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: dockerFilters("label=berth.app=" + app)})
		if err != nil {
			return
		}
		for _, c := range cs {
			_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
		}
		_ = cli.NetworkRemove(ctx, "berth-"+app)
	})
}
