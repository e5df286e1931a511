package docker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestLogs(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	appName := app(t)
	busybox := testutil.BusyboxImage(t)

	t.Run("tail and since", func(t *testing.T) {
		t.Parallel()
		c := create(t, e, appName, runtime.ContainerSpec{Command: []string{"/testapp", "lines", "100"}})
		_, err := e.Start(ctx(t), c.ID)
		require.NoError(t, err)
		_, err = e.Wait(ctx(t), c.ID)
		require.NoError(t, err)

		all := logs(t, e, c.ID, runtime.LogOptions{})
		require.Len(t, all, 100)
		assert.Equal(t, "stdout: line 1", all[0])
		assert.Equal(t, "stdout: line 100", all[99])
		assert.Equal(t, []string{"stdout: line 98", "stdout: line 99", "stdout: line 100"}, logs(t, e, c.ID, runtime.LogOptions{Tail: 3}))
		assert.Empty(t, logs(t, e, c.ID, runtime.LogOptions{Since: time.Now().Add(time.Hour)}))
		assert.Len(t, logs(t, e, c.ID, runtime.LogOptions{Since: time.Now().Add(-time.Hour)}), 100)
	})

	t.Run("tty", func(t *testing.T) {
		t.Parallel()
		c := create(t, e, appName, runtime.ContainerSpec{
			Image:   busybox,
			Command: []string{"sh", "-c", "echo one; echo two >&2; printf 'no newline'"},
			TTY:     true,
		})
		_, err := e.Start(ctx(t), c.ID)
		require.NoError(t, err)
		_, err = e.Wait(ctx(t), c.ID)
		require.NoError(t, err)
		assert.Equal(t, []string{"stdout: one", "stdout: two", "stdout: no newline"}, logs(t, e, c.ID, runtime.LogOptions{}))
	})

	t.Run("long line", func(t *testing.T) {
		t.Parallel()
		// The engine splits lines over 16 KiB into several log messages.
		c := create(t, e, appName, runtime.ContainerSpec{
			Image:   busybox,
			Command: []string{"sh", "-c", "head -c 40000 /dev/zero | tr '\\0' x; echo; echo after"},
		})
		_, err := e.Start(ctx(t), c.ID)
		require.NoError(t, err)
		_, err = e.Wait(ctx(t), c.ID)
		require.NoError(t, err)
		got := logs(t, e, c.ID, runtime.LogOptions{})
		require.Len(t, got, 2)
		assert.True(t, got[0] == "stdout: "+strings.Repeat("x", 40000), "the long line is whole: %.40s... (%d bytes)", got[0], len(got[0]))
		assert.Equal(t, "stdout: after", got[1])
	})
}
