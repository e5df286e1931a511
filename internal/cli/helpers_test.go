package cli

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
)

// fakeDaemon is a real HTTP server on a real unix socket that answers the
// endpoints a test registers, with canned answers the test checks the
// requests of.
type fakeDaemon struct {
	t    testing.TB
	mux  *http.ServeMux
	host string
}

func newFakeDaemon(t testing.TB) *fakeDaemon {
	t.Helper()
	// Short path: unix socket paths are limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "berth")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "berth.sock")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	d := &fakeDaemon{t: t, mux: http.NewServeMux(), host: "unix://" + sock}
	// Anything not registered is a request the CLI should not have sent.
	d.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected request %s %s", r.Method, r.URL)
		writeJSON(w, http.StatusNotFound, api.Error{Message: "unexpected", Code: "not_found"})
	})
	srv := httptest.NewUnstartedServer(d.mux)
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return d
}

func (d *fakeDaemon) handle(pattern string, h http.HandlerFunc) { d.mux.HandleFunc(pattern, h) }

// apps answers GET /v1/apps with these app names.
func (d *fakeDaemon) apps(names ...string) {
	d.handle("GET /v1/apps", func(w http.ResponseWriter, r *http.Request) {
		out := []api.AppSummary{}
		for _, n := range names {
			out = append(out, api.AppSummary{Name: n, Services: []string{"web"}})
		}
		writeJSON(w, http.StatusOK, out)
	})
}

// run runs the CLI against this daemon.
func (d *fakeDaemon) run(args ...string) result {
	d.t.Helper()
	return berth(d.t, append([]string{"--host", d.host}, args...)...)
}

// result is what one run of the CLI printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

func berth(t testing.TB, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Main(args, strings.NewReader(""), &stdout, &stderr)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// send writes one stream message and flushes it.
func send(w http.ResponseWriter, m api.Message) {
	_ = json.NewEncoder(w).Encode(m)
	w.(http.Flusher).Flush()
}

// writeSpec writes a berth.yaml into a new directory and returns its path.
func writeSpec(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "berth.yaml")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// decodeNDJSON parses every line of out as an api.Message.
func decodeNDJSON(t testing.TB, out string) []api.Message {
	t.Helper()
	var msgs []api.Message
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m api.Message
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		msgs = append(msgs, m)
	}
	return msgs
}
