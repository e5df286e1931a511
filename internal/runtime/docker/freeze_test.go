package docker_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	dnetwork "github.com/docker/docker/api/types/network"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestFreezeAndThaw(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	appName := app(t)
	net := network(t, e)
	spec := func(alias, version string) runtime.ContainerSpec {
		return runtime.ContainerSpec{
			Port: 8080, Network: net, Aliases: []string{alias}, Env: map[string]string{"VERSION": version},
			Labels: map[string]string{runtime.LabelRole: string(runtime.RoleInstance)},
		}
	}
	client := start(t, e, create(t, e, appName, spec("web", "web")).ID)
	// Two containers answer to "api", as a service's old and new revisions
	// do after a deploy; the old one is frozen as the rollback target.
	c := start(t, e, create(t, e, appName, spec("api", "old")).ID)
	start(t, e, create(t, e, appName, spec("api", "new")).ID)
	byName := func() (int, string) {
		return get(t, "http://"+client.HostAddr+"/fetch?url=http://api:8080/")
	}
	status, body := byName()
	require.Equal(t, http.StatusOK, status, body)
	docker := testutil.DockerClient(t)
	ipOnNet := func() string {
		info, err := docker.ContainerInspect(ctx(t), c.ID)
		require.NoError(t, err)
		if ep := info.NetworkSettings.Networks[net]; ep != nil {
			return ep.IPAddress
		}
		return ""
	}
	ip := ipOnNet()
	require.NotEmpty(t, ip)

	require.NoError(t, e.Freeze(ctx(t), c.ID))
	frozen, err := e.Inspect(ctx(t), c.ID)
	require.NoError(t, err)
	assert.Equal(t, "paused", frozen.State)
	assert.False(t, frozen.Running, "a frozen container serves nothing: not running")
	assert.Empty(t, frozen.HostAddr)
	// Off the network: the name resolves to the live container only, so no
	// caller hangs on a process that never answers.
	for range 10 {
		status, body = byName()
		require.Equal(t, http.StatusOK, status, body)
		require.Equal(t, "200\nhello from new\n", body, "a call by name reached the frozen container")
	}

	// A container created meanwhile does not get the frozen one's address
	// (the engine alone would give it: the lowest free one).
	other := start(t, e, create(t, e, appName, spec("other", "other")).ID)
	info, err := docker.ContainerInspect(ctx(t), other.ID)
	require.NoError(t, err)
	assert.NotEqual(t, ip, info.NetworkSettings.Networks[net].IPAddress)

	began := time.Now()
	thawed, err := e.Thaw(ctx(t), c.ID)
	require.NoError(t, err)
	require.NotEmpty(t, thawed.HostAddr)
	code, _ := get(t, "http://"+thawed.HostAddr+"/")
	assert.Equal(t, http.StatusOK, code, "served on the address Thaw returns")
	assert.Equal(t, ip, ipOnNet(), "back with its address on the network, which its open connections are bound to")
	t.Logf("thaw + first request took %s", time.Since(began))
	assert.Eventually(t, func() bool {
		_, body := byName()
		return body == "200\nhello from old\n"
	}, 30*time.Second, 10*time.Millisecond, "back under its name after a thaw")

	// Start thaws a frozen container too (a rollback to a parked revision).
	require.NoError(t, e.Freeze(ctx(t), c.ID))
	again, err := e.Start(ctx(t), c.ID)
	require.NoError(t, err)
	assert.True(t, again.Running)
	testutil.WaitHTTP(t, "http://"+again.HostAddr+"/healthz", 30*time.Second)

	// A frozen container stops like any other, and starts again on its
	// network under its name.
	require.NoError(t, e.Freeze(ctx(t), c.ID))
	require.NoError(t, e.Stop(ctx(t), c.ID, time.Second))
	stopped, err := e.Inspect(ctx(t), c.ID)
	require.NoError(t, err)
	assert.Equal(t, "exited", stopped.State)
	restarted := start(t, e, c.ID)
	assert.True(t, restarted.Running)
	assert.Eventually(t, func() bool {
		_, body := byName()
		return body == "200\nhello from old\n"
	}, 30*time.Second, 10*time.Millisecond, "a container stopped while frozen starts under its name")
}

// A thawed container keeps asking for its address when it starts again
// (Thaw asked for it by name); when another took it while it was stopped,
// it starts with a fresh one.
func TestStartWhenItsAddressWasTaken(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	appName := app(t)
	net := network(t, e)
	c := start(t, e, create(t, e, appName, runtime.ContainerSpec{Port: 8080, Network: net, Aliases: []string{"api"}}).ID)
	docker := testutil.DockerClient(t)
	info, err := docker.ContainerInspect(ctx(t), c.ID)
	require.NoError(t, err)
	ip := info.NetworkSettings.Networks[net].IPAddress
	require.NoError(t, e.Freeze(ctx(t), c.ID))
	_, err = e.Thaw(ctx(t), c.ID)
	require.NoError(t, err)
	require.NoError(t, e.Stop(ctx(t), c.ID, time.Second))

	taker, err := docker.ContainerCreate(ctx(t), &container.Config{Image: testutil.TestAppImage(t), Labels: map[string]string{"berth.test": "1"}},
		&container.HostConfig{NetworkMode: container.NetworkMode(net)},
		&dnetwork.NetworkingConfig{EndpointsConfig: map[string]*dnetwork.EndpointSettings{net: {IPAMConfig: &dnetwork.EndpointIPAMConfig{IPv4Address: ip}}}},
		nil, testutil.UniqueName(t, "taker"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Remove(context.Background(), taker.ID) })
	require.NoError(t, docker.ContainerStart(ctx(t), taker.ID, container.StartOptions{}))

	again := start(t, e, c.ID)
	assert.True(t, again.Running)
	info, err = docker.ContainerInspect(ctx(t), c.ID)
	require.NoError(t, err)
	assert.NotEqual(t, ip, info.NetworkSettings.Networks[net].IPAddress)
	assert.Equal(t, []string{"api"}, slices.DeleteFunc(info.NetworkSettings.Networks[net].Aliases, func(a string) bool { return a != "api" }), "still answers to its name")
}
