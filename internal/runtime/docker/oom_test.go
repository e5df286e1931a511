package docker_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/testutil"
)

// TestOOMEvent: the engine's oom event tells a container the kernel killed
// out of memory from one killed with SIGKILL under the same limit, which
// is what berth reports when Docker's State.OOMKilled does not say it
// (Docker 20.10 at times never sets it).
func TestOOMEvent(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	appName := app(t)
	began := time.Now()

	hog := create(t, e, appName, runtime.ContainerSpec{Command: []string{"/testapp"}, Env: map[string]string{"MEMHOG": "1"}, Memory: 32 << 20})
	_, _ = e.Start(ctx(t), hog.ID) // it may be dead before the start returns
	code, err := e.Wait(ctx(t), hog.ID)
	require.NoError(t, err)
	require.Equal(t, 137, code, "the kernel kills the hog")
	assert.True(t, e.OOMEvent(ctx(t), hog.ID, began, 3*time.Second), "an oom event for the hog")

	killed := create(t, e, appName, runtime.ContainerSpec{Command: []string{"/testapp"}, Memory: 32 << 20})
	start(t, e, killed.ID)
	require.NoError(t, testutil.DockerClient(t).ContainerKill(ctx(t), killed.ID, "KILL"))
	code, err = e.Wait(ctx(t), killed.ID)
	require.NoError(t, err)
	require.Equal(t, 137, code)
	assert.False(t, e.OOMEvent(ctx(t), killed.ID, began, 500*time.Millisecond), "no oom event for a SIGKILL")
}
