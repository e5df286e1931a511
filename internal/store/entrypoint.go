package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Entrypoint is an edge entrypoint of an app: its configuration as the
// app's spec declared it, and the state `berth edge` commands changed since
// (the origin switched to, a shift, maintenance). Both are opaque to the
// store (the control plane's JSON), so that the edge can grow settings
// without a migration; what the store guarantees is that a name belongs to
// one app and goes with it when the app is deleted.
type Entrypoint struct {
	Name      string
	App       string
	Config    []byte
	State     []byte
	UpdatedAt time.Time
}

const entrypointColumns = `name, app, config, state, updated_at`

// ErrConflict: the entrypoint name already belongs to another app.
var ErrConflict = errors.New("conflict")

// PutEntrypoint creates or updates an entrypoint. The app must exist
// (ErrNotFound otherwise), and a name another app owns is ErrConflict.
func (s *Store) PutEntrypoint(ctx context.Context, ep Entrypoint) error {
	if err := required("entrypoint name", ep.Name, "app", ep.App); err != nil {
		return fmt.Errorf("put entrypoint: %w", err)
	}
	err := s.withTx(ctx, func(tx *sql.Tx) error { return putEntrypoint(ctx, tx, ep) })
	if err != nil {
		return fmt.Errorf("put entrypoint %s: %w", ep.Name, err)
	}
	return nil
}

func putEntrypoint(ctx context.Context, tx *sql.Tx, ep Entrypoint) error {
	var owner string
	err := tx.QueryRowContext(ctx, `SELECT app FROM entrypoints WHERE name = ?`, ep.Name).Scan(&owner)
	switch {
	case err == nil && owner != ep.App:
		return fmt.Errorf("%w: the name belongs to app %s", ErrConflict, owner)
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return err
	}
	_, err = tx.ExecContext(ctx, `
INSERT INTO entrypoints (`+entrypointColumns+`) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET
	config     = excluded.config,
	state      = excluded.state,
	updated_at = excluded.updated_at`,
		ep.Name, ep.App, orEmpty(ep.Config), orEmpty(ep.State), nanos(ep.UpdatedAt))
	return appMissing(err, ep.App)
}

// ReplaceEntrypoints makes eps the app's entrypoints in one transaction:
// those of the app not in eps are deleted, the others created or updated.
// Nothing changes when one of them is ErrConflict.
func (s *Store) ReplaceEntrypoints(ctx context.Context, app string, eps []Entrypoint) error {
	if err := required("app", app); err != nil {
		return fmt.Errorf("replace entrypoints: %w", err)
	}
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		names := make([]string, len(eps))
		for i, ep := range eps {
			if ep.App != app {
				return fmt.Errorf("%w: entrypoint %s is of app %q, not %q", ErrInvalid, ep.Name, ep.App, app)
			}
			if err := putEntrypoint(ctx, tx, ep); err != nil {
				return fmt.Errorf("entrypoint %s: %w", ep.Name, err)
			}
			names[i] = ep.Name
		}
		rows, err := tx.QueryContext(ctx, `SELECT name FROM entrypoints WHERE app = ?`, app)
		if err != nil {
			return err
		}
		var stale []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return err
			}
			if !slices.Contains(names, n) {
				stale = append(stale, n)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, n := range stale {
			if _, err := tx.ExecContext(ctx, `DELETE FROM entrypoints WHERE name = ?`, n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("replace entrypoints of %s: %w", app, err)
	}
	return nil
}

// GetEntrypoint returns the entrypoint, or ErrNotFound.
func (s *Store) GetEntrypoint(ctx context.Context, name string) (Entrypoint, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+entrypointColumns+` FROM entrypoints WHERE name = ?`, name)
	ep, err := scanEntrypoint(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Entrypoint{}, fmt.Errorf("entrypoint %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return Entrypoint{}, fmt.Errorf("get entrypoint %s: %w", name, err)
	}
	return ep, nil
}

// ListEntrypoints returns the entrypoints of app, or of every app when app
// is "", by name.
func (s *Store) ListEntrypoints(ctx context.Context, app string) ([]Entrypoint, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT `+entrypointColumns+` FROM entrypoints WHERE ?1 = '' OR app = ?1 ORDER BY name`, app)
	if err != nil {
		return nil, fmt.Errorf("list entrypoints: %w", err)
	}
	defer rows.Close()
	var out []Entrypoint
	for rows.Next() {
		ep, err := scanEntrypoint(rows)
		if err != nil {
			return nil, fmt.Errorf("list entrypoints: %w", err)
		}
		out = append(out, ep)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list entrypoints: %w", err)
	}
	return out, nil
}

// DeleteEntrypoint deletes the entrypoint; deleting an absent one is not an
// error.
func (s *Store) DeleteEntrypoint(ctx context.Context, name string) error {
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM entrypoints WHERE name = ?`, name)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete entrypoint %s: %w", name, err)
	}
	return nil
}

func scanEntrypoint(sc scanner) (Entrypoint, error) {
	var (
		ep        Entrypoint
		updatedAt sql.NullInt64
	)
	if err := sc.Scan(&ep.Name, &ep.App, &ep.Config, &ep.State, &updatedAt); err != nil {
		return Entrypoint{}, err
	}
	ep.Config, ep.State = orNil(ep.Config), orNil(ep.State)
	ep.UpdatedAt = fromNanos(updatedAt)
	return ep, nil
}

// orEmpty stores a nil blob as an empty one (the columns are NOT NULL).
func orEmpty(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
