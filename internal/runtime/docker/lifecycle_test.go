package docker_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestLifecycle(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	appName := app(t)

	began := time.Now()
	c := create(t, e, appName, runtime.ContainerSpec{
		Port:      8080,
		Env:       map[string]string{"VERSION": "v7"},
		Labels:    map[string]string{runtime.LabelRole: string(runtime.RoleInstance)},
		StopGrace: 5 * time.Second,
	})
	t.Logf("create took %s", time.Since(began))
	assert.Equal(t, "created", c.State)
	assert.False(t, c.Running)
	assert.Empty(t, c.HostAddr, "no address before start")
	assert.Equal(t, testutil.TestAppImage(t), c.Image)
	assert.Equal(t, appName, c.Labels[runtime.LabelApp])

	began = time.Now()
	c, err := e.Start(ctx(t), c.ID)
	require.NoError(t, err)
	t.Logf("start took %s", time.Since(began))
	assert.True(t, c.Running)
	assert.Equal(t, "running", c.State)
	assert.False(t, c.StartedAt.IsZero())
	require.True(t, strings.HasPrefix(c.HostAddr, "127.0.0.1:"), "HostAddr %q", c.HostAddr)

	body := testutil.WaitHTTP(t, "http://"+c.HostAddr+"/", 30*time.Second)
	assert.Equal(t, "hello from v7\n", body)
	t.Logf("serving %s after create", time.Since(began))

	inspected, err := e.Inspect(ctx(t), c.Name)
	require.NoError(t, err)
	assert.Equal(t, c.ID, inspected.ID)
	assert.Equal(t, c.HostAddr, inspected.HostAddr)

	began = time.Now()
	require.NoError(t, e.Stop(ctx(t), c.ID, 0))
	t.Logf("graceful stop took %s", time.Since(began))
	c, err = e.Inspect(ctx(t), c.ID)
	require.NoError(t, err)
	assert.Equal(t, "exited", c.State)
	assert.Equal(t, 0, c.ExitCode, "the testapp exits 0 on SIGTERM")
	assert.Empty(t, c.HostAddr)
	assert.False(t, c.FinishedAt.IsZero())
	assert.Contains(t, logs(t, e, c.ID, runtime.LogOptions{}), "stdout: shutting down")

	require.NoError(t, e.Stop(ctx(t), c.ID, time.Second), "stopping a stopped container is not an error")

	c, err = e.Start(ctx(t), c.ID)
	require.NoError(t, err)
	require.NotEmpty(t, c.HostAddr, "a restarted container gets its port again")
	assert.Equal(t, "hello from v7\n", testutil.WaitHTTP(t, "http://"+c.HostAddr+"/", 30*time.Second))

	require.NoError(t, e.Remove(ctx(t), c.ID), "remove kills a running container")
	_, err = e.Inspect(ctx(t), c.ID)
	require.ErrorIs(t, err, runtime.ErrNotFound)
	require.NoError(t, e.Remove(ctx(t), c.ID), "removing a missing container is not an error")
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	missing := testutil.UniqueName(t, "missing")

	tests := []struct {
		name string
		call func() error
	}{
		{"inspect", func() error { _, err := e.Inspect(ctx(t), missing); return err }},
		{"start", func() error { _, err := e.Start(ctx(t), missing); return err }},
		{"stop", func() error { return e.Stop(ctx(t), missing, time.Second) }},
		{"wait", func() error { _, err := e.Wait(ctx(t), missing); return err }},
		{"logs", func() error { return e.Logs(ctx(t), missing, runtime.LogOptions{}, func(runtime.LogLine) {}) }},
		{"attach", func() error { _, err := e.Attach(ctx(t), missing); return err }},
		{"exec", func() error { _, err := e.Exec(ctx(t), missing, []string{"true"}, false); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorIs(t, tt.call(), runtime.ErrNotFound)
		})
	}
}

