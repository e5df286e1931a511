package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Service is the control plane's state of one service of an app: which
// revision serves, whether it is paused, and any `berth scale` override.
type Service struct {
	App  string
	Name string
	// CurrentRevision is the revision that serves traffic, 0 for none yet.
	CurrentRevision int
	Paused          bool
	// Instances is the desired count set by `berth scale`; 0 means use the
	// current revision's spec.
	Instances int
	UpdatedAt time.Time
}

const serviceColumns = `app, name, current_revision, paused, instances, updated_at`

// PutService creates or updates the service. The app must exist (ErrNotFound
// otherwise).
func (s *Store) PutService(ctx context.Context, sv Service) error {
	if err := required("app", sv.App, "service name", sv.Name); err != nil {
		return fmt.Errorf("put service: %w", err)
	}
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
INSERT INTO services (`+serviceColumns+`) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (app, name) DO UPDATE SET
	current_revision = excluded.current_revision,
	paused           = excluded.paused,
	instances        = excluded.instances,
	updated_at       = excluded.updated_at`,
			sv.App, sv.Name, sv.CurrentRevision, sv.Paused, sv.Instances, nanos(sv.UpdatedAt))
		return appMissing(err, sv.App)
	})
	if err != nil {
		return fmt.Errorf("put service %s/%s: %w", sv.App, sv.Name, err)
	}
	return nil
}

// GetService returns the service, or ErrNotFound.
func (s *Store) GetService(ctx context.Context, app, name string) (Service, error) {
	row := s.db.QueryRowContext(ctx,
		`SELECT `+serviceColumns+` FROM services WHERE app = ? AND name = ?`, app, name)
	sv, err := scanService(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Service{}, fmt.Errorf("service %s/%s: %w", app, name, ErrNotFound)
	}
	if err != nil {
		return Service{}, fmt.Errorf("get service %s/%s: %w", app, name, err)
	}
	return sv, nil
}

// ListServices returns the app's services, by name.
func (s *Store) ListServices(ctx context.Context, app string) ([]Service, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT `+serviceColumns+` FROM services WHERE app = ? ORDER BY name`, app)
	if err != nil {
		return nil, fmt.Errorf("list services of %q: %w", app, err)
	}
	defer rows.Close()
	var svcs []Service
	for rows.Next() {
		sv, err := scanService(rows)
		if err != nil {
			return nil, fmt.Errorf("list services of %q: %w", app, err)
		}
		svcs = append(svcs, sv)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list services of %q: %w", app, err)
	}
	return svcs, nil
}

// DeleteService deletes the service with its revisions and instances, in one
// transaction. Its secrets are kept (they are the user's configuration and
// may be set before a deploy; `berth secret rm` and DeleteApp remove them),
// and so are its tasks (history) and its revision counter. Deleting an absent
// service is not an error.
func (s *Store) DeleteService(ctx context.Context, app, name string) error {
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM instances WHERE app = ? AND service = ?`,
			`DELETE FROM revisions WHERE app = ? AND service = ?`,
			`DELETE FROM services WHERE app = ? AND name = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, app, name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete service %s/%s: %w", app, name, err)
	}
	return nil
}

func scanService(sc scanner) (Service, error) {
	var (
		sv        Service
		updatedAt sql.NullInt64
	)
	if err := sc.Scan(&sv.App, &sv.Name, &sv.CurrentRevision, &sv.Paused, &sv.Instances, &updatedAt); err != nil {
		return Service{}, err
	}
	sv.UpdatedAt = fromNanos(updatedAt)
	return sv, nil
}
