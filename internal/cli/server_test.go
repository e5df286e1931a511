package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/aws/awsdaemon"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/controlplane"
	"github.com/berth-dev/berth/internal/store"
)

// stubDaemon replaces the daemon for one test and returns the Config it
// was started with. Not for parallel tests: it swaps package variables.
func stubDaemon(t *testing.T, root bool, runErr error) *controlplane.Config {
	t.Helper()
	var got controlplane.Config
	oldRun, oldSupervise, oldRoot := runDaemon, supervise, isRoot
	t.Cleanup(func() { runDaemon, supervise, isRoot = oldRun, oldSupervise, oldRoot })
	isRoot = func() bool { return root }
	// In process: the supervisor would start this test binary as the daemon.
	supervise = func(c *cli, ctx context.Context, cfg controlplane.Config) error { return runDaemon(ctx, cfg) }
	runDaemon = func(ctx context.Context, cfg controlplane.Config) error {
		got = cfg
		return runErr
	}
	return &got
}

func TestServerConfig(t *testing.T) {
	for _, k := range []string{"BERTH_DATA", "BERTH_API", "BERTH_HTTP", "BERTH_HTTPS", "BERTH_DOMAIN", "BERTH_UI"} {
		if v, ok := os.LookupEnv(k); ok {
			t.Cleanup(func() { os.Setenv(k, v) })
			os.Unsetenv(k)
		}
	}
	dataDir := client.DefaultDataDir()
	tests := []struct {
		name string
		root bool
		env  map[string]string
		args []string
		want controlplane.Config
	}{
		{name: "defaults", want: controlplane.Config{
			DataDir: dataDir, API: "unix://" + filepath.Join(dataDir, "berth.sock"),
			HTTPAddr: "127.0.0.1:8080", HTTPSAddr: "127.0.0.1:8443", UIAddr: "127.0.0.1:8081", Domain: "localhost",
		}},
		{name: "root defaults", root: true, want: controlplane.Config{
			DataDir: dataDir, API: "unix://" + filepath.Join(dataDir, "berth.sock"),
			HTTPAddr: ":80", HTTPSAddr: ":443", UIAddr: "127.0.0.1:8081", Domain: "localhost",
		}},
		{name: "root with addresses given", root: true, args: []string{"--http", "127.0.0.1:8000", "--https", "127.0.0.1:8001"}, want: controlplane.Config{
			DataDir: dataDir, API: "unix://" + filepath.Join(dataDir, "berth.sock"),
			HTTPAddr: "127.0.0.1:8000", HTTPSAddr: "127.0.0.1:8001", UIAddr: "127.0.0.1:8081", Domain: "localhost",
		}},
		{name: "flags", args: []string{"--data", "/srv/berth", "--api", "tcp://0.0.0.0:7070", "--http", ":9080", "--https", ":9443", "--domain", "example.test"},
			want: controlplane.Config{DataDir: "/srv/berth", API: "tcp://0.0.0.0:7070", HTTPAddr: ":9080", HTTPSAddr: ":9443", UIAddr: "127.0.0.1:8081", Domain: "example.test"}},
		{name: "environment", env: map[string]string{"BERTH_DATA": "/e", "BERTH_API": "tcp://127.0.0.1:1", "BERTH_HTTP": ":1", "BERTH_HTTPS": ":2", "BERTH_DOMAIN": "e.test"},
			want: controlplane.Config{DataDir: "/e", API: "tcp://127.0.0.1:1", HTTPAddr: ":1", HTTPSAddr: ":2", UIAddr: "127.0.0.1:8081", Domain: "e.test"}},
		{name: "flags beat environment", env: map[string]string{"BERTH_DATA": "/e", "BERTH_HTTPS": ":2"}, args: []string{"--data", "/f", "--https", ":3"},
			want: controlplane.Config{DataDir: "/f", API: "unix:///f/berth.sock", HTTPAddr: "127.0.0.1:8080", HTTPSAddr: ":3", UIAddr: "127.0.0.1:8081", Domain: "localhost"}},
		{name: "https flag empty disables", root: true, env: map[string]string{"BERTH_HTTPS": ":2"}, args: []string{"--data", "/d", "--https", ""},
			want: controlplane.Config{DataDir: "/d", API: "unix:///d/berth.sock", HTTPAddr: ":80", HTTPSAddr: "", UIAddr: "127.0.0.1:8081", Domain: "localhost"}},
		{name: "https env empty disables", root: true, env: map[string]string{"BERTH_HTTPS": ""}, args: []string{"--data", "/d"},
			want: controlplane.Config{DataDir: "/d", API: "unix:///d/berth.sock", HTTPAddr: ":80", HTTPSAddr: "", UIAddr: "127.0.0.1:8081", Domain: "localhost"}},
		{name: "restore latest", args: []string{"--data", "/d", "--restore-latest"},
			want: controlplane.Config{DataDir: "/d", API: "unix:///d/berth.sock", HTTPAddr: "127.0.0.1:8080", HTTPSAddr: "127.0.0.1:8443", UIAddr: "127.0.0.1:8081", Domain: "localhost", RestoreLatest: true}},
		{name: "ui flag", args: []string{"--data", "/d", "--ui", "127.0.0.1:9090"},
			want: controlplane.Config{DataDir: "/d", API: "unix:///d/berth.sock", HTTPAddr: "127.0.0.1:8080", HTTPSAddr: "127.0.0.1:8443", UIAddr: "127.0.0.1:9090", Domain: "localhost"}},
		{name: "ui environment", env: map[string]string{"BERTH_UI": ":9091"}, args: []string{"--data", "/d"},
			want: controlplane.Config{DataDir: "/d", API: "unix:///d/berth.sock", HTTPAddr: "127.0.0.1:8080", HTTPSAddr: "127.0.0.1:8443", UIAddr: ":9091", Domain: "localhost"}},
		{name: "ui flag empty disables", env: map[string]string{"BERTH_UI": ":9091"}, args: []string{"--data", "/d", "--ui", ""},
			want: controlplane.Config{DataDir: "/d", API: "unix:///d/berth.sock", HTTPAddr: "127.0.0.1:8080", HTTPSAddr: "127.0.0.1:8443", Domain: "localhost"}},
		{name: "ui env empty disables", env: map[string]string{"BERTH_UI": ""}, args: []string{"--data", "/d"},
			want: controlplane.Config{DataDir: "/d", API: "unix:///d/berth.sock", HTTPAddr: "127.0.0.1:8080", HTTPSAddr: "127.0.0.1:8443", Domain: "localhost"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			got := stubDaemon(t, tt.root, nil)
			res := berth(t, append([]string{"server"}, tt.args...)...)
			require.Equal(t, 0, res.code, res.stderr)
			require.NotNil(t, got.Logger)
			got.Logger = nil
			assert.Equal(t, awsdaemon.Environments{}, got.Environments, "berth server reaches AWS environments")
			got.Environments = nil
			assert.Equal(t, tt.want, *got)
		})
	}
}

