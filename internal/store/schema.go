package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// migrations are applied in order; schema_version holds how many have run.
// Never edit one that has shipped: append a new one.
//
// Children of an app reference apps(name) ON DELETE CASCADE so DeleteApp is
// one statement. Three tables deliberately do not:
//   - secrets, because `berth secret set` must work before the first deploy
//     stores the app (DeleteApp removes them explicitly);
//   - events, which outlive the app they describe;
//   - revision_seq, so revision numbers are never reused, not even after the
//     app is destroyed and deployed again (like ECS task definition revisions).
var migrations = []string{
	// 1: initial schema.
	`
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value BLOB NOT NULL
) STRICT;

CREATE TABLE apps (
	name       TEXT PRIMARY KEY,
	spec_yaml  TEXT NOT NULL,
	spec_file  TEXT NOT NULL,
	created_at INTEGER,
	updated_at INTEGER
) STRICT;

CREATE TABLE services (
	app              TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
	name             TEXT NOT NULL,
	current_revision INTEGER NOT NULL,
	paused           INTEGER NOT NULL,
	instances        INTEGER NOT NULL,
	updated_at       INTEGER,
	PRIMARY KEY (app, name)
) STRICT;

CREATE TABLE revisions (
	app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
	service    TEXT NOT NULL,
	number     INTEGER NOT NULL,
	spec       BLOB NOT NULL,
	image      TEXT NOT NULL,
	image_id   TEXT NOT NULL,
	status     TEXT NOT NULL,
	message    TEXT NOT NULL,
	created_at INTEGER,
	PRIMARY KEY (app, service, number)
) STRICT;

CREATE TABLE revision_seq (
	app     TEXT NOT NULL,
	service TEXT NOT NULL,
	last    INTEGER NOT NULL,
	PRIMARY KEY (app, service)
) STRICT;

CREATE TABLE instances (
	id             TEXT PRIMARY KEY,
	app            TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
	service        TEXT NOT NULL,
	revision       INTEGER NOT NULL,
	role           TEXT NOT NULL,
	container_id   TEXT NOT NULL,
	state          TEXT NOT NULL,
	host_addr      TEXT NOT NULL,
	restarts       INTEGER NOT NULL,
	last_exit_code INTEGER NOT NULL,
	oom_killed     INTEGER NOT NULL,
	last_error     TEXT NOT NULL,
	created_at     INTEGER,
	updated_at     INTEGER
) STRICT;
CREATE INDEX instances_by_service ON instances (app, service);

CREATE TABLE events (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	time    INTEGER,
	app     TEXT NOT NULL,
	service TEXT NOT NULL,
	kind    TEXT NOT NULL,
	message TEXT NOT NULL
) STRICT;
CREATE INDEX events_by_app ON events (app, id);

CREATE TABLE secrets (
	app        TEXT NOT NULL,
	service    TEXT NOT NULL,
	key        TEXT NOT NULL,
	sealed     BLOB NOT NULL,
	updated_at INTEGER,
	PRIMARY KEY (app, service, key)
) STRICT;

CREATE TABLE tasks (
	id          TEXT PRIMARY KEY,
	app         TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
	service     TEXT NOT NULL,
	name        TEXT NOT NULL,
	kind        TEXT NOT NULL,
	command     TEXT NOT NULL,
	revision    INTEGER NOT NULL,
	container_id TEXT NOT NULL,
	status      TEXT NOT NULL,
	exit_code   INTEGER NOT NULL,
	output      BLOB NOT NULL,
	started_at  INTEGER,
	finished_at INTEGER,
	message     TEXT NOT NULL
) STRICT;
CREATE INDEX tasks_by_app ON tasks (app, started_at);
`,
	// 2: edge entrypoints (entrypoint.go).
	`
CREATE TABLE entrypoints (
	name       TEXT PRIMARY KEY,
	app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
	config     BLOB NOT NULL,
	state      BLOB NOT NULL,
	updated_at INTEGER
) STRICT;
CREATE INDEX entrypoints_by_app ON entrypoints (app, name);
`,
	// 3: who deployed a revision.
	`ALTER TABLE revisions ADD COLUMN deployed_by TEXT NOT NULL DEFAULT '';`,
}

// migrate brings the schema up to SchemaVersion in one transaction, so a
// crash mid-migration leaves the previous version intact.
func (s *Store) migrate(ctx context.Context) error {
	return s.withTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_version: %w", err)
		}
		var version int
		err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&version)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
				return fmt.Errorf("init schema_version: %w", err)
			}
		case err != nil:
			return fmt.Errorf("read schema_version: %w", err)
		}
		if version > len(migrations) {
			return fmt.Errorf("database schema version %d is newer than this berth understands (%d): upgrade berth",
				version, len(migrations))
		}
		for i := version; i < len(migrations); i++ {
			if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migrate schema to version %d: %w", i+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, len(migrations)); err != nil {
			return fmt.Errorf("write schema_version: %w", err)
		}
		return nil
	})
}
