package docker_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/docker"
	"github.com/berth-dev/berth/internal/testutil"
)

// newEngine returns an Engine on the real Docker Engine, logging to the test.
func newEngine(tb testing.TB) *docker.Engine {
	tb.Helper()
	testutil.RequireDocker(tb)
	e, err := docker.New(slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = e.Close() })
	return e
}

type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// ctx is a context for one test step; Docker on fuse-overlayfs can be slow.
func ctx(tb testing.TB) context.Context {
	tb.Helper()
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	return c
}

// app is a unique berth.app value for one test, so concurrent runs (and
// other engineers' tests on the same engine) never see each other.
func app(tb testing.TB) string {
	tb.Helper()
	return testutil.UniqueName(tb, tb.Name())
}

// create creates a container from spec, filling in a unique name and the
// test labels, and removes it when the test ends.
func create(tb testing.TB, e *docker.Engine, appName string, spec runtime.ContainerSpec) docker.Container {
	tb.Helper()
	if spec.Name == "" {
		spec.Name = testutil.UniqueName(tb, tb.Name())
	}
	if spec.Image == "" {
		spec.Image = testutil.TestAppImage(tb)
	}
	labels := map[string]string{runtime.LabelApp: appName, "berth.test": "1"}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	spec.Labels = labels
	c, err := e.Create(ctx(tb), spec)
	require.NoError(tb, err)
	tb.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.Remove(c, spec.Name); err != nil {
			tb.Logf("cleanup: %v", err)
		}
	})
	return c
}

// start starts a container and, when it publishes a port, waits for the
// testapp to answer on it.
func start(tb testing.TB, e *docker.Engine, id string) docker.Container {
	tb.Helper()
	c, err := e.Start(ctx(tb), id)
	require.NoError(tb, err)
	if c.HostAddr != "" {
		testutil.WaitHTTP(tb, "http://"+c.HostAddr+"/healthz", 30*time.Second)
	}
	return c
}

// network creates a network removed when the test ends (after the
// containers on it, as cleanups run last-in first-out).
func network(tb testing.TB, e *docker.Engine) string {
	tb.Helper()
	name := testutil.UniqueName(tb, "net")
	require.NoError(tb, e.EnsureNetwork(ctx(tb), name, map[string]string{"berth.test": "1"}))
	tb.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.RemoveNetwork(c, name); err != nil {
			tb.Logf("cleanup: %v", err)
		}
	})
	return name
}

// get fetches url and returns the status code and body.
func get(tb testing.TB, url string) (int, string) {
	tb.Helper()
	client := &http.Client{Timeout: 15 * time.Second}
	resp, err := client.Get(url)
	require.NoError(tb, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return resp.StatusCode, string(body)
}

// logs returns a finished container's output as "stream: text" lines.
func logs(tb testing.TB, e *docker.Engine, id string, opts runtime.LogOptions) []string {
	tb.Helper()
	var lines []string
	require.NoError(tb, e.ContainerLogs(ctx(tb), id, opts, func(l runtime.LogLine) {
		lines = append(lines, l.Stream+": "+l.Text)
	}))
	return lines
}