func TestServerFailsWithTheDaemonsReason(t *testing.T) {
	stubDaemon(t, false, errors.New("edge cannot listen on --http 127.0.0.1:8080: address already in use (pick another address with --http or BERTH_HTTP)"))
	res := berth(t, "server", "--data", t.TempDir())
	assert.Equal(t, 1, res.code)
	assert.Equal(t, "berth: edge cannot listen on --http 127.0.0.1:8080: address already in use (pick another address with --http or BERTH_HTTP)\n", res.stderr)
}

// TestServerStopsOnInterrupt sends the test process a real SIGINT, which
// Main turns into the end of the daemon's context: a clean stop, exit 0.
func TestServerStopsOnInterrupt(t *testing.T) {
	stubDaemon(t, false, nil)
	runDaemon = func(ctx context.Context, cfg controlplane.Config) error {
		require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGINT))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
			return errors.New("SIGINT did not stop the daemon")
		}
	}
	res := berth(t, "server", "--data", t.TempDir())
	assert.Equal(t, 0, res.code, res.stderr)
}

// TestServerRefusesDamagedState runs the real daemon on an emptied
// berth.db: it refuses on one line that names the file and the command that
// restores it, before binding a port or looking at the engine.
func TestServerRefusesDamagedState(t *testing.T) {
	// The daemon in process: the supervisor would start this test binary,
	// which is not berth, as the daemon (cmd/berth's tests run the real
	// binary under its supervisor).
	oldSupervise := supervise
	t.Cleanup(func() { supervise = oldSupervise })
	supervise = func(c *cli, ctx context.Context, cfg controlplane.Config) error { return runDaemon(ctx, cfg) }
	dir := t.TempDir()
	st, err := store.Open(dir)
	require.NoError(t, err)
	_, err = st.Backup(context.Background(), time.Now(), store.DefaultBackupKeep)
	require.NoError(t, err)
	require.NoError(t, st.Close())
	require.NoError(t, os.Truncate(filepath.Join(dir, store.DBFile), 0))

	res := berth(t, "server", "--data", dir, "--http", "127.0.0.1:0", "--https", "")
	assert.Equal(t, 1, res.code)
	assert.Equal(t, 1, strings.Count(res.stderr, "\n"), "one line: %s", res.stderr)
	assert.Contains(t, res.stderr, filepath.Join(dir, store.DBFile)+" is empty (0 bytes)")
	assert.Contains(t, res.stderr, "no container was touched")
	assert.Contains(t, res.stderr, "berth server --restore-latest --data "+dir)
	fi, err := os.Stat(filepath.Join(dir, store.DBFile))
	require.NoError(t, err)
	assert.Zero(t, fi.Size(), "the damaged file is left for the restore")
}
