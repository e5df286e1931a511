package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// BackupDir is where rolling backups of berth.db are kept, inside the data
// directory.
const BackupDir = "backups"

// Backup file names are backupPrefix + UTC time in backupStamp + ".db": the
// fixed-width stamp makes name order time order.
const (
	backupPrefix = "berth-"
	backupSuffix = ".db"
	backupStamp  = "20060102T150405.000000000Z"
)

// BackupPolicy says when RunBackups backs up and how many backups it keeps.
// Zero values take the defaults below.
type BackupPolicy struct {
	// Keep is how many backups are kept, newest first (default 5).
	Keep int
	// Quiet is how long writes must pause before a backup is taken, so a
	// burst of writes (a deploy) makes one backup (default 2s).
	Quiet time.Duration
	// MaxDelay bounds how long a backup waits for that pause under
	// continuous writes (default 1m).
	MaxDelay time.Duration
	// MinInterval is the least time between two backups, so writes that
	// keep trickling in (health changes, events) cost one copy of the file
	// per interval at most (default 10s).
	MinInterval time.Duration
	// Now names the backups (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Default backup policy.
const (
	DefaultBackupKeep        = 5
	DefaultBackupQuiet       = 2 * time.Second
	DefaultBackupMaxDelay    = time.Minute
	DefaultBackupMinInterval = 10 * time.Second
)

func (p BackupPolicy) withDefaults() BackupPolicy {
	if p.Keep <= 0 {
		p.Keep = DefaultBackupKeep
	}
	if p.Quiet <= 0 {
		p.Quiet = DefaultBackupQuiet
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultBackupMaxDelay
	}
	if p.MinInterval <= 0 {
		p.MinInterval = DefaultBackupMinInterval
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	return p
}

// RunBackups backs the state up after it changes until ctx ends, then once
// more if a change is not yet backed up. It runs beside the writers, never on
// their path: a write only signals, and the backup (a read transaction) does
// not block writes. When no backup exists yet it takes one at once, so a
// state that passed Open's checks is kept from the start.
func (s *Store) RunBackups(ctx context.Context, p BackupPolicy) {
	p = p.withDefaults()
	var last time.Time
	backup := func(ctx context.Context) {
		start := time.Now()
		last = start
		path, err := s.Backup(ctx, p.Now(), p.Keep)
		if err != nil {
			p.Logger.Error("state backup failed; the previous backups are kept", "err", err)
			return
		}
		p.Logger.Debug("state backed up", "file", path, "took", time.Since(start).Round(time.Millisecond))
	}
	if bs, err := Backups(s.dir); err == nil && len(bs) == 0 {
		backup(ctx)
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var dirtySince time.Time // zero: everything is backed up
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			if !dirtySince.IsZero() {
				// The last changes before a stop; bounded so a stop is
				// never held up for long.
				fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				backup(fctx)
				cancel()
			}
			return
		case <-s.changed:
			now := time.Now()
			if dirtySince.IsZero() {
				dirtySince = now
			}
			wait := min(p.Quiet, dirtySince.Add(p.MaxDelay).Sub(now))
			timer.Reset(max(wait, 0))
		case <-timer.C:
			if wait := p.MinInterval - time.Since(last); wait > 0 {
				timer.Reset(wait)
				continue
			}
			dirtySince = time.Time{}
			backup(ctx)
		}
	}
}

// Backup writes a consistent copy of the state to
// dir/backups/berth-<at>.db, verified by SQLite's integrity check, fsynced
// and renamed into place, then removes all but the newest keep backups. A
// copy that fails is removed and the older backups stay. It returns the
// backup's path.
func (s *Store) Backup(ctx context.Context, at time.Time, keep int) (string, error) {
	bdir := filepath.Join(s.dir, BackupDir)
	if err := os.MkdirAll(bdir, 0o700); err != nil {
		return "", fmt.Errorf("back up state: %w", err)
	}
	name := backupPrefix + at.UTC().Format(backupStamp) + backupSuffix
	final := filepath.Join(bdir, name)
	tmp := filepath.Join(bdir, "."+name+".tmp")
	_ = os.Remove(tmp)
	defer os.Remove(tmp)
	// VACUUM INTO writes a compact snapshot from one read transaction: in
	// WAL mode writers carry on meanwhile.
	if _, err := s.db.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		return "", fmt.Errorf("back up state to %s: %w", tmp, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return "", fmt.Errorf("back up state: %w", err)
	}
	if err := verifyCopy(ctx, tmp); err != nil {
		return "", fmt.Errorf("back up state: the copy is bad: %w", err)
	}
	if err := syncFile(tmp); err != nil {
		return "", fmt.Errorf("back up state: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("back up state: %w", err)
	}
	if err := syncDir(bdir); err != nil {
		return "", fmt.Errorf("back up state: %w", err)
	}
	bs, err := Backups(s.dir)
	if err != nil {
		return final, err
	}
	for _, old := range bs[min(keep, len(bs)):] {
		if err := os.Remove(old); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return final, fmt.Errorf("remove old backup: %w", err)
		}
	}
	return final, nil
}

// Backups lists the backups in dir/backups, newest first.
func Backups(dir string) ([]string, error) {
	bdir := filepath.Join(dir, BackupDir)
	ents, err := os.ReadDir(bdir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasPrefix(n, backupPrefix) && strings.HasSuffix(n, backupSuffix) {
			out = append(out, filepath.Join(bdir, n))
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out, nil
}

// openCopy opens a backup or a copy of one read-only and as immutable: no
// lock, no -wal or -shm file next to it, nothing written.
func openCopy(path string) (*sql.DB, error) {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: "mode=ro&immutable=1"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// verifyCopy runs the integrity and schema checks on a copy of the state.
func verifyCopy(ctx context.Context, path string) error {
	db, err := openCopy(path)
	if err != nil {
		return err
	}
	defer db.Close()
	return verify(ctx, db, path)
}
