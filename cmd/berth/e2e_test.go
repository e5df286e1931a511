package main_test

// End-to-end tests of the real binary: `berth server` as a process, the CLI
// as a process, the real Docker Engine, real HTTP through the edge.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/testutil"
)

var berthBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "berth-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	berthBin = filepath.Join(dir, "berth")
	build := exec.Command("go", "build", "-o", berthBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build berth:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is `berth server` running as a child process.
type server struct {
	data string
	http string
	env  []string
}

func startServer(t *testing.T, extra ...string) *server {
	t.Helper()
	testutil.RequireDocker(t)
	data, err := os.MkdirTemp("", "berth-e2e-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(data) })
	s := &server{data: data, http: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))}
	s.env = append(os.Environ(), "BERTH_DATA="+data, "BERTH_HOST=", "BERTH_TOKEN=")
	args := append([]string{"server", "--http", s.http, "--https", ""}, extra...)
	cmd := exec.Command(berthBin, args...)
	cmd.Env = s.env
	logs := &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if strings.Contains(logs.String(), "berth server ready") {
			return s
		}
		select {
		case <-exited:
			t.Fatalf("berth server exited:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("berth server not ready in 30s:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// berth runs the CLI and returns stdout, stderr and the exit code.
func (s *server) berth(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, berthBin, args...)
	cmd.Env, cmd.Dir = s.env, dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return out.String(), errb.String(), code
}

func (s *server) get(t *testing.T, host, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+s.http+path, nil)
	require.NoError(t, err)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestCLIEndToEnd(t *testing.T) {
	img := testutil.TestAppImage(t)
	s := startServer(t)
	app := testutil.UniqueName(t, "e2e")
	host := "web." + app + ".localhost"
	dir := t.TempDir()
	write := func(extra string) {
		spec := fmt.Sprintf("app: %s\nservices:\n  web:\n    image: %s\n    port: 8080\n    health: {path: /healthz}\n    secrets: [API_KEY]\n%s", app, img, extra)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "berth.yaml"), []byte(spec), 0o644))
	}
	t.Cleanup(func() { s.berth(t, dir, "destroy", "--app", app) })

	// The API socket is private to its owner.
	fi, err := os.Stat(filepath.Join(s.data, "berth.sock"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	// Secrets first, then the first deploy.
	write("    env: {VERSION: one}\n")
	_, stderr, code := s.berth(t, dir, "secret", "set", "web", "API_KEY=k3y-value-123")
	require.Zero(t, code, stderr)
	out, stderr, code := s.berth(t, dir, "deploy")
	require.Zero(t, code, "deploy failed: %s %s", out, stderr)
	for _, phase := range []string{"start", "healthy", "switch", "done"} {
		assert.Contains(t, out, "==> "+phase)
	}
	assert.Contains(t, out, "http://"+host+":")
	status, body := s.get(t, host, "/")
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "hello from one", strings.TrimSpace(body))
	_, body = s.get(t, host, "/env/API_KEY")
	assert.Equal(t, "k3y-value-123", strings.TrimSpace(body))

	// status --json is machine-readable and never shows secret values.
	out, _, code = s.berth(t, dir, "status", "--json")
	require.Zero(t, code)
	assert.NotContains(t, out, "k3y-value-123")
	var st api.Status
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.Len(t, st.Apps, 1)
	assert.Equal(t, "running", st.Apps[0].Services[0].State)
	out, _, code = s.berth(t, dir, "secret", "ls", "web")
	require.Zero(t, code)
	assert.Contains(t, out, "API_KEY")
	assert.NotContains(t, out, "k3y-value-123")

	// A second deploy, then a rollback.
	write("    env: {VERSION: two}\n")
	out, stderr, code = s.berth(t, dir, "deploy")
	require.Zero(t, code, "%s %s", out, stderr)
	_, body = s.get(t, host, "/")
	assert.Equal(t, "hello from two", strings.TrimSpace(body))
	out, _, code = s.berth(t, dir, "revisions", "web")
	require.Zero(t, code)
	assert.Contains(t, out, "previous")
	out, stderr, code = s.berth(t, dir, "rollback", "web")
	require.Zero(t, code, "%s %s", out, stderr)
	_, body = s.get(t, host, "/")
	assert.Equal(t, "hello from one", strings.TrimSpace(body))

	// Scale, logs.
	_, stderr, code = s.berth(t, dir, "scale", "web=2")
	require.Zero(t, code, stderr)
	out, _, code = s.berth(t, dir, "logs", "web")
	require.Zero(t, code)
	assert.Contains(t, out, "listening on")

	// Pause answers 503, resume serves again.
	_, stderr, code = s.berth(t, dir, "pause", "web")
	require.Zero(t, code, stderr)
	status, _ = s.get(t, host, "/")
	assert.Equal(t, http.StatusServiceUnavailable, status)
	_, stderr, code = s.berth(t, dir, "resume", "web")
	require.Zero(t, code, stderr)
	status, _ = s.get(t, host, "/")
	assert.Equal(t, http.StatusOK, status)

	// A failing deploy exits non-zero with the instance's last lines, and
	// the previous revision keeps serving.
	write("    env: {CRASH: \"1\"}\n")
	out, stderr, code = s.berth(t, dir, "deploy")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "exited with code 1")
	assert.Contains(t, out+stderr, "crashing on purpose")
	_, body = s.get(t, host, "/")
	assert.Equal(t, "hello from one", strings.TrimSpace(body))

	// Destroy removes everything: the host is unknown again.
	_, stderr, code = s.berth(t, dir, "destroy", "--app", app)
	require.Zero(t, code, stderr)
	status, _ = s.get(t, host, "/")
	assert.Equal(t, http.StatusNotFound, status)
}

