package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Errors of a state that cannot be trusted. Open returns them before anything
// reads or writes the state, so the caller can stop before touching what the
// state describes (containers, networks).
var (
	// ErrCorrupt: berth.db exists but is empty, is not an SQLite database,
	// fails SQLite's integrity check or holds no berth state. It is never
	// taken for a fresh start.
	ErrCorrupt = errors.New("state database is damaged")
	// ErrStateMissing: berth.db does not exist but the data directory shows
	// it did (backups, or a write-ahead log without its database).
	ErrStateMissing = errors.New("state database is missing")
)

// sqliteHeader opens every SQLite database file.
var sqliteHeader = []byte("SQLite format 3\x00")

// stateFile says whether dir/berth.db exists and looks like a database,
// without creating or changing anything. fresh is true only when the file
// does not exist and nothing shows it ever did: that alone is a first start.
func stateFile(dir string) (fresh bool, err error) {
	path := filepath.Join(dir, DBFile)
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, err := os.Lstat(path + "-wal"); err == nil {
			return false, fmt.Errorf("%s is missing but its write-ahead log %s-wal is there: %w", path, DBFile, ErrStateMissing)
		}
		bs, err := Backups(dir)
		if err != nil {
			return false, err
		}
		if len(bs) > 0 {
			return false, fmt.Errorf("%s is missing but %s holds %d backups of it: %w",
				path, filepath.Join(dir, BackupDir), len(bs), ErrStateMissing)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("cannot read %s: %w (check the file's owner and mode)", path, err)
	case !fi.Mode().IsRegular():
		return false, fmt.Errorf("%s is not a regular file (%s): %w", path, fi.Mode().Type(), ErrCorrupt)
	case fi.Size() == 0:
		return false, fmt.Errorf("%s is empty (0 bytes): %w", path, ErrCorrupt)
	}
	// Read and write access, as the daemon needs: a file it may not write
	// is reported here, not at the first deploy.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return false, fmt.Errorf("cannot open %s: %w (check the file's owner and mode)", path, err)
	}
	defer f.Close()
	head := make([]byte, len(sqliteHeader))
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head, sqliteHeader) {
		return false, fmt.Errorf("%s is not an SQLite database (%d bytes, no SQLite header): %w", path, fi.Size(), ErrCorrupt)
	}
	return false, nil
}

// verify runs SQLite's integrity check over db and makes sure it holds berth's
// schema at a version this berth understands. name is the file named in
// errors.
func verify(ctx context.Context, db *sql.DB, name string) error {
	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check(20)`)
	if err != nil {
		return damaged(name, err)
	}
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return damaged(name, err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return damaged(name, err)
	}
	rows.Close()
	if len(problems) > 0 {
		return fmt.Errorf("%s fails SQLite's integrity check (%s): %w", name, strings.Join(problems, "; "), ErrCorrupt)
	}
	var version int
	err = db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&version)
	if err != nil {
		return fmt.Errorf("%s holds no berth state (no schema version): %w", name, ErrCorrupt)
	}
	if version > len(migrations) {
		return fmt.Errorf("%s: database schema version %d is newer than this berth understands (%d): upgrade berth",
			name, version, len(migrations))
	}
	return nil
}

// damaged reports an SQLite error met while reading name: corruption and
// "not a database" are ErrCorrupt, anything else (I/O, permissions) as is.
func damaged(name string, err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CORRUPT:
			return fmt.Errorf("%s fails SQLite's integrity check (%v): %w", name, err, ErrCorrupt)
		case sqlite3.SQLITE_NOTADB:
			return fmt.Errorf("%s is not an SQLite database (%v): %w", name, err, ErrCorrupt)
		}
	}
	return fmt.Errorf("read %s: %w", name, err)
}

// Check verifies the state in dir as Open would, without creating, migrating
// or changing it: the file, SQLite's integrity check, the schema, and that
// secret.key is the key its secrets were encrypted with. A directory without
// berth.db is ErrStateMissing.
func Check(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("check state: %w", err)
	}
	fresh, err := stateFile(dir)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, DBFile)
	if fresh {
		return fmt.Errorf("%s does not exist: %w", path, ErrStateMissing)
	}
	db, err := openPlain(path)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	if err := verify(ctx, db, path); err != nil {
		return err
	}
	key, err := readKey(dir)
	if err != nil {
		return err
	}
	return checkSecrets(ctx, db, key, path)
}

// openPlain opens the database at path through one connection that changes
// nothing by itself (its journal mode is left as it is).
func openPlain(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsnJournal(path, ""))
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// verifyFile runs verify on the database at path (openPlain).
func verifyFile(path string) error {
	db, err := openPlain(path)
	if err != nil {
		return err
	}
	defer db.Close()
	return verify(context.Background(), db, path)
}

// readKey reads dir/secret.key for a check; a missing or short key is
// ErrKeyMismatch.
func readKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, KeyFile)
	key, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s is missing: restore the original key file (without it no secret can be read): %w", path, ErrKeyMismatch)
	case err != nil:
		return nil, fmt.Errorf("read secret key: %w", err)
	case len(key) != keySize:
		return nil, fmt.Errorf("%s holds %d bytes, want %d: restore the original key file: %w", path, len(key), keySize, ErrKeyMismatch)
	}
	return key, nil
}

// checkSecrets verifies that key opens db's key check and every stored
// secret, so a state is never taken whose secrets are lost.
func checkSecrets(ctx context.Context, db *sql.DB, key []byte, name string) error {
	aead, err := newAEAD(key)
	if err != nil {
		return err
	}
	var check []byte
	err = db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'key_check'`).Scan(&check)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return damaged(name, err)
	}
	if check != nil {
		if _, err := open(aead, check, []byte(adKeyCheck)); err != nil {
			return fmt.Errorf("%s is not the key %s was encrypted with: %w", KeyFile, name, ErrKeyMismatch)
		}
	}
	rows, err := db.QueryContext(ctx, `SELECT app, service, key, sealed FROM secrets`)
	if err != nil {
		return damaged(name, err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var app, svc, k string
		var sealed []byte
		if err := rows.Scan(&app, &svc, &k, &sealed); err != nil {
			return damaged(name, err)
		}
		if _, err := open(aead, sealed, secretAD(app, svc, k)); err != nil {
			return fmt.Errorf("%s: secret %s of %s/%s does not decrypt with %s: %w", name, k, app, svc, KeyFile, ErrDecrypt)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return damaged(name, err)
	}
	if check == nil && n > 0 {
		return fmt.Errorf("%s holds %d secrets but no key check: %w", name, n, ErrKeyMismatch)
	}
	return nil
}
