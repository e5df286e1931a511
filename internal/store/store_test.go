package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// t0 has nanoseconds so the tests prove times round-trip exactly.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

// newStore opens a store in a fresh directory, closed when the test ends.
func newStore(tb testing.TB) *Store {
	tb.Helper()
	return openStore(tb, tb.TempDir())
}

// openStore opens dir, closed when the test ends (closing twice is fine).
func openStore(tb testing.TB, dir string) *Store {
	tb.Helper()
	s, err := Open(dir)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// putApp stores an app named name.
func putApp(tb testing.TB, s *Store, name string) App {
	tb.Helper()
	a := App{Name: name, SpecYAML: "app: " + name + "\n", SpecFile: "/src/" + name + "/berth.yaml", CreatedAt: t0, UpdatedAt: t0}
	require.NoError(tb, s.PutApp(context.Background(), a))
	return a
}

func TestOpenCreatesFilesWithPrivateModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "berth")
	s := openStore(t, dir)
	assert.Equal(t, dir, s.Dir())

	tests := []struct {
		name string
		path string
		mode os.FileMode
	}{
		{name: "data dir", path: dir, mode: 0o700 | os.ModeDir},
		{name: "database", path: filepath.Join(dir, DBFile), mode: 0o600},
		{name: "wal", path: filepath.Join(dir, DBFile+"-wal"), mode: 0o600},
		{name: "key", path: filepath.Join(dir, KeyFile), mode: 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fi, err := os.Stat(tt.path)
			require.NoError(t, err)
			assert.Equal(t, tt.mode, fi.Mode())
		})
	}

	key, err := os.ReadFile(filepath.Join(dir, KeyFile))
	require.NoError(t, err)
	assert.Len(t, key, keySize)
	// No temp key file is left behind.
	leftovers, err := filepath.Glob(filepath.Join(dir, "."+KeyFile+".tmp-*"))
	require.NoError(t, err)
	assert.Empty(t, leftovers)
}

func TestOpenSetsPragmas(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	tests := []struct {
		pragma string
		want   string
	}{
		{pragma: "journal_mode", want: "wal"},
		{pragma: "foreign_keys", want: "1"},
		{pragma: "busy_timeout", want: fmt.Sprint(busyTimeout.Milliseconds())},
		{pragma: "synchronous", want: "1"},
	}
	for _, tt := range tests {
		t.Run(tt.pragma, func(t *testing.T) {
			var got string
			require.NoError(t, s.db.QueryRowContext(ctx, "PRAGMA "+tt.pragma).Scan(&got))
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) string
	}{
		{name: "empty dir", setup: func(*testing.T) string { return "" }},
		{name: "dir is a file", setup: func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "file")
			require.NoError(t, os.WriteFile(p, nil, 0o600))
			return p
		}},
		{name: "not a database", setup: func(t *testing.T) string {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, DBFile), []byte("this is not sqlite, not at all, no way"), 0o600))
			return dir
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(tt.setup(t))
			if s != nil {
				s.Close()
			}
			require.Error(t, err)
		})
	}
}

func TestSchemaVersion(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openStore(t, dir)
	var v int
	require.NoError(t, s.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v))
	assert.Equal(t, len(migrations), v)
	var rows int
	require.NoError(t, s.db.QueryRowContext(ctx, `SELECT count(*) FROM schema_version`).Scan(&rows))
	assert.Equal(t, 1, rows)

	t.Run("reopen does not migrate again", func(t *testing.T) {
		putApp(t, s, "shop")
		require.NoError(t, s.Close())
		s2 := openStore(t, dir)
		_, err := s2.GetApp(ctx, "shop")
		require.NoError(t, err)
		require.NoError(t, s2.Close())
	})

	t.Run("newer schema is refused", func(t *testing.T) {
		s3 := openStore(t, dir)
		_, err := s3.db.ExecContext(ctx, `UPDATE schema_version SET version = ?`, len(migrations)+1)
		require.NoError(t, err)
		require.NoError(t, s3.Close())
		_, err = Open(dir)
		require.ErrorContains(t, err, "upgrade berth")
	})
}