func TestCLIBadInput(t *testing.T) {
	s := startServer(t)
	dir := t.TempDir()
	tests := []struct {
		name    string
		spec    string
		args    []string
		wantErr string
	}{
		{"malformed yaml", "app: x\nservices: [\n", []string{"deploy"}, "berth.yaml:"},
		{"unknown key", "app: x\nservices:\n  web:\n    image: a\n    colour: red\n", []string{"deploy"}, `berth.yaml:5: services.web: unknown key "colour"`},
		{"wrong type", "app: x\nservices:\n  web:\n    image: a\n    port: http\n", []string{"deploy"}, "services.web.port"},
		{"negative memory", "app: x\nservices:\n  web:\n    image: a\n    memory: -1MiB\n", []string{"deploy"}, "services.web.memory"},
		{"bad app name", "app: Shop!\nservices:\n  web:\n    image: a\n", []string{"deploy"}, "berth.yaml:1: app"},
		{"image the engine lacks", "app: x\nservices:\n  web:\n    image: berth-test/absent:1\n", []string{"deploy"}, "berth-test/absent:1"},
		{"bad secret name", "app: x\nservices:\n  web:\n    image: a\n", []string{"secret", "set", "web", "9LIVES=x"}, "9LIVES"},
		{"bad scale form", "app: x\nservices:\n  web:\n    image: a\n", []string{"scale", "web"}, "SERVICE=N"},
		{"missing spec file", "", []string{"deploy", "-f", "nope.yaml"}, "nope.yaml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.spec != "" {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "berth.yaml"), []byte(tc.spec), 0o644))
			}
			_, stderr, code := s.berth(t, dir, tc.args...)
			assert.Equal(t, 1, code)
			assert.Contains(t, stderr, tc.wantErr)
			assert.Equal(t, 1, strings.Count(strings.TrimSpace(stderr), "\n")+1, "one line: %q", stderr)
		})
	}
	// Nothing was created by any of it.
	out, _, code := s.berth(t, dir, "status", "--json")
	require.Zero(t, code)
	var st api.Status
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	for _, a := range st.Apps {
		assert.Empty(t, a.Services, "app %s", a.Name)
	}
}

func TestDaemonNotRunningMessage(t *testing.T) {
	cmd := exec.Command(berthBin, "status")
	cmd.Env = append(os.Environ(), "BERTH_HOST=unix:///nonexistent/berth.sock")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	require.Error(t, err)
	assert.Equal(t, "berth: cannot reach the berth daemon at unix:///nonexistent/berth.sock: is it running? Start it with \"berth server\"\n", errb.String())
}

func TestServerPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	data := t.TempDir()
	cmd := exec.Command(berthBin, "server", "--http", ln.Addr().String(), "--https", "")
	cmd.Env = append(os.Environ(), "BERTH_DATA="+data)
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "--http "+ln.Addr().String())
	assert.Contains(t, string(out), "address already in use")
}

func TestTCPAPIRequiresTLSAndToken(t *testing.T) {
	port := testutil.FreePort(t)
	s := startServer(t, "--api", fmt.Sprintf("tcp://127.0.0.1:%d", port))
	host := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	token, err := os.ReadFile(filepath.Join(s.data, "api-token"))
	require.NoError(t, err)
	fi, err := os.Stat(filepath.Join(s.data, "api-token"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	ca := filepath.Join(s.data, "api-cert.pem")

	s.env = append(s.env, "BERTH_HOST="+host, "BERTH_CA="+ca, "BERTH_TOKEN="+strings.TrimSpace(string(token)))
	_, stderr, code := s.berth(t, t.TempDir(), "status")
	assert.Zero(t, code, stderr)

	s.env = append(s.env, "BERTH_TOKEN=wrong")
	_, stderr, code = s.berth(t, t.TempDir(), "status")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "token")

	// Plain HTTP to the TLS port gets nothing useful.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/v1/status", port))
	if err == nil {
		defer resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	}
}

func TestHTTPSWithLocalCA(t *testing.T) {
	img := testutil.TestAppImage(t)
	httpsAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	s := startServer(t, "--https", httpsAddr)
	app := testutil.UniqueName(t, "tls")
	dir := t.TempDir()
	spec := fmt.Sprintf("app: %s\nservices:\n  web:\n    image: %s\n    port: 8080\n    health: {path: /healthz}\n", app, img)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "berth.yaml"), []byte(spec), 0o644))
	t.Cleanup(func() { s.berth(t, dir, "destroy", "--app", app) })
	out, stderr, code := s.berth(t, dir, "deploy")
	require.Zero(t, code, "%s %s", out, stderr)

	pem, _, code := s.berth(t, dir, "ca", "export")
	require.Zero(t, code)
	require.Contains(t, pem, "BEGIN CERTIFICATE")
	caFile := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(caFile, []byte(pem), 0o644))

	// curl, a real client, over HTTP/2 with the exported root.
	host := "web." + app + ".localhost"
	_, port, _ := net.SplitHostPort(httpsAddr)
	curl := exec.Command("curl", "-sS", "--http2", "--cacert", caFile, "--resolve", host+":"+port+":127.0.0.1",
		"-o", "/dev/null", "-w", "%{http_code} %{http_version}", "https://"+host+":"+port+"/")
	res, err := curl.CombinedOutput()
	require.NoError(t, err, string(res))
	assert.Equal(t, "200 2", string(res))
}
