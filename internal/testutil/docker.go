package testutil

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

// SkipDockerEnv is the environment variable that, set to "1", makes tests
// needing the Docker Engine skip instead of fail.
const SkipDockerEnv = "BERTH_SKIP_DOCKER"

var dockerClient = sync.OnceValues(func() (*client.Client, error) {
	return client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
})

// RequireDocker skips tb when BERTH_SKIP_DOCKER=1 and otherwise fails it when
// the Docker Engine cannot be reached: a CI run without an engine must be red,
// not silently green.
func RequireDocker(tb testing.TB) {
	tb.Helper()
	if os.Getenv(SkipDockerEnv) == "1" {
		tb.Skipf("%s=1: skipping a test that needs the Docker Engine", SkipDockerEnv)
	}
	cli, err := dockerClient()
	if err != nil {
		tb.Fatalf("docker client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		tb.Fatalf("the Docker Engine is unreachable (%v); start it, or set %s=1 to skip Docker tests", err, SkipDockerEnv)
	}
}

// DockerClient returns a shared Docker client for assertions the engine
// interface does not expose (raw ContainerInspect, image labels). It calls
// RequireDocker first.
func DockerClient(tb testing.TB) *client.Client {
	tb.Helper()
	RequireDocker(tb)
	cli, err := dockerClient()
	if err != nil {
		tb.Fatalf("docker client: %v", err)
	}
	return cli
}

// AppContainers maps the IDs of an app's containers on the engine (by its
// berth.app label, any owner, running or not) to their states, for a test
// to tell that nothing was started, stopped or removed behind its back.
func AppContainers(tb testing.TB, app string) map[string]string {
	tb.Helper()
	cs, err := DockerClient(tb).ContainerList(context.Background(), container.ListOptions{
		All: true, Filters: filters.NewArgs(filters.Arg("label", "berth.app="+app)),
	})
	if err != nil {
		tb.Fatalf("list the containers of %s: %v", app, err)
	}
	out := map[string]string{}
	for _, c := range cs {
		out[c.ID] = string(c.State)
	}
	return out
}
