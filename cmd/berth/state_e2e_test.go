package main_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestEmptiedStateIsRestored is the reproduction with the real
// binary: after `: > berth.db` the server refuses to start, says how to
// restore, and leaves the app's containers running; `berth server
// --restore-latest` brings the app back, routed, with its secret.
func TestEmptiedStateIsRestored(t *testing.T) {
	img := testutil.TestAppImage(t)
	testutil.RequireDocker(t)
	data, err := os.MkdirTemp("", "berth-e2e-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(data) })
	s := &server{data: data, http: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))}
	s.env = append(os.Environ(), "BERTH_DATA="+data, "BERTH_HOST=", "BERTH_TOKEN=")
	first := s.launch(t)
	app := testutil.UniqueName(t, "restore")
	host := "web." + app + ".localhost"
	dir := t.TempDir()
	spec := fmt.Sprintf("app: %s\nservices:\n  web:\n    image: %s\n    port: 8080\n    health: {path: /healthz}\n    secrets: [API_KEY]\n", app, img)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "berth.yaml"), []byte(spec), 0o644))
	t.Cleanup(func() { removeApp(t, app) })
	_, stderr, code := s.berth(t, dir, "secret", "set", "web", "API_KEY=k3y")
	require.Zero(t, code, stderr)
	out, stderr, code := s.berth(t, dir, "deploy")
	require.Zero(t, code, "deploy failed: %s %s", out, stderr)
	status, _ := s.get(t, host, "/")
	require.Equal(t, http.StatusOK, status)
	first.stop(t)
	before := testutil.AppContainers(t, app)
	require.NotEmpty(t, before)

	require.NoError(t, os.Truncate(filepath.Join(s.data, "berth.db"), 0))
	// Bounded: a server that starts on the empty state would run on.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, berthBin, "server", "--http", s.http, "--https", "")
	cmd.Env = s.env
	var logs testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	err = cmd.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "berth server started on an empty berth.db:\n%s", logs.String())
	assert.Equal(t, 1, ee.ExitCode())
	last := lastLine(logs.String())
	assert.Contains(t, last, "berth: ")
	assert.Contains(t, last, "berth.db is empty (0 bytes)")
	assert.Contains(t, last, "berth server --restore-latest --data "+s.data)
	assert.Equal(t, before, testutil.AppContainers(t, app), "no container was touched")

	s.launch(t, "--restore-latest")
	status, body := s.get(t, host, "/env/API_KEY")
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "k3y", strings.TrimSpace(body))
	out, _, code = s.berth(t, dir, "status")
	require.Zero(t, code)
	assert.Contains(t, out, app)
	assert.NotContains(t, out, "no apps deployed yet")
	aside, err := filepath.Glob(filepath.Join(s.data, "berth.db.corrupt-*"))
	require.NoError(t, err)
	assert.Len(t, aside, 1, "the emptied file is kept")
}

// serverProc is one `berth server` process on a server's data directory
// and edge address, so it can be stopped and started again on them.
type serverProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	logs   *testutil.SyncBuffer
}

// launch starts `berth server` on s's data directory and edge address and
// waits until it is ready; it is stopped when the test ends.
func (s *server) launch(t *testing.T, extra ...string) *serverProc {
	t.Helper()
	args := append([]string{"server", "--http", s.http, "--https", ""}, extra...)
	p := &serverProc{cmd: exec.Command(berthBin, args...), exited: make(chan struct{}), logs: &testutil.SyncBuffer{}}
	p.cmd.Env = s.env
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	require.NoError(t, p.cmd.Start())
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { p.stop(t) })
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.logs.String(), "berth server ready") {
		select {
		case <-p.exited:
			t.Fatalf("berth server exited:\n%s", p.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("berth server not ready in 30s:\n%s", p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

// stop stops the server by SIGINT, as a user would.
func (p *serverProc) stop(t *testing.T) {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Error("berth server did not stop in 20s")
	}
}

// removeApp removes what the app left on the shared engine.
func removeApp(t *testing.T, app string) {
	cli := testutil.DockerClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for id := range testutil.AppContainers(t, app) {
		_ = cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
	}
	_ = cli.NetworkRemove(ctx, "berth-"+app)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