func TestEnvAndCommand(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	appName := app(t)

	tests := []struct {
		name    string
		command []string
		env     map[string]string
		want    []string
	}{
		{"echo args", []string{"/testapp", "echo", "a", "b c"}, nil, []string{"stdout: a b c"}},
		{"env reaches the process", []string{"/testapp", "env", "GREETING"}, map[string]string{"GREETING": "hi there", "OTHER": "x"}, []string{"stdout: hi there"}},
		{"unset env on stderr", []string{"/testapp", "env", "NOPE"}, nil, []string{"stderr: NOPE is not set"}},
		{"migrate", []string{"/testapp", "migrate"}, nil, []string{"stdout: migrating...", "stdout: migrated"}},
		{"crash at start", nil, map[string]string{"CRASH": "1"}, []string{"stderr: crashing on purpose"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := create(t, e, appName, runtime.ContainerSpec{Command: tt.command, Env: tt.env})
			_, err := e.Start(ctx(t), c.ID)
			require.NoError(t, err)
			_, err = e.Wait(ctx(t), c.ID)
			require.NoError(t, err)
			assert.Equal(t, tt.want, logs(t, e, c.ID, runtime.LogOptions{}))
		})
	}

	t.Run("env over HTTP", func(t *testing.T) {
		c := create(t, e, appName, runtime.ContainerSpec{Port: 8080, Env: map[string]string{"COLOR": "blue"}})
		c = start(t, e, c.ID)
		status, body := get(t, "http://"+c.HostAddr+"/env/COLOR")
		assert.Equal(t, 200, status)
		assert.Equal(t, "blue", body)
		status, _ = get(t, "http://"+c.HostAddr+"/env/NOT_SET")
		assert.Equal(t, 404, status)
	})
}

func TestList(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	appName := app(t)
	mk := func(service, role string) runtime.Container {
		return create(t, e, appName, runtime.ContainerSpec{
			Command: []string{"/testapp", "exit", "0"},
			Labels:  map[string]string{runtime.LabelService: service, runtime.LabelRole: role},
		})
	}
	web1, web2, worker := mk("web", "instance"), mk("web", "instance"), mk("worker", "task")

	tests := []struct {
		name   string
		labels map[string]string
		want   []string
	}{
		{"whole app", map[string]string{runtime.LabelApp: appName}, []string{web1.ID, web2.ID, worker.ID}},
		{"one service", map[string]string{runtime.LabelApp: appName, runtime.LabelService: "web"}, []string{web1.ID, web2.ID}},
		{"role", map[string]string{runtime.LabelApp: appName, runtime.LabelRole: "task"}, []string{worker.ID}},
		{"no match", map[string]string{runtime.LabelApp: appName, runtime.LabelService: "nope"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.List(ctx(t), tt.labels)
			require.NoError(t, err)
			var ids []string
			for _, c := range got {
				ids = append(ids, c.ID)
				assert.Equal(t, appName, c.Labels[runtime.LabelApp], "labels round-trip")
				assert.Equal(t, "created", c.State, "List includes containers that are not running")
			}
			assert.ElementsMatch(t, tt.want, ids)
		})
	}
}

func TestCreateErrors(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	appName := app(t)

	t.Run("missing image", func(t *testing.T) {
		image := testutil.UniqueName(t, "no-such-image") + ":1"
		_, err := e.Create(ctx(t), runtime.ContainerSpec{Name: testutil.UniqueName(t, "x"), Image: image, Labels: map[string]string{runtime.LabelApp: appName}})
		require.ErrorIs(t, err, runtime.ErrImageNotFound)
		assert.Contains(t, err.Error(), image)
		assert.Contains(t, err.Error(), "berth never pulls")
		_, err = e.ImageID(ctx(t), image)
		require.ErrorIs(t, err, runtime.ErrImageNotFound)
	})

	t.Run("bad platform", func(t *testing.T) {
		_, err := e.Create(ctx(t), runtime.ContainerSpec{Name: testutil.UniqueName(t, "x"), Image: testutil.TestAppImage(t), Platform: "arm64"})
		require.ErrorIs(t, err, runtime.ErrPlatform)
	})

	t.Run("image ID", func(t *testing.T) {
		id, err := e.ImageID(ctx(t), testutil.TestAppImage(t))
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(id, "sha256:"), id)
	})
}

