package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// App is one deployed berth.yaml: the app's name and the spec it was last
// deployed with.
type App struct {
	Name string
	// SpecYAML is the berth.yaml text as deployed.
	SpecYAML string
	// SpecFile is the path it was read from, for messages.
	SpecFile string
	// CreatedAt is kept from the first PutApp; later puts only move UpdatedAt.
	CreatedAt time.Time
	UpdatedAt time.Time
}

const appColumns = `name, spec_yaml, spec_file, created_at, updated_at`

// PutApp creates or updates the app. An existing app keeps its CreatedAt.
func (s *Store) PutApp(ctx context.Context, a App) error {
	if err := required("app name", a.Name); err != nil {
		return fmt.Errorf("put app: %w", err)
	}
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
INSERT INTO apps (`+appColumns+`) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET
	spec_yaml  = excluded.spec_yaml,
	spec_file  = excluded.spec_file,
	created_at = coalesce(apps.created_at, excluded.created_at),
	updated_at = excluded.updated_at`,
			a.Name, a.SpecYAML, a.SpecFile, nanos(a.CreatedAt), nanos(a.UpdatedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("put app %q: %w", a.Name, err)
	}
	return nil
}

// GetApp returns the app, or ErrNotFound.
func (s *Store) GetApp(ctx context.Context, name string) (App, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+appColumns+` FROM apps WHERE name = ?`, name)
	a, err := scanApp(row)
	if errors.Is(err, sql.ErrNoRows) {
		return App{}, fmt.Errorf("app %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return App{}, fmt.Errorf("get app %q: %w", name, err)
	}
	return a, nil
}

// ListApps returns every app, by name.
func (s *Store) ListApps(ctx context.Context) ([]App, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+appColumns+` FROM apps ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	defer rows.Close()
	var apps []App
	for rows.Next() {
		a, err := scanApp(rows)
		if err != nil {
			return nil, fmt.Errorf("list apps: %w", err)
		}
		apps = append(apps, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	return apps, nil
}

// DeleteApp deletes the app with its services, revisions, instances, secrets
// and tasks, in one transaction. Its events are kept, and so is its revision
// counter (numbers are never reused). Deleting an absent app is not an error,
// so a destroy that was interrupted can be repeated.
func (s *Store) DeleteApp(ctx context.Context, name string) error {
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		// Secrets have no foreign key (they may be set before the first
		// deploy), the rest cascade from apps.
		if _, err := tx.ExecContext(ctx, `DELETE FROM secrets WHERE app = ?`, name); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM apps WHERE name = ?`, name)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete app %q: %w", name, err)
	}
	return nil
}

func scanApp(sc scanner) (App, error) {
	var (
		a                    App
		createdAt, updatedAt sql.NullInt64
	)
	if err := sc.Scan(&a.Name, &a.SpecYAML, &a.SpecFile, &createdAt, &updatedAt); err != nil {
		return App{}, err
	}
	a.CreatedAt, a.UpdatedAt = fromNanos(createdAt), fromNanos(updatedAt)
	return a, nil
}
