// Package store is berth's state: one embedded SQLite file (berth.db, through
// modernc.org/sqlite, no cgo) and the key that encrypts secrets in it
// (secret.key), both in the daemon's data directory.
//
// It owns the persistence of apps, services, revisions, instances, events,
// secrets and tasks: the schema and its migrations, transactions, the
// encryption of secret values at rest, and the file modes of what it writes.
// It must not touch the engine (runtime), the edge or the network: it never
// starts containers, routes requests or talks to anything but its own files.
//
// It also guards the state's integrity: Open tells a first start (no
// berth.db, no backups) from damage (an empty, unreadable or corrupt file is
// ErrCorrupt, never a fresh start) and runs SQLite's integrity check before
// anything is written; RunBackups keeps rolling backups in dir/backups;
// RestoreLatest puts the newest good one back, moving the bad file aside.
//
// Rules every method follows:
//
//   - Writes are deterministic: callers pass IDs and times. The store never
//     calls time.Now and never makes up an ID (the only randomness is the key
//     created by Open and the per-value GCM nonces).
//   - Every write runs in one transaction, and writes are serialised inside
//     the process, so concurrent callers never see SQLITE_BUSY.
//   - Times are stored as UTC unix nanoseconds and returned in UTC; the zero
//     time is stored as NULL and comes back as the zero time.
//   - A missing row is ErrNotFound (wrapped, test with errors.Is).
//   - Secret values never appear in plain text in the database, in errors or
//     in logs.
package store
