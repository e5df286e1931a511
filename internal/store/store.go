package store

import (
	"context"
	"crypto/cipher"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// File names inside the data directory.
const (
	DBFile  = "berth.db"
	KeyFile = "secret.key"
)

// Errors callers test with errors.Is. They are always wrapped with what was
// being looked for.
var (
	// ErrNotFound: the app, service, revision, instance, secret or task does
	// not exist.
	ErrNotFound = errors.New("not found")
	// ErrAmbiguous: a task ID prefix matches more than one task.
	ErrAmbiguous = errors.New("ambiguous id")
	// ErrInvalid: a required field is empty or a value is not one the store
	// accepts (an unknown revision status, say).
	ErrInvalid = errors.New("invalid")
	// ErrKeyMismatch: secret.key is missing or is not the key the secrets in
	// berth.db were encrypted with. Open refuses to start rather than run
	// with secrets it cannot read.
	ErrKeyMismatch = errors.New("secret key does not match the database")
	// ErrDecrypt: one stored secret did not decrypt (it was tampered with, or
	// copied from another key).
	ErrDecrypt = errors.New("secret does not decrypt")
)

// busyTimeout is how long SQLite waits on a lock held by another process (a
// second daemon on the same directory, a backup tool) before SQLITE_BUSY. In
// one process writes are serialised by Store.mu and never wait on SQLite.
const busyTimeout = 10 * time.Second

// maxReadConns bounds the pool. In WAL mode readers never block the writer or
// each other, so a few connections let status queries run while a deploy
// writes; more buys nothing for a single-file database.
const maxReadConns = 8

// Store is berth's state in dir/berth.db. It is safe for concurrent use.
type Store struct {
	db  *sql.DB
	dir string
	// aead seals secret values under secret.key.
	aead cipher.AEAD
	// mu serialises write transactions: SQLite has one writer, and waiting
	// here instead of in SQLite's busy handler means concurrent goroutines
	// never see SQLITE_BUSY and wait in FIFO-ish order instead of polling.
	mu sync.Mutex
	// changed is signalled after every committed write (RunBackups).
	changed chan struct{}
}

// Open opens dir/berth.db, creating dir (0700), the database (0600) and
// dir/secret.key (32 random bytes, 0600) if needed, and brings the schema up
// to date. Existing files keep their modes.
//
// Nothing is taken for a first start but a directory without berth.db and
// without backups of it: an empty, unreadable or damaged berth.db is
// ErrCorrupt, and a missing one with backups left is ErrStateMissing, both
// returned before anything is written (RestoreLatest repairs them). An
// existing database passes SQLite's integrity check before it is used. Open
// fails with ErrKeyMismatch when secret.key is missing or wrong for a
// database that already holds a key check, rather than start with secrets
// it cannot read.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("open store: %w: empty data directory", ErrInvalid)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: create data directory: %w", err)
	}
	dbPath := filepath.Join(dir, DBFile)
	fresh, err := stateFile(dir)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if fresh {
		if err := create(dir); err != nil {
			return nil, fmt.Errorf("open store: create %s: %w", dbPath, err)
		}
	}

	// Verify before the first write: the journal mode pragma alone would
	// rewrite the header of a database that is not berth's.
	if err := verifyFile(dbPath); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	db, err := sql.Open("sqlite", dsn(dbPath))
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dbPath, err)
	}
	db.SetMaxOpenConns(maxReadConns)
	db.SetMaxIdleConns(maxReadConns)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)

	s := &Store{db: db, dir: dir, changed: make(chan struct{}, 1)}
	ctx := context.Background()
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", dbPath, err)
	}
	if err := s.loadKey(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	// Opening is not a change worth a backup: only later writes are.
	select {
	case <-s.changed:
	default:
	}
	return s, nil
}

// create makes a new berth.db in dir crash-safely: the schema and the key
// check are written to a temp file, which is fsynced and renamed into place.
// So berth.db, once it exists, always holds berth's schema, and an empty
// berth.db can only be damage, never a first start cut short.
func create(dir string) error {
	tmp := filepath.Join(dir, "."+DBFile+".new")
	for _, p := range []string{tmp, tmp + "-journal", tmp + "-wal", tmp + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	// SQLite would create the file with the umask's mode (usually 0644), and
	// its -wal and -shm files copy the main file's mode, so create it first.
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	defer os.Remove(tmp)
	// A rollback journal, not WAL: when the handle closes everything is in
	// the one file that is renamed.
	db, err := sql.Open("sqlite", dsnJournal(tmp, "DELETE"))
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	s := &Store{db: db, dir: dir, changed: make(chan struct{}, 1)}
	ctx := context.Background()
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return err
	}
	if err := s.loadKey(ctx); err != nil {
		db.Close()
		return err
	}
	if err := db.Close(); err != nil {
		return err
	}
	if err := syncFile(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, DBFile)); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncFile fsyncs the file at path.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// dsn builds the modernc.org/sqlite data source name. The pragmas run on every
// new connection of the pool; _txlock=immediate makes every transaction take
// the write lock at BEGIN, so a transaction that reads then writes can never
// fail to upgrade its lock.
func dsn(path string) string { return dsnJournal(path, "WAL") }

// dsnJournal is dsn with another journal mode; "" leaves the file's own.
func dsnJournal(path, journal string) string {
	q := url.Values{}
	q.Add("_txlock", "immediate")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	if journal != "" {
		q.Add("_pragma", "journal_mode("+journal+")")
	}
	// NORMAL is the WAL mode's usual setting: no corruption on any crash,
	// and nothing lost when the daemon crashes; only an OS crash or power
	// cut can roll back the last commits (their containers are re-adopted
	// from labels). FULL would fsync every commit, ~10x slower per write.
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	// Overwrite deleted rows so an old (sealed) secret does not linger in
	// free pages.
	q.Add("_pragma", "secure_delete(ON)")
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	return u.String()
}

// Close closes the database. The store must not be used afterwards.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Dir is the data directory the store was opened in (absolute).
func (s *Store) Dir() string { return s.dir }

// withTx runs fn in one write transaction, committing when fn returns nil.
func (s *Store) withTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return nil
}

// scanner is the part of *sql.Row and *sql.Rows the row decoders need.
type scanner interface {
	Scan(dest ...any) error
}

// nanos encodes t as UTC unix nanoseconds, the zero time as NULL.
func nanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// fromNanos decodes what nanos stored.
func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// orNil returns b, or nil when it is empty, so an empty blob round-trips as
// nil whichever way it was stored.
func orNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// isForeignKey reports whether err is a foreign key violation: a row that
// names an app which does not exist.
func isForeignKey(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// appMissing turns a foreign key violation into ErrNotFound naming the app.
func appMissing(err error, app string) error {
	if isForeignKey(err) {
		return fmt.Errorf("app %q: %w (store the app first)", app, ErrNotFound)
	}
	return err
}

// limitArg maps "no limit" (<= 0) to SQLite's LIMIT -1.
func limitArg(limit int) int {
	if limit <= 0 {
		return -1
	}
	return limit
}

// required returns ErrInvalid naming the first empty field; pairs are
// name, value.
func required(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			return fmt.Errorf("%w: empty %s", ErrInvalid, pairs[i])
		}
	}
	return nil
}
