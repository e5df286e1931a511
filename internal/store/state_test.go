package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// populated returns a closed data directory whose state holds an app, a
// secret and enough events to span many pages.
func populated(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir)
	require.NoError(t, err)
	ctx := context.Background()
	putApp(t, s, "shop")
	require.NoError(t, s.SetSecrets(ctx, "shop", "web", map[string]string{"DB_PASSWORD": "hunter2"}, t0))
	require.NoError(t, s.withTx(ctx, func(tx *sql.Tx) error {
		for i := range 300 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO events (time, app, service, kind, message) VALUES (?, 'shop', 'web', 'deploy', ?)`,
				t0.UnixNano(), fmt.Sprintf("event %d %0200d", i, i)); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, s.Close())
	return dir
}

// corruptPage overwrites page n (1-based, 4096-byte pages) of path with
// garbage, as a torn write or a bad sector would.
func corruptPage(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	fi, err := f.Stat()
	require.NoError(t, err)
	require.Greater(t, fi.Size(), int64(n*4096), "the database is too small to corrupt page %d", n)
	garbage := bytes.Repeat([]byte{0xA5, 0x5A, 0xFF, 0x00}, 1024)
	_, err = f.WriteAt(garbage, int64(n-1)*4096)
	require.NoError(t, err)
}

func TestOpenRefusesDamagedState(t *testing.T) {
	random := make([]byte, 16384)
	_, _ = rand.Read(random)
	tests := []struct {
		name   string
		damage func(t *testing.T, db string)
		want   error
		says   string
	}{
		{name: "zero-length file", want: ErrCorrupt, says: "is empty (0 bytes)", damage: func(t *testing.T, db string) {
			require.NoError(t, os.Truncate(db, 0))
		}},
		{name: "garbage", want: ErrCorrupt, says: "not an SQLite database", damage: func(t *testing.T, db string) {
			require.NoError(t, os.WriteFile(db, random, 0o600))
		}},
		{name: "one corrupted page", want: ErrCorrupt, damage: func(t *testing.T, db string) {
			corruptPage(t, db, 3)
		}},
		{name: "cut short", want: ErrCorrupt, damage: func(t *testing.T, db string) {
			fi, err := os.Stat(db)
			require.NoError(t, err)
			require.NoError(t, os.Truncate(db, fi.Size()/2))
		}},
		{name: "directory in its place", want: ErrCorrupt, says: "not a regular file", damage: func(t *testing.T, db string) {
			require.NoError(t, os.Remove(db))
			require.NoError(t, os.Mkdir(db, 0o700))
		}},
		{name: "someone else's database", want: ErrCorrupt, says: "holds no berth state", damage: func(t *testing.T, db string) {
			require.NoError(t, os.Remove(db))
			plain, err := sql.Open("sqlite", dsnJournal(db, "DELETE"))
			require.NoError(t, err)
			_, err = plain.Exec(`CREATE TABLE notes (body TEXT)`)
			require.NoError(t, err)
			require.NoError(t, plain.Close())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := populated(t)
			db := filepath.Join(dir, DBFile)
			tt.damage(t, db)
			before := snapshot(t, dir)

			_, err := Open(dir)
			require.ErrorIs(t, err, tt.want)
			assert.Contains(t, err.Error(), tt.says)
			assert.Contains(t, err.Error(), db, "the error names the file")
			assert.Equal(t, before, snapshot(t, dir), "a refused state is left as it was")
			require.ErrorIs(t, Check(dir), tt.want)
		})
	}
}

// snapshot is the data directory's file names and contents (directories by
// name), to show nothing changed.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		require.NoError(t, err)
		if d.IsDir() {
			out[p] = "dir"
			return nil
		}
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		out[p] = fmt.Sprintf("%x", sha256.Sum256(b))
		return nil
	}))
	return out
}

func TestOpenMissingState(t *testing.T) {
	t.Run("nothing there is a first start", func(t *testing.T) {
		dir := t.TempDir()
		s := openStore(t, dir)
		putApp(t, s, "shop")
		require.NoError(t, s.Close())
		require.NoError(t, Check(dir))
		leftovers, err := filepath.Glob(filepath.Join(dir, ".*"))
		require.NoError(t, err)
		assert.Empty(t, leftovers, "no temp file is left")
	})
	t.Run("missing with backups left is an error", func(t *testing.T) {
		dir := populated(t)
		s := openStore(t, dir)
		_, err := s.Backup(context.Background(), t0, 5)
		require.NoError(t, err)
		require.NoError(t, s.Close())
		require.NoError(t, os.Remove(filepath.Join(dir, DBFile)))

		_, err = Open(dir)
		require.ErrorIs(t, err, ErrStateMissing)
		assert.NoFileExists(t, filepath.Join(dir, DBFile), "no empty state was created")
	})
	t.Run("missing key with secrets is an error", func(t *testing.T) {
		dir := populated(t)
		require.NoError(t, os.Remove(filepath.Join(dir, KeyFile)))
		_, err := Open(dir)
		require.ErrorIs(t, err, ErrKeyMismatch)
		require.ErrorIs(t, Check(dir), ErrKeyMismatch)
		assert.NoFileExists(t, filepath.Join(dir, KeyFile), "no new key was made")
	})
}

func TestBackupsRotate(t *testing.T) {
	dir := populated(t)
	s := openStore(t, dir)
	ctx := context.Background()
	var made []string
	for i := range 8 {
		p, err := s.Backup(ctx, t0.Add(time.Duration(i)*time.Minute), 5)
		require.NoError(t, err)
		made = append(made, p)
	}
	bs, err := Backups(dir)
	require.NoError(t, err)
	require.Equal(t, []string{made[7], made[6], made[5], made[4], made[3]}, bs, "the five newest, newest first")
	for _, b := range bs {
		fi, err := os.Stat(b)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode())
		require.NoError(t, verifyCopy(ctx, b))
	}
	leftovers, err := filepath.Glob(filepath.Join(dir, BackupDir, ".*"))
	require.NoError(t, err)
	assert.Empty(t, leftovers, "no temp file is left")
}

func TestRunBackupsDebounces(t *testing.T) {
	dir := populated(t)
	s := openStore(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var n int
	now := func() time.Time { n++; return t0.Add(time.Duration(n) * time.Second) }
	go func() {
		defer close(done)
		s.RunBackups(ctx, BackupPolicy{Keep: 5, Quiet: 300 * time.Millisecond, MaxDelay: 5 * time.Second, MinInterval: 10 * time.Millisecond, Now: now})
	}()
	count := func() int {
		bs, err := Backups(dir)
		require.NoError(t, err)
		return len(bs)
	}
	// No backup yet: one is taken at start.
	require.Eventually(t, func() bool { return count() == 1 }, 5*time.Second, 20*time.Millisecond)

	// A burst of writes makes one backup, after the writes pause.
	for i := range 50 {
		_, err := s.AddEvent(context.Background(), Event{Time: t0, App: "shop", Kind: "k", Message: fmt.Sprint(i)})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return count() == 2 }, 5*time.Second, 20*time.Millisecond)
	time.Sleep(time.Second)
	assert.Equal(t, 2, count(), "one burst, one backup")

	// A change not yet backed up when it stops is backed up then.
	_, err := s.AddEvent(context.Background(), Event{Time: t0, App: "shop", Kind: "k", Message: "last"})
	require.NoError(t, err)
	cancel()
	<-done
	assert.Equal(t, 3, count())
	bs, err := Backups(dir)
	require.NoError(t, err)
	db, err := openCopy(bs[0])
	require.NoError(t, err)
	defer db.Close()
	var last int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM events WHERE message = 'last'`).Scan(&last))
	assert.Equal(t, 1, last, "the newest backup holds the last write")
}

