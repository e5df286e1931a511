package docker_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestFreezeAndThaw(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	c := create(t, e, app(t), runtime.ContainerSpec{
		Port:   8080,
		Labels: map[string]string{runtime.LabelRole: string(runtime.RoleInstance)},
	})
	c = start(t, e, c.ID)
	testutil.WaitHTTP(t, "http://"+c.HostAddr+"/", 30*time.Second)

	require.NoError(t, e.Freeze(ctx(t), c.ID))
	frozen, err := e.Inspect(ctx(t), c.ID)
	require.NoError(t, err)
	assert.Equal(t, "paused", frozen.State)
	assert.False(t, frozen.Running, "a frozen container serves nothing: not running")
	assert.Empty(t, frozen.HostAddr)

	began := time.Now()
	require.NoError(t, e.Thaw(ctx(t), c.ID))
	code, _ := get(t, "http://"+c.HostAddr+"/")
	assert.Equal(t, http.StatusOK, code, "same address after a thaw")
	t.Logf("thaw + first request took %s", time.Since(began))

	// Start thaws a frozen container too (a rollback to a parked revision).
	require.NoError(t, e.Freeze(ctx(t), c.ID))
	again, err := e.Start(ctx(t), c.ID)
	require.NoError(t, err)
	assert.True(t, again.Running)
	assert.Equal(t, c.HostAddr, again.HostAddr)

	// A frozen container stops like any other.
	require.NoError(t, e.Freeze(ctx(t), c.ID))
	require.NoError(t, e.Stop(ctx(t), c.ID, time.Second))
	stopped, err := e.Inspect(ctx(t), c.ID)
	require.NoError(t, err)
	assert.Equal(t, "exited", stopped.State)
}
