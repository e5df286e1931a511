package main_test

// berth server restarted, upgraded and killed under load: the supervisor
// keeps the listening sockets, so no connection is refused and an upgrade
// loses no request (internal/supervisor, internal/cli/server_supervise.go).

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/testutil"
)

// supervised is `berth server` started from its own copy of the binary (so
// a test may replace the file), with its process.
type supervised struct {
	*server
	bin    string
	cmd    *exec.Cmd
	logs   *testutil.SyncBuffer
	exited chan struct{}
}

func startSupervised(t *testing.T) *supervised {
	t.Helper()
	testutil.RequireDocker(t)
	data, err := os.MkdirTemp("", "berth-sup-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(data) })
	bin := filepath.Join(t.TempDir(), "berth")
	copyFile(t, berthBin, bin)
	s := &supervised{server: &server{data: data, http: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))}, bin: bin, logs: &testutil.SyncBuffer{}, exited: make(chan struct{})}
	s.env = append(os.Environ(), "BERTH_DATA="+data, "BERTH_HOST=", "BERTH_TOKEN=")
	s.cmd = exec.Command(bin, "server", "--http", s.http, "--https", "")
	s.cmd.Env = s.env
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	require.NoError(t, s.cmd.Start())
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.exited:
		case <-time.After(40 * time.Second):
			_ = s.cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("server log:\n%s", s.logs.String())
		}
	})
	s.waitLog(t, "berth server ready", 1)
	return s
}

