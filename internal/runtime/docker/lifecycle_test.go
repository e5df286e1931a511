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
