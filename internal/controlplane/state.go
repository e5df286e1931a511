package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/store"
)

// openState opens and verifies the state in cfg.DataDir, restoring the
// newest good backup first when cfg.RestoreLatest asks and the state fails
// its checks, and starts the rolling backups. It runs before anything looks
// at the engine, so a damaged state stops the start before any container is
// adopted, stopped or removed. The returned func stops the backups (taking a
// last one of changes not yet backed up) and closes the store.
func openState(ctx context.Context, cfg Config) (*store.Store, func(), error) {
	log := cfg.Logger.With("component", "state")
	if cfg.RestoreLatest {
		if err := restoreLatest(cfg.DataDir, log); err != nil {
			return nil, nil, err
		}
	}
	start := time.Now()
	st, err := store.Open(cfg.DataDir)
	if err != nil {
		return nil, nil, stateError(cfg.DataDir, err)
	}
	log.Debug("state verified", "took", time.Since(start).Round(time.Millisecond))
	// Backups outlive the daemon's ctx: the last one is taken after every
	// other goroutine has stopped writing.
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		st.RunBackups(bctx, store.BackupPolicy{Logger: log, Now: time.Now})
	}()
	// Run calls it when the control plane's work ends (so the next daemon
	// may start) and again on its way out; once is enough.
	return st, sync.OnceFunc(func() {
		cancel()
		<-done
		_ = st.Close()
	}), nil
}

// restoreLatest is --restore-latest: a state that passes its checks is kept
// (so the flag is safe to leave on), any other is replaced by the newest
// backup that passes them.
func restoreLatest(dir string, log *slog.Logger) error {
	bad := store.Check(dir)
	if bad == nil {
		log.Info("--restore-latest: the state passes its checks; nothing restored", "data", dir)
		return nil
	}
	if firstStart(dir) {
		// Nothing was ever there: a first start, which the flag, safe to
		// keep in a service unit, must not stop.
		log.Info("--restore-latest: no state and no backup yet (a first start); nothing restored", "data", dir)
		return nil
	}
	r, err := store.RestoreLatest(dir, time.Now())
	if err != nil {
		return fmt.Errorf("--restore-latest: %w", err)
	}
	log.Warn("state restored from a backup", "backup", r.From, "damaged_file_kept_as", r.MovedAside, "skipped", r.Skipped, "reason", bad)
	return nil
}

// firstStart reports whether dir shows no sign of a state ever kept there:
// no berth.db, no write-ahead log of one, no backup.
func firstStart(dir string) bool {
	db := filepath.Join(dir, store.DBFile)
	for _, p := range []string{db, db + "-wal"} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			return false
		}
	}
	bs, err := store.Backups(dir)
	return err == nil && len(bs) == 0
}

// stateError says why the state cannot be used, that nothing was touched,
// and the one command that restores it, on one line.
func stateError(dir string, err error) error {
	if !errors.Is(err, store.ErrCorrupt) && !errors.Is(err, store.ErrStateMissing) {
		return fmt.Errorf("open state in %s: %w", dir, err)
	}
	bs, _ := store.Backups(dir)
	switch {
	case len(bs) > 0 && errors.Is(err, store.ErrStateMissing):
		return fmt.Errorf("%w; no container was touched; restore the newest good backup (of %d in %s) with: berth server --restore-latest --data %s, or move %s aside to start with an empty state",
			err, len(bs), filepath.Join(dir, store.BackupDir), dir, filepath.Join(dir, store.BackupDir))
	case len(bs) > 0:
		return fmt.Errorf("%w; no container was touched; restore the newest good backup (of %d in %s) with: berth server --restore-latest --data %s (the damaged file is kept as %s.corrupt-TIME)",
			err, len(bs), filepath.Join(dir, store.BackupDir), dir, store.DBFile)
	}
	return fmt.Errorf("%w; no container was touched; there is no backup in %s: move %s aside to start with an empty state (running apps are then no longer managed)",
		err, filepath.Join(dir, store.BackupDir), filepath.Join(dir, store.DBFile))
}