func TestRestoreLatest(t *testing.T) {
	ctx := context.Background()
	// Two good backups and a newer bad one, then berth.db emptied.
	dir := populated(t)
	s := openStore(t, dir)
	_, err := s.Backup(ctx, t0, 5)
	require.NoError(t, err)
	require.NoError(t, s.SetSecrets(ctx, "shop", "web", map[string]string{"API_KEY": "k2"}, t0))
	good, err := s.Backup(ctx, t0.Add(time.Minute), 5)
	require.NoError(t, err)
	bad, err := s.Backup(ctx, t0.Add(2*time.Minute), 5)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	corruptPage(t, bad, 3)
	db := filepath.Join(dir, DBFile)
	require.NoError(t, os.Truncate(db, 0))
	_, err = Open(dir)
	require.ErrorIs(t, err, ErrCorrupt)

	r, err := RestoreLatest(dir, t0.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, good, r.From, "the newest backup that passes its checks")
	require.Len(t, r.Skipped, 1)
	assert.Contains(t, r.Skipped[0], filepath.Base(bad))
	assert.Equal(t, db+".corrupt-20250301T130000Z", r.MovedAside)
	fi, err := os.Stat(r.MovedAside)
	require.NoError(t, err)
	assert.Zero(t, fi.Size(), "the damaged file is kept as it was")
	assert.FileExists(t, bad, "backups are never deleted by a restore")

	s = openStore(t, dir)
	vals, err := s.SecretValues(ctx, "shop", "web")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"DB_PASSWORD": "hunter2", "API_KEY": "k2"}, vals)
	apps, err := s.ListApps(ctx)
	require.NoError(t, err)
	require.Len(t, apps, 1)
}