func TestPortInUse(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	c := create(t, e, app(t), runtime.ContainerSpec{Port: 8080, HostPort: port})
	_, err = e.Start(ctx(t), c.ID)
	require.ErrorIs(t, err, runtime.ErrPortInUse)
	assert.Contains(t, err.Error(), strconv.Itoa(port))

	// Once the port is free the same container starts on it.
	ln.Close()
	c, err = e.Start(ctx(t), c.ID)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:"+strconv.Itoa(port), c.HostAddr)
}

func TestStop(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	appName := app(t)

	tests := []struct {
		name     string
		env      map[string]string
		grace    time.Duration
		wantCode int
		minTook  time.Duration
	}{
		{"graceful SIGTERM", nil, 10 * time.Second, 0, 0},
		{"ignores SIGTERM, killed after grace", map[string]string{"EXIT_ON_SIGTERM": "ignore"}, time.Second, 137, time.Second},
		{"own exit code on SIGTERM", map[string]string{"EXIT_ON_SIGTERM": "42"}, 10 * time.Second, 42, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := create(t, e, appName, runtime.ContainerSpec{Port: 8080, Env: tt.env})
			start(t, e, c.ID)
			began := time.Now()
			require.NoError(t, e.Stop(ctx(t), c.ID, tt.grace))
			took := time.Since(began)
			t.Logf("stop took %s", took)
			assert.GreaterOrEqual(t, took, tt.minTook)
			if tt.minTook == 0 {
				assert.Less(t, took, 5*time.Second, "a graceful app stops well before the grace")
			}
			code, err := e.Wait(ctx(t), c.ID)
			require.NoError(t, err)
			assert.Equal(t, tt.wantCode, code)
		})
	}
}

func TestWait(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	appName := app(t)

	tests := []struct {
		name    string
		command []string
		kill    bool
		want    int
	}{
		{"exit 0", []string{"/testapp", "exit", "0"}, false, 0},
		{"exit 1", []string{"/testapp", "exit", "1"}, false, 1},
		{"killed", []string{"/testapp", "sleep", "1h"}, true, 137},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := create(t, e, appName, runtime.ContainerSpec{Command: tt.command})

			// Waiting on a created container waits for its first exit,
			// not for "not running", which it already is.
			type result struct {
				code int
				err  error
			}
			waited := make(chan result, 1)
			go func() {
				code, err := e.Wait(ctx(t), c.ID)
				waited <- result{code, err}
			}()
			time.Sleep(200 * time.Millisecond)
			select {
			case r := <-waited:
				t.Fatalf("Wait returned before start: %+v", r)
			default:
			}

			_, err := e.Start(ctx(t), c.ID)
			require.NoError(t, err)
			if tt.kill {
				require.NoError(t, testutil.DockerClient(t).ContainerKill(ctx(t), c.ID, "KILL"))
			}
			select {
			case r := <-waited:
				require.NoError(t, r.err)
				assert.Equal(t, tt.want, r.code)
			case <-time.After(time.Minute):
				t.Fatal("Wait did not return after the container exited")
			}

			// An exited container's Wait returns at once.
			began := time.Now()
			code, err := e.Wait(ctx(t), c.ID)
			require.NoError(t, err)
			assert.Equal(t, tt.want, code)
			assert.Less(t, time.Since(began), 5*time.Second)
		})
	}
}

