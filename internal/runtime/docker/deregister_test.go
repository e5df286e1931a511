package docker_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/testutil"
)

// A deregistered container is no longer found by name, at once, yet keeps
// its address and the connections open to it; stopped, it is under its
// name again, so its next start (a rollback) serves there.
func TestDeregister(t *testing.T) {
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
	old := start(t, e, create(t, e, appName, spec("api", "old")).ID)
	start(t, e, create(t, e, appName, spec("api", "new")).ID)
	fetch := func(u string) (int, string) {
		return get(t, "http://"+client.HostAddr+"/fetch?url="+url.QueryEscape(u))
	}
	info, err := testutil.DockerClient(t).ContainerInspect(ctx(t), old.ID)
	require.NoError(t, err)
	ip := info.NetworkSettings.Networks[net].IPAddress
	require.NotEmpty(t, ip)

	// A request in flight on the old container across the deregistration.
	inFlight := make(chan string, 1)
	go func() {
		_, body := fetch("http://" + ip + ":8080/sleep?d=2s")
		inFlight <- body
	}()
	time.Sleep(500 * time.Millisecond)

	listed, err := e.Deregister(ctx(t), old.ID)
	require.NoError(t, err)
	assert.True(t, listed)
	for range 20 {
		status, body := fetch("http://api:8080/")
		require.Equal(t, http.StatusOK, status, body)
		require.Equal(t, "200\nhello from new\n", body, "the name reached the deregistered container")
	}
	assert.Equal(t, "200\nslept", <-inFlight, "a connection open across the deregistration carries on")
	_, body := fetch("http://" + ip + ":8080/")
	assert.Equal(t, "200\nhello from old\n", body, "it keeps its address")
	listed, err = e.Deregister(ctx(t), old.ID)
	require.NoError(t, err)
	assert.False(t, listed, "no longer under its name")

	require.NoError(t, e.Stop(ctx(t), old.ID, time.Second))
	info, err = testutil.DockerClient(t).ContainerInspect(ctx(t), old.ID)
	require.NoError(t, err)
	assert.Contains(t, info.NetworkSettings.Networks[net].Aliases, "api", "stopped, it is under its name again: a start needs no reconnect")
	assert.Equal(t, ip, info.NetworkSettings.Networks[net].IPAMConfig.IPv4Address, "and asks for its address")
	again := start(t, e, old.ID)
	assert.True(t, again.Running)
	assert.Eventually(t, func() bool {
		_, body := fetch("http://api:8080/")
		return body == "200\nhello from old\n"
	}, 30*time.Second, 10*time.Millisecond, "started again, it is under its name")
}
