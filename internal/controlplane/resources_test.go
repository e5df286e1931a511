package controlplane_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestResourceLimitsAndOOM(t *testing.T) {
	t.Parallel()
	img := testutil.TestAppImage(t)
	app := testutil.UniqueName(t, "res")
	leaveNothing(t, app)
	d := startDaemon(t, "")
	d.destroyOnCleanup(app)
	yaml := fmt.Sprintf(`app: %[1]s
services:
  web:
    image: %[2]s
    port: 8080
    cpu: 0.5
    memory: 64MiB
    pids: 128
    sidecars:
      hog:
        image: %[2]s
        env: {PORT: "9090", MEMHOG: "1"}
        memory: 32MiB
        essential: false
  greedy:
    image: %[2]s
    port: 8080
    memory: 32MiB
    env: {MEMHOG: "1"}
`, app, img)
	_, _, err := d.deploy(yaml, "web")
	require.NoError(t, err)

	// The limits are applied and shown.
	for _, c := range containersOf(t, app, "berth.role=instance", "berth.service=web") {
		info := inspect(t, c.ID)
		assert.Equal(t, int64(500_000_000), info.HostConfig.NanoCPUs)
		assert.Equal(t, int64(64<<20), info.HostConfig.Memory)
		require.NotNil(t, info.HostConfig.PidsLimit)
		assert.Equal(t, int64(128), *info.HostConfig.PidsLimit)
	}
	web := serviceStatus(t, d, app, "web")
	require.NotNil(t, web.Limits)
	assert.Equal(t, api.Limits{CPU: 0.5, Memory: 64 << 20, Pids: 128}, *web.Limits)
	require.Len(t, web.Instances, 1)
	assert.Equal(t, int64(128), web.Instances[0].Pids)

	// A sidecar killed for memory after its instance started: its restart
	// says why.
	eventually(t, 20*time.Second, "the sidecar's out-of-memory kill is reported", func() bool {
		return strings.Contains(d.events(app), "sidecar hog of instance "+web.Instances[0].ID+" was killed: out of memory")
	})
	web = serviceStatus(t, d, app, "web")
	require.Len(t, web.Instances[0].Sidecars, 1)
	assert.Contains(t, web.Instances[0].Sidecars[0].LastExit, "out of memory")

	// An instance killed for memory while starting fails the deploy, and
	// status and events say so.
	res, msgs, err := d.deploy(yaml, "greedy")
	var re *client.ResultError
	require.ErrorAs(t, err, &re, "the deploy's result %+v, messages: %v, status: %+v", res, msgs, serviceStatus(t, d, app, "greedy"))
	assert.Contains(t, re.Result.Error, "out of memory")
	greedy := serviceStatus(t, d, app, "greedy")
	assert.Equal(t, "failed", greedy.State)
	assert.Contains(t, greedy.Message, "out of memory")
	assert.Contains(t, d.events(app), "out of memory")
}

func serviceStatus(t testing.TB, d *daemon, app, name string) api.ServiceStatus {
	t.Helper()
	st, err := d.client.Status(context.Background(), app)
	require.NoError(t, err)
	for _, a := range st.Apps {
		for _, s := range a.Services {
			if s.Name == name {
				return s
			}
		}
	}
	t.Fatalf("no service %s in status", name)
	return api.ServiceStatus{}
}

// TestSidecarBadInputChangesNothing: each bad spec is refused with a clear
// one-line error and leaves the running app as it was.
func TestSidecarBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "badside")
	good := sidecarSpec(app, img, "", "helper", "")
	d.mustDeploy(good)
	before := d.podStates(app)
	missing := strings.Replace(good, "      helper:\n        image: "+img, "      helper:\n        image: berth-test/none:0", 1)

	tests := []struct {
		name, yaml, code, want string
	}{
		{"sidecar named like a service", good + "  helper:\n    image: " + img + "\n", "invalid", `sidecar name "helper" clashes with service "helper"`},
		{"two sidecars of one name", good + "  api:\n    image: " + img + "\n    sidecars:\n      helper: {image: " + img + "}\n", "invalid", `sidecar name "helper" is already used by a sidecar of service "web"`},
		{"depends_on cycle", sidecarSpec(app, img, "    depends_on: {helper: start}\n", "helper", "        depends_on: {web: start}\n"), "invalid", "dependency cycle: web -> helper -> web"},
		{"depends_on unknown", sidecarSpec(app, img, "", "helper", "        depends_on: {db: start}\n"), "invalid", `unknown container "db"`},
		{"complete on an essential sidecar", sidecarSpec(app, img, "    depends_on: {helper: complete}\n", "helper", ""), "invalid", `"complete" needs sidecar "helper" to set essential: false`},
		{"platform not os/arch", sidecarSpec(app, img, "    platform: arm64\n", "helper", ""), "invalid", `invalid platform "arm64": use os/arch[/variant]`},
		{"sidecar image missing", missing, "image_not_found", "sidecar helper: image not found: berth-test/none:0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := d.deploy(tc.yaml)
			var re *client.ResultError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, tc.code, re.Result.Code)
			assert.Contains(t, re.Result.Error, tc.want)
			assert.NotContains(t, re.Result.Error, "\n")
			revs, err := d.client.Revisions(context.Background(), app, "web")
			require.NoError(t, err)
			assert.Len(t, revs, 1, "no revision was recorded")
			assert.Equal(t, before, d.podStates(app), "no container was created, started, stopped or removed")
		})
	}
	got, err := d.fetch(app, "web", "http://localhost:9090/env/ROLE")
	require.NoError(t, err)
	assert.Equal(t, "200\nhelper", got, "the app runs as before")
}