func TestResourceLimits(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	c := create(t, e, app(t), runtime.ContainerSpec{
		Port:      8080,
		CPU:       0.5,
		Memory:    64 << 20,
		PidsLimit: 64,
		StopGrace: 1500 * time.Millisecond,
	})
	info, err := testutil.DockerClient(t).ContainerInspect(ctx(t), c.ID)
	require.NoError(t, err)
	hc := info.HostConfig
	assert.Equal(t, int64(500_000_000), hc.NanoCPUs)
	assert.Equal(t, int64(64<<20), hc.Memory)
	assert.Equal(t, int64(64<<20), hc.MemorySwap, "no swap beyond the memory limit")
	require.NotNil(t, hc.PidsLimit)
	assert.Equal(t, int64(64), *hc.PidsLimit)

	// The policy every berth container gets.
	require.NotNil(t, hc.Init)
	assert.True(t, *hc.Init)
	assert.False(t, hc.Privileged)
	assert.Contains(t, hc.SecurityOpt, "no-new-privileges")
	assert.Empty(t, hc.Binds, "never mount anything, least of all the Docker socket")
	assert.Empty(t, hc.Mounts)
	assert.Equal(t, "no", string(hc.RestartPolicy.Name))
	assert.Equal(t, "json-file", hc.LogConfig.Type)
	assert.Equal(t, map[string]string{"max-size": "10m", "max-file": "3"}, hc.LogConfig.Config)
	for _, bindings := range hc.PortBindings {
		for _, b := range bindings {
			assert.Equal(t, "127.0.0.1", b.HostIP, "ports are published on loopback only")
		}
	}
	require.NotNil(t, info.Config.StopTimeout)
	assert.Equal(t, 2, *info.Config.StopTimeout, "grace rounds up to whole seconds")

	// And the running app really is limited.
	c = start(t, e, c.ID)
	assert.True(t, c.Running)
}

func TestOOMKilled(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	c := create(t, e, app(t), runtime.ContainerSpec{Memory: 32 << 20, Env: map[string]string{"MEMHOG": "1"}})
	_, err := e.Start(ctx(t), c.ID)
	require.NoError(t, err)
	code, err := e.Wait(ctx(t), c.ID)
	require.NoError(t, err)
	assert.Equal(t, 137, code)
	c, err = e.Inspect(ctx(t), c.ID)
	require.NoError(t, err)
	assert.True(t, c.OOMKilled, "state %+v", c)
}

// TestCreateCancelledLeavesNothing cancels creates at every point of their
// way: each either returns the container (the caller owns it) or an error
// and no container, never a container nobody knows of, which the engine
// would otherwise finish making after its caller went away.
func TestCreateCancelledLeavesNothing(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	appName := app(t)
	t.Cleanup(func() {
		cs, _ := e.List(context.Background(), map[string]string{runtime.LabelApp: appName})
		for _, c := range cs {
			_ = e.Remove(context.Background(), c.ID)
		}
	})
	img := testutil.TestAppImage(t)
	spec := func() runtime.ContainerSpec {
		return runtime.ContainerSpec{
			Name:   testutil.UniqueName(t, "cancel"),
			Image:  img,
			Labels: map[string]string{runtime.LabelApp: appName, "berth.test": "1"},
		}
	}
	began := time.Now()
	c, err := e.Create(ctx(t), spec())
	require.NoError(t, err)
	whole := time.Since(began)
	owned := map[string]bool{c.ID: true}
	const tries = 24
	for i := range tries {
		cctx, cancel := context.WithTimeout(context.Background(), whole*time.Duration(i)/tries)
		c, err := e.Create(cctx, spec())
		cancel()
		if err == nil {
			owned[c.ID] = true
		} else {
			t.Logf("create %d: %v", i, err)
		}
	}
	// The engine finishes an abandoned create a moment later.
	time.Sleep(time.Second)
	cs, err := e.List(ctx(t), map[string]string{runtime.LabelApp: appName})
	require.NoError(t, err)
	for _, c := range cs {
		assert.True(t, owned[c.ID], "container %s (%s) was created for a caller that was told it failed", c.Name, c.State)
	}
	t.Logf("one create takes %s; %d of %d cancelled creates returned a container", whole, len(owned)-1, tries)
}
