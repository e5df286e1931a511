package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Instance is one container berth runs for a service revision: a service
// instance or one of its sidecars.
type Instance struct {
	ID       string
	App      string
	Service  string
	Revision int
	// Role is "instance" or "sidecar" (runtime.Role).
	Role        string
	ContainerID string
	// State is the control plane's view of the container (starting,
	// healthy, ...); the store does not interpret it.
	State string
	// HostAddr is where the edge reaches it (127.0.0.1:port), "" for none.
	HostAddr     string
	Restarts     int
	LastExitCode int
	OOMKilled    bool
	LastError    string
	// CreatedAt is kept from the first PutInstance.
	CreatedAt time.Time
	UpdatedAt time.Time
}

const instanceColumns = `id, app, service, revision, role, container_id, state, host_addr,
	restarts, last_exit_code, oom_killed, last_error, created_at, updated_at`

// PutInstance creates or updates the instance with i.ID. The app must exist
// (ErrNotFound otherwise).
func (s *Store) PutInstance(ctx context.Context, i Instance) error {
	if err := required("instance id", i.ID, "app", i.App, "service", i.Service); err != nil {
		return fmt.Errorf("put instance: %w", err)
	}
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
INSERT INTO instances (`+instanceColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
	app            = excluded.app,
	service        = excluded.service,
	revision       = excluded.revision,
	role           = excluded.role,
	container_id   = excluded.container_id,
	state          = excluded.state,
	host_addr      = excluded.host_addr,
	restarts       = excluded.restarts,
	last_exit_code = excluded.last_exit_code,
	oom_killed     = excluded.oom_killed,
	last_error     = excluded.last_error,
	created_at     = coalesce(instances.created_at, excluded.created_at),
	updated_at     = excluded.updated_at`,
			i.ID, i.App, i.Service, i.Revision, i.Role, i.ContainerID, i.State, i.HostAddr,
			i.Restarts, i.LastExitCode, i.OOMKilled, i.LastError, nanos(i.CreatedAt), nanos(i.UpdatedAt))
		return appMissing(err, i.App)
	})
	if err != nil {
		return fmt.Errorf("put instance %s: %w", i.ID, err)
	}
	return nil
}

// GetInstance returns the instance, or ErrNotFound.
func (s *Store) GetInstance(ctx context.Context, id string) (Instance, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+instanceColumns+` FROM instances WHERE id = ?`, id)
	i, err := scanInstance(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Instance{}, fmt.Errorf("instance %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Instance{}, fmt.Errorf("get instance %q: %w", id, err)
	}
	return i, nil
}

// ListInstances returns the instances of one service, of every service of
// app when service is "", or of every app when app is "" too; ordered by app,
// service, revision, creation and ID.
func (s *Store) ListInstances(ctx context.Context, app, service string) ([]Instance, error) {
	rows, err := s.db.QueryContext(ctx, `
SELECT `+instanceColumns+` FROM instances
WHERE (?1 = '' OR app = ?1) AND (?2 = '' OR service = ?2)
ORDER BY app, service, revision, created_at, id`, app, service)
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	defer rows.Close()
	var out []Instance
	for rows.Next() {
		i, err := scanInstance(rows)
		if err != nil {
			return nil, fmt.Errorf("list instances: %w", err)
		}
		out = append(out, i)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	return out, nil
}

// DeleteInstance deletes the instance. Deleting an absent instance is not an
// error, so the reconciler can repeat it after a crash.
func (s *Store) DeleteInstance(ctx context.Context, id string) error {
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM instances WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete instance %q: %w", id, err)
	}
	return nil
}

func scanInstance(sc scanner) (Instance, error) {
	var (
		i                    Instance
		createdAt, updatedAt sql.NullInt64
	)
	err := sc.Scan(&i.ID, &i.App, &i.Service, &i.Revision, &i.Role, &i.ContainerID, &i.State, &i.HostAddr,
		&i.Restarts, &i.LastExitCode, &i.OOMKilled, &i.LastError, &createdAt, &updatedAt)
	if err != nil {
		return Instance{}, err
	}
	i.CreatedAt, i.UpdatedAt = fromNanos(createdAt), fromNanos(updatedAt)
	return i, nil
}
