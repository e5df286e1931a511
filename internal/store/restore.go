package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrNoBackup: RestoreLatest found no backup that passes its checks.
var ErrNoBackup = errors.New("no usable backup")

// Restored is what RestoreLatest did.
type Restored struct {
	// From is the backup now in place as berth.db.
	From string
	// MovedAside is where the replaced berth.db went; "" when there was
	// none.
	MovedAside string
	// Skipped are newer backups that failed their checks, each "file: why".
	Skipped []string
}

// RestoreLatest puts the newest backup in dir/backups that passes the checks
// in place of dir/berth.db: SQLite's integrity check, berth's schema, and
// dir/secret.key opening its key check and every secret in it. The replaced
// berth.db (and its -wal and -shm files) is moved aside to
// berth.db.corrupt-<at>, never deleted. The backup is copied, fsynced and
// checked before anything is moved, so a failure leaves dir as it was. The
// caller must hold the data directory's lock.
func RestoreLatest(dir string, at time.Time) (Restored, error) {
	var r Restored
	dir, err := filepath.Abs(dir)
	if err != nil {
		return r, fmt.Errorf("restore state: %w", err)
	}
	bs, err := Backups(dir)
	if err != nil {
		return r, fmt.Errorf("restore state: %w", err)
	}
	if len(bs) == 0 {
		return r, fmt.Errorf("restore state: %s holds no backup: %w", filepath.Join(dir, BackupDir), ErrNoBackup)
	}
	key, err := readKey(dir)
	if err != nil {
		return r, fmt.Errorf("restore state: %w", err)
	}
	tmp := filepath.Join(dir, "."+DBFile+".restore")
	defer os.Remove(tmp)
	ctx := context.Background()
	for _, b := range bs {
		err := copyChecked(ctx, b, tmp, key)
		if err == nil {
			r.From = b
			break
		}
		r.Skipped = append(r.Skipped, filepath.Base(b)+": "+err.Error())
	}
	if r.From == "" {
		return r, fmt.Errorf("restore state: none of the %d backups in %s passes its checks (%s): %w",
			len(bs), filepath.Join(dir, BackupDir), strings.Join(r.Skipped, "; "), ErrNoBackup)
	}

	dbPath := filepath.Join(dir, DBFile)
	aside := dbPath + ".corrupt-" + at.UTC().Format("20060102T150405Z")
	// -wal and -shm keep their suffix, so the moved-aside file can still be
	// opened with its log for a post-mortem. Main file last: until it moves,
	// a crash leaves the old state as it was.
	for _, suffix := range []string{"-wal", "-shm", "-journal", ""} {
		err := os.Rename(dbPath+suffix, aside+suffix)
		switch {
		case err == nil:
			if suffix == "" {
				r.MovedAside = aside
			}
		case errors.Is(err, fs.ErrNotExist):
		default:
			return r, fmt.Errorf("restore state: move %s aside: %w", dbPath+suffix, err)
		}
	}
	if err := os.Rename(tmp, dbPath); err != nil {
		return r, fmt.Errorf("restore state: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return r, fmt.Errorf("restore state: %w", err)
	}
	return r, nil
}

// copyChecked copies the backup src to dst (0600, fsynced) and checks the
// copy: integrity, schema, and that key opens its secrets.
func copyChecked(ctx context.Context, src, dst string, key []byte) error {
	if err := copyFile(src, dst); err != nil {
		return err
	}
	db, err := openCopy(dst)
	if err != nil {
		return err
	}
	defer db.Close()
	name := filepath.Base(src)
	if err := verify(ctx, db, name); err != nil {
		return err
	}
	return checkSecrets(ctx, db, key, name)
}

// copyFile writes src's bytes to dst, mode 0600, and fsyncs it.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
