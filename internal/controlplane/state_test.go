package controlplane_test

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/controlplane"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/store"
	"github.com/berth-dev/berth/internal/testutil"
)

// TestDamagedStateTouchesNothing: a daemon whose berth.db is damaged (one
// corrupted page, then emptied) refuses to start with the restore command,
// and the app's containers, the serving ones and the frozen rollback
// target alike, are left exactly as they were; --restore-latest then brings
// the app, its routes and its secrets back, adopting the same containers.
func TestDamagedStateTouchesNothing(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "state")
	ctx := context.Background()
	_, err := d.client.SecretSet(ctx, app, "web", map[string]string{"TOKEN": "tok-1"})
	require.NoError(t, err)
	d.mustDeploy(appSpec(app, img, "    secrets: [TOKEN]\n    env: {VERSION: v1}\n"))
	// A second revision leaves the first frozen as the rollback target: the
	// containers the issue saw stopped before the daemon failed.
	d.mustDeploy(appSpec(app, img, "    secrets: [TOKEN]\n    env: {VERSION: v2}\n"))
	_, body, err := d.get(app, "web", "/")
	require.NoError(t, err)
	require.Equal(t, "hello from v2", strings.TrimSpace(body))
	d.stop() // takes the last backup

	before := d.podStates(app)
	require.Contains(t, stateValues(before), string(runtime.PodSuspended), "the previous revision is frozen: %v", before)
	require.Contains(t, stateValues(before), string(runtime.PodRunning))
	dbPath := filepath.Join(d.dataDir, store.DBFile)

	t.Run("one corrupted page", func(t *testing.T) {
		corruptTable(t, dbPath, "revisions")
		err := startFails(t, d.dataDir, d.fake)
		assert.ErrorIs(t, err, store.ErrCorrupt)
		assert.Contains(t, err.Error(), "integrity")
		assert.Contains(t, err.Error(), "berth server --restore-latest --data "+d.dataDir)
		assert.Equal(t, before, d.podStates(app), "no container was touched")
	})
	t.Run("emptied", func(t *testing.T) {
		require.NoError(t, os.Truncate(dbPath, 0))
		err := startFails(t, d.dataDir, d.fake)
		assert.ErrorIs(t, err, store.ErrCorrupt)
		assert.Contains(t, err.Error(), dbPath+" is empty (0 bytes)")
		assert.Contains(t, err.Error(), "no container was touched")
		assert.Contains(t, err.Error(), "berth server --restore-latest --data "+d.dataDir)
		assert.NotContains(t, err.Error(), "\n")
		assert.Equal(t, before, d.podStates(app), "no container was touched")
	})

	// --restore-latest: the newest backup is back, the app is routed again
	// by the same containers, the damaged file is kept, the secret decrypts.
	d2 := d.again(func(c *controlplane.Config) { c.RestoreLatest = true })
	code, body, err := d2.get(app, "web", "/")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "hello from v2", strings.TrimSpace(body))
	_, body, err = d2.get(app, "web", "/env/TOKEN")
	require.NoError(t, err)
	assert.Equal(t, "tok-1", strings.TrimSpace(body))
	st := d2.status(app)
	assert.Equal(t, 2, st.Revision)
	assert.Equal(t, "running", st.State)
	after := d2.podStates(app)
	for id, state := range before {
		if state == string(runtime.PodRunning) {
			assert.Equal(t, string(runtime.PodRunning), after[id], "serving container %s was adopted, not replaced", id)
		}
	}
	aside, err := filepath.Glob(dbPath + ".corrupt-*")
	require.NoError(t, err)
	assert.NotEmpty(t, aside, "the damaged file is kept")
	assert.Contains(t, d2.logs.String(), "state restored from a backup")

	// The next deploy works, with the restored secret.
	d2.mustDeploy(appSpec(app, img, "    secrets: [TOKEN]\n    env: {VERSION: v3}\n"))
	_, body, err = d2.get(app, "web", "/")
	require.NoError(t, err)
	assert.Equal(t, "hello from v3", strings.TrimSpace(body))
	_, body, err = d2.get(app, "web", "/env/TOKEN")
	require.NoError(t, err)
	assert.Equal(t, "tok-1", strings.TrimSpace(body))
}

// startFails runs a daemon on dataDir and eng that must fail to start, and
// returns its error.
func startFails(t *testing.T, dataDir string, eng runtime.PodEngine) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	cfg := controlplane.Config{
		DataDir:  dataDir,
		Engine:   eng,
		HTTPAddr: "127.0.0.1:0",
		Domain:   "localhost",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Ready:    func(controlplane.Addrs) { t.Error("the daemon started on a damaged state") },
	}
	go func() { done <- controlplane.Run(ctx, cfg) }()
	select {
	case err := <-done:
		require.Error(t, err)
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon neither started nor failed in 30s")
		return nil
	}
}

func stateValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// corruptTable overwrites the root page of table in the (closed) database
// at path with garbage, as a torn write or a bad sector would.
func corruptTable(t *testing.T, path, table string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	require.NoError(t, err)
	var root, pageSize int64
	require.NoError(t, db.QueryRow(`SELECT rootpage FROM sqlite_master WHERE name = ?`, table).Scan(&root))
	require.NoError(t, db.QueryRow(`PRAGMA page_size`).Scan(&pageSize))
	require.NoError(t, db.Close())
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	garbage := []byte(strings.Repeat("\xa5\x5a\xff\x00", int(pageSize)/4))
	_, err = f.WriteAt(garbage, (root-1)*pageSize)
	require.NoError(t, err)
}

// TestRestoreLatestOnFirstStart: --restore-latest is safe to keep in a
// service unit (README), so it must not stop the very first start, of a
// data directory with no state and no backup yet: that is a fresh start,
// not a damaged state with nothing to restore.
func TestRestoreLatestOnFirstStart(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "", func(c *controlplane.Config) { c.RestoreLatest = true })
	st, err := d.client.Status(context.Background(), "")
	require.NoError(t, err)
	assert.Empty(t, st.Apps)
	assert.FileExists(t, filepath.Join(d.dataDir, store.DBFile))
	assert.NotContains(t, d.logs.String(), "state restored from a backup")
}