// waitLog waits until the log holds line n times.
func (s *supervised) waitLog(t *testing.T, line string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(s.logs.String(), line) < n {
		select {
		case <-s.exited:
			t.Fatalf("berth server exited:\n%s", s.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q (%d) in 30s:\n%s", line, n, s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *supervised) pid(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.data, file))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return pid
}

// deployApp deploys the test app and returns its host.
func (s *supervised) deployApp(t *testing.T) string {
	t.Helper()
	img := testutil.TestAppImage(t)
	app := testutil.UniqueName(t, "rs")
	dir := t.TempDir()
	spec := fmt.Sprintf("app: %s\nservices:\n  web:\n    image: %s\n    port: 8080\n    health: {path: /healthz}\n", app, img)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "berth.yaml"), []byte(spec), 0o644))
	// The engine's view last: the test may have stopped the server.
	t.Cleanup(func() { removeApp(t, app) })
	t.Cleanup(func() { s.berth(t, dir, "destroy", "--app", app) })
	out, stderr, code := s.berth(t, dir, "deploy")
	require.Zero(t, code, "deploy: %s %s", out, stderr)
	host := "web." + app + ".localhost"
	status, _ := s.get(t, host, "/")
	require.Equal(t, http.StatusOK, status)
	return host
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	tmp := to + ".new"
	require.NoError(t, os.WriteFile(tmp, b, 0o755))
	require.NoError(t, os.Rename(tmp, to)) // a new file at the path, as install(1) does
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// TestServerUpgradeLosesNoRequest replaces the binary and sends SIGHUP to
// the supervisor under 200 requests a second: every request is answered,
// the daemon is a new process running the new file, the supervisor kept
// its pid (server.pid stays valid), and SIGINT then stops both.
func TestServerUpgradeLosesNoRequest(t *testing.T) {
	s := startSupervised(t)
	host := s.deployApp(t)
	supPID, oldDaemon := s.pid(t, "server.pid"), s.pid(t, "daemon.pid")
	require.Equal(t, s.cmd.Process.Pid, supPID)

	load := testutil.StartLoad("http://"+s.http+"/", host, 200)
	// A slow request in flight: it finishes in the old daemon, which
	// lets the new one start meanwhile.
	slow := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.http+"/sleep?d=4s", nil)
		req.Host = host
		resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
		if err != nil {
			slow <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	time.Sleep(1500 * time.Millisecond)
	copyFile(t, berthBin, s.bin) // the "new" binary
	began := time.Now()
	require.NoError(t, syscall.Kill(supPID, syscall.SIGHUP))
	s.waitLog(t, "berth server upgraded", 1)
	took := time.Since(began)
	assert.Less(t, took, 3*time.Second, "the new daemon serves before the old one's slow request is done")
	assert.Equal(t, "200 slept", <-slow, "the request in flight finished in the old daemon")
	res := load.Stop()
	t.Logf("upgrade under 200 req/s: %d answered, %d failed, upgrade took %s, slowest request %s", res.OK, res.Failed, took.Round(time.Millisecond), res.MaxLatency.Round(time.Millisecond))
	assert.Zero(t, res.Failed, "failed requests: %v", res.Errors)
	assert.Greater(t, res.OK, int64(500))

	newDaemon := s.pid(t, "daemon.pid")
	assert.NotEqual(t, oldDaemon, newDaemon, "the daemon was restarted")
	deadline := time.Now().Add(10 * time.Second)
	for alive(oldDaemon) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	assert.False(t, alive(oldDaemon), "the old daemon exited once its requests were done")
	assert.Contains(t, s.logs.String(), "berth server stopped; containers keep running", "it stopped in order")
	assert.Equal(t, supPID, s.pid(t, "server.pid"), "the supervisor keeps its pid across the upgrade")
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", supPID))
	require.NoError(t, err)
	assert.Equal(t, s.bin, exe, "the supervisor runs the new file, not the replaced one")
	exe, err = os.Readlink(fmt.Sprintf("/proc/%d/exe", newDaemon))
	require.NoError(t, err)
	assert.Equal(t, s.bin, exe, "so does the daemon")
	out, stderr, code := s.berth(t, t.TempDir(), "status")
	require.Zero(t, code, "%s %s", out, stderr)

	// SIGINT (or SIGTERM) stops the daemon, then the supervisor.
	require.NoError(t, s.cmd.Process.Signal(os.Interrupt))
	select {
	case <-s.exited:
	case <-time.After(40 * time.Second):
		t.Fatal("berth server did not stop on SIGINT")
	}
	assert.Zero(t, s.cmd.ProcessState.ExitCode())
	assert.False(t, alive(newDaemon), "no daemon left behind")
	assert.NoFileExists(t, filepath.Join(s.data, "berth.sock"))
	assert.NoFileExists(t, filepath.Join(s.data, "server.pid"))
}

// TestServerDaemonKilledIsRestarted kills the daemon with SIGKILL under
// 200 requests a second: the supervisor starts another at once, no
// connection is refused, only requests the dead daemon held fail, and the
// service answers again within seconds. A supervisor killed outright takes
// its daemon with it.
func TestServerDaemonKilledIsRestarted(t *testing.T) {
	s := startSupervised(t)
	host := s.deployApp(t)
	daemon := s.pid(t, "daemon.pid")

	load := testutil.StartLoad("http://"+s.http+"/", host, 200)
	time.Sleep(1500 * time.Millisecond)
	killed := time.Now()
	require.NoError(t, syscall.Kill(daemon, syscall.SIGKILL))
	// A request sent now waits in the accept queue for the next daemon.
	req, err := http.NewRequest(http.MethodGet, "http://"+s.http+"/", nil)
	require.NoError(t, err)
	req.Host = host
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	back := time.Since(killed)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Less(t, back, 5*time.Second, "the service answers again within seconds")
	time.Sleep(1500 * time.Millisecond)
	res := load.Stop()
	t.Logf("daemon killed under 200 req/s: %d answered, %d failed (%d refused), answering again %s after the kill, slowest request %s; failures: %v",
		res.OK, res.Failed, res.Refused, back.Round(time.Millisecond), res.MaxLatency.Round(time.Millisecond), res.Errors)
	assert.Zero(t, res.Refused, "no connection refused")
	assert.LessOrEqual(t, res.Failed, int64(25), "only the requests in flight in the killed daemon fail")
	assert.Contains(t, s.logs.String(), "daemon exited; restarting it")
	assert.NotEqual(t, daemon, s.pid(t, "daemon.pid"))

	// The supervisor killed outright: its daemon stops too (no orphan
	// holding the state's lock).
	daemon = s.pid(t, "daemon.pid")
	require.NoError(t, s.cmd.Process.Kill())
	<-s.exited
	deadline := time.Now().Add(30 * time.Second)
	for alive(daemon) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	assert.False(t, alive(daemon), "the daemon outlived its supervisor")
}