// TestReopenPersistence writes one of everything, reopens the directory and
// reads it all back.
func TestReopenPersistence(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)

	app := putApp(t, s, "shop")
	svc := Service{App: "shop", Name: "web", CurrentRevision: 1, Paused: true, Instances: 3, UpdatedAt: t0}
	require.NoError(t, s.PutService(ctx, svc))
	rev := Revision{App: "shop", Service: "web", Number: 1, Spec: []byte(`{"name":"web"}`), Image: "shop-web:1.4",
		ImageID: "sha256:abc", Status: RevisionActive, Message: "ok", CreatedAt: t0}
	require.NoError(t, s.PutRevision(ctx, rev))
	inst := Instance{ID: "i-1", App: "shop", Service: "web", Revision: 1, Role: "instance", ContainerID: "c1",
		State: "healthy", HostAddr: "127.0.0.1:32768", Restarts: 2, LastExitCode: 137, OOMKilled: true,
		LastError: "oom", CreatedAt: t0, UpdatedAt: t0.Add(time.Second)}
	require.NoError(t, s.PutInstance(ctx, inst))
	evID, err := s.AddEvent(ctx, Event{Time: t0, App: "shop", Service: "web", Kind: "deploy", Message: "started"})
	require.NoError(t, err)
	require.NoError(t, s.SetSecrets(ctx, "shop", "web", map[string]string{"DATABASE_URL": "postgres://u:p@db/shop"}, t0))
	task := Task{ID: "t-abcdef", App: "shop", Service: "web", Name: "migrate", Kind: "release",
		Command: []string{"./server", "migrate"}, Revision: 1, ContainerID: "c2", Status: "succeeded",
		Output: []byte("done\n"), StartedAt: t0, FinishedAt: t0.Add(time.Minute), Message: "exit 0"}
	require.NoError(t, s.PutTask(ctx, task))
	next, err := s.NextRevisionNumber(ctx, "shop", "web")
	require.NoError(t, err)
	require.Equal(t, 2, next)
	require.NoError(t, s.Close())

	s = openStore(t, dir)
	gotApp, err := s.GetApp(ctx, "shop")
	require.NoError(t, err)
	assert.Equal(t, app, gotApp)
	gotSvc, err := s.GetService(ctx, "shop", "web")
	require.NoError(t, err)
	assert.Equal(t, svc, gotSvc)
	gotRev, err := s.GetRevision(ctx, "shop", "web", 1)
	require.NoError(t, err)
	assert.Equal(t, rev, gotRev)
	gotInst, err := s.GetInstance(ctx, "i-1")
	require.NoError(t, err)
	assert.Equal(t, inst, gotInst)
	events, err := s.ListEvents(ctx, "shop", 0, 0)
	require.NoError(t, err)
	assert.Equal(t, []Event{{ID: evID, Time: t0, App: "shop", Service: "web", Kind: "deploy", Message: "started"}}, events)
	values, err := s.SecretValues(ctx, "shop", "web")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"DATABASE_URL": "postgres://u:p@db/shop"}, values)
	gotTask, err := s.GetTask(ctx, "t-abcdef")
	require.NoError(t, err)
	assert.Equal(t, task, gotTask)
	// The allocated number 2 survived the restart although nothing used it.
	next, err = s.NextRevisionNumber(ctx, "shop", "web")
	require.NoError(t, err)
	assert.Equal(t, 3, next)
}

func TestTimesAreReturnedInUTC(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	zone := time.FixedZone("UTC+5", 5*60*60)
	local := time.Date(2025, 3, 1, 17, 0, 0, 42, zone)
	require.NoError(t, s.PutApp(ctx, App{Name: "shop", CreatedAt: local, UpdatedAt: time.Time{}}))

	got, err := s.GetApp(ctx, "shop")
	require.NoError(t, err)
	assert.Equal(t, time.UTC, got.CreatedAt.Location())
	assert.True(t, got.CreatedAt.Equal(local))
	assert.Equal(t, time.Date(2025, 3, 1, 12, 0, 0, 42, time.UTC), got.CreatedAt)
	assert.True(t, got.UpdatedAt.IsZero(), "the zero time round-trips as zero")
}

// TestConcurrentWriters hammers one store from 8 goroutines with every kind
// of write; under -race, and with no SQLITE_BUSY.
func TestConcurrentWriters(t *testing.T) {
	const (
		writers = 8
		rounds  = 12
	)
	s := newStore(t)
	ctx := context.Background()
	putApp(t, s, "shop")

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		numbers []int
		errs    = make(chan error, writers*rounds*8)
	)
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				id := fmt.Sprintf("i-%d-%d", w, r)
				at := t0.Add(time.Duration(r) * time.Second)
				errs <- s.PutInstance(ctx, Instance{ID: id, App: "shop", Service: "web", Revision: 1, Role: "instance", State: "running", CreatedAt: at, UpdatedAt: at})
				_, err := s.AddEvent(ctx, Event{Time: at, App: "shop", Service: "web", Kind: "test", Message: id})
				errs <- err
				errs <- s.SetSecrets(ctx, "shop", "web", map[string]string{fmt.Sprintf("K%d", w): id}, at)
				errs <- s.PutService(ctx, Service{App: "shop", Name: fmt.Sprintf("svc-%d", w), Instances: r, UpdatedAt: at})
				errs <- s.PutTask(ctx, Task{ID: "t-" + id, App: "shop", Kind: "oneoff", Status: "running", StartedAt: at})
				n, err := s.NextRevisionNumber(ctx, "shop", "web")
				errs <- err
				mu.Lock()
				numbers = append(numbers, n)
				mu.Unlock()
				// Reads interleave with the writes (not every round: under
				// -race the transpiled SQLite is slow).
				if r%3 == 0 {
					_, err = s.ListInstances(ctx, "shop", "web")
					errs <- err
					_, err = s.SecretValues(ctx, "shop", "web")
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	insts, err := s.ListInstances(ctx, "shop", "web")
	require.NoError(t, err)
	assert.Len(t, insts, writers*rounds)
	events, err := s.ListEvents(ctx, "shop", 0, 0)
	require.NoError(t, err)
	assert.Len(t, events, writers*rounds)
	keys, err := s.ListSecrets(ctx, "shop", "web")
	require.NoError(t, err)
	assert.Len(t, keys, writers)
	tasks, err := s.ListTasks(ctx, "shop", 0)
	require.NoError(t, err)
	assert.Len(t, tasks, writers*rounds)

	// Every allocation got its own number, and none was skipped.
	seen := map[int]bool{}
	for _, n := range numbers {
		assert.False(t, seen[n], "revision number %d handed out twice", n)
		seen[n] = true
	}
	for n := 1; n <= writers*rounds; n++ {
		assert.True(t, seen[n], "revision number %d never handed out", n)
	}
}

func TestContextCancelled(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.Error(t, s.PutApp(ctx, App{Name: "shop"}))
	_, err := s.GetApp(context.Background(), "shop")
	require.ErrorIs(t, err, ErrNotFound, "a cancelled write stores nothing")
}