func TestRestoreLatestRefuses(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) string {
		dir := populated(t)
		s := openStore(t, dir)
		_, err := s.Backup(ctx, t0, 5)
		require.NoError(t, err)
		require.NoError(t, s.Close())
		require.NoError(t, os.Truncate(filepath.Join(dir, DBFile), 0))
		return dir
	}
	tests := []struct {
		name  string
		spoil func(t *testing.T, dir string)
		want  error
	}{
		{name: "another key", want: ErrNoBackup, spoil: func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, KeyFile), bytes.Repeat([]byte{7}, keySize), 0o600))
		}},
		{name: "no key", want: ErrKeyMismatch, spoil: func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, KeyFile)))
		}},
		{name: "no backup", want: ErrNoBackup, spoil: func(t *testing.T, dir string) {
			require.NoError(t, os.RemoveAll(filepath.Join(dir, BackupDir)))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := setup(t)
			tt.spoil(t, dir)
			before := snapshot(t, dir)
			_, err := RestoreLatest(dir, t0)
			require.ErrorIs(t, err, tt.want)
			assert.Equal(t, before, snapshot(t, dir), "a refused restore changes nothing")
		})
	}
}

// TestRunBackupsUnderSteadyWrites: writes that never pause still get backed
// up (MaxDelay), but no more often than MinInterval.
func TestRunBackupsUnderSteadyWrites(t *testing.T) {
	dir := populated(t)
	s := openStore(t, dir)
	_, err := s.Backup(context.Background(), t0, 100)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var n int
	now := func() time.Time { n++; return t0.Add(time.Duration(n) * time.Second) }
	go func() {
		defer close(done)
		s.RunBackups(ctx, BackupPolicy{Keep: 100, Quiet: 200 * time.Millisecond, MaxDelay: 300 * time.Millisecond, MinInterval: time.Second, Now: now})
	}()
	// A write every 50 ms for 2.5 s: never quiet for 200 ms.
	for i := range 50 {
		_, err := s.AddEvent(context.Background(), Event{Time: t0, App: "shop", Kind: "k", Message: fmt.Sprint(i)})
		require.NoError(t, err)
		time.Sleep(50 * time.Millisecond)
	}
	bs, err := Backups(dir)
	require.NoError(t, err)
	taken := len(bs) - 1
	assert.GreaterOrEqual(t, taken, 1, "backed up although writes never paused")
	assert.LessOrEqual(t, taken, 3, "at most one backup a second")
	cancel()
	<-done
}
