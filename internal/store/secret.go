package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// Secret values are sealed with AES-256-GCM under secret.key, one random
// nonce per value, with app, service and key as additional data: a sealed
// value copied to another row does not decrypt. Values never appear in
// errors; keys do.

// SecretKey names one secret of a service, without its value.
type SecretKey struct {
	Key       string
	UpdatedAt time.Time
}

// SetSecrets sets values (key -> value) for the service in one transaction,
// adding new keys and replacing existing ones; other keys are untouched. The
// app need not exist yet: secrets are usually set before the first deploy.
func (s *Store) SetSecrets(ctx context.Context, app, service string, values map[string]string, now time.Time) error {
	if err := required("app", app, "service", service); err != nil {
		return fmt.Errorf("set secrets: %w", err)
	}
	// Seal outside the write lock; sorted so the writes are deterministic.
	keys := make([]string, 0, len(values))
	for k := range values {
		if k == "" {
			return fmt.Errorf("set secrets of %s/%s: %w: empty key", app, service, ErrInvalid)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	sealed := make([][]byte, len(keys))
	for i, k := range keys {
		b, err := seal(s.aead, []byte(values[k]), secretAD(app, service, k))
		if err != nil {
			return fmt.Errorf("set secret %s of %s/%s: %w", k, app, service, err)
		}
		sealed[i] = b
	}
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		for i, k := range keys {
			_, err := tx.ExecContext(ctx, `
INSERT INTO secrets (app, service, key, sealed, updated_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (app, service, key) DO UPDATE SET
	sealed     = excluded.sealed,
	updated_at = excluded.updated_at`,
				app, service, k, sealed[i], nanos(now))
			if err != nil {
				return fmt.Errorf("secret %s: %w", k, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set secrets of %s/%s: %w", app, service, err)
	}
	return nil
}

// ListSecrets returns the service's secret keys (never values), by key.
func (s *Store) ListSecrets(ctx context.Context, app, service string) ([]SecretKey, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT key, updated_at FROM secrets WHERE app = ? AND service = ? ORDER BY key`, app, service)
	if err != nil {
		return nil, fmt.Errorf("list secrets of %s/%s: %w", app, service, err)
	}
	defer rows.Close()
	var out []SecretKey
	for rows.Next() {
		var (
			k SecretKey
			t sql.NullInt64
		)
		if err := rows.Scan(&k.Key, &t); err != nil {
			return nil, fmt.Errorf("list secrets of %s/%s: %w", app, service, err)
		}
		k.UpdatedAt = fromNanos(t)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list secrets of %s/%s: %w", app, service, err)
	}
	return out, nil
}

// SecretValues returns the service's secrets decrypted (key -> value), an
// empty map when it has none. A value that does not decrypt fails the whole
// call with ErrDecrypt naming its key: a service must not start with part of
// its secrets.
func (s *Store) SecretValues(ctx context.Context, app, service string) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT key, sealed FROM secrets WHERE app = ? AND service = ? ORDER BY key`, app, service)
	if err != nil {
		return nil, fmt.Errorf("read secrets of %s/%s: %w", app, service, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var (
			key    string
			sealed []byte
		)
		if err := rows.Scan(&key, &sealed); err != nil {
			return nil, fmt.Errorf("read secrets of %s/%s: %w", app, service, err)
		}
		plain, err := open(s.aead, sealed, secretAD(app, service, key))
		if err != nil {
			return nil, fmt.Errorf("secret %s of %s/%s: %w (was it copied from another key or written with another %s? set it again)",
				key, app, service, err, KeyFile)
		}
		out[key] = string(plain)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read secrets of %s/%s: %w", app, service, err)
	}
	return out, nil
}

// DeleteSecret deletes one secret, or returns ErrNotFound when the service
// has no such key.
func (s *Store) DeleteSecret(ctx context.Context, app, service, key string) error {
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`DELETE FROM secrets WHERE app = ? AND service = ? AND key = ?`, app, service, key)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("secret %s of %s/%s: %w", key, app, service, err)
	}
	return nil
}
