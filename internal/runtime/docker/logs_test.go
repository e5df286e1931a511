package docker_test

import (
	"context"
	"strings"
	"sync"
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

	t.Run("stdout and stderr in order while following", func(t *testing.T) {
		t.Parallel()
		script := `for i in 1 2 3; do echo out$i; sleep 0.1; echo err$i >&2; sleep 0.1; done`
		c := create(t, e, appName, runtime.ContainerSpec{Image: busybox, Command: []string{"sh", "-c", script}})
		var (
			mu    sync.Mutex
			lines []runtime.LogLine
		)
		followed := make(chan error, 1)
		began := time.Now()
		_, err := e.Start(ctx(t), c.ID)
		require.NoError(t, err)
		go func() {
			followed <- e.Logs(ctx(t), c.ID, runtime.LogOptions{Follow: true}, func(l runtime.LogLine) {
				mu.Lock()
				defer mu.Unlock()
				lines = append(lines, l)
			})
		}()
		select {
		case err := <-followed:
			require.NoError(t, err, "following ends when the container exits")
		case <-time.After(time.Minute):
			t.Fatal("following did not end with the container")
		}
		mu.Lock()
		defer mu.Unlock()
		var got []string
		for _, l := range lines {
			got = append(got, l.Stream+": "+l.Text)
			assert.WithinDuration(t, began, l.Time, time.Minute, "timestamps are parsed")
		}
		assert.Equal(t, []string{
			"stdout: out1", "stderr: err1", "stdout: out2", "stderr: err2", "stdout: out3", "stderr: err3",
		}, got)
		for i := 1; i < len(lines); i++ {
			assert.False(t, lines[i].Time.Before(lines[i-1].Time), "times are in order")
		}
	})

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

	t.Run("follow stops with ctx", func(t *testing.T) {
		t.Parallel()
		c := create(t, e, appName, runtime.ContainerSpec{Port: 8080})
		start(t, e, c.ID)
		cctx, cancel := context.WithCancel(ctx(t))
		seen := make(chan string, 10)
		done := make(chan error, 1)
		go func() {
			done <- e.Logs(cctx, c.ID, runtime.LogOptions{Follow: true}, func(l runtime.LogLine) { seen <- l.Text })
		}()
		select {
		case line := <-seen:
			assert.Equal(t, "listening on :8080", line)
		case <-time.After(30 * time.Second):
			t.Fatal("no log line")
		}
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("Logs did not return after ctx ended")
		}
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
