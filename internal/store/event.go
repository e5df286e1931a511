package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Event is one line of an app's history (deploy phases, crashes, scaling).
// Events outlive the app they describe.
type Event struct {
	// ID is assigned by AddEvent, increasing; readers resume after it.
	ID      int64
	Time    time.Time
	App     string
	Service string
	Kind    string
	Message string
}

// AddEvent appends e (its ID is ignored) and returns the ID it was given.
func (s *Store) AddEvent(ctx context.Context, e Event) (int64, error) {
	var id int64
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`INSERT INTO events (time, app, service, kind, message) VALUES (?, ?, ?, ?, ?)`,
			nanos(e.Time), e.App, e.Service, e.Kind, e.Message)
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("add event: %w", err)
	}
	return id, nil
}

// ListEvents returns up to limit events with an ID above afterID, oldest
// first, of app or of every app when app is "". limit <= 0 means no limit.
func (s *Store) ListEvents(ctx context.Context, app string, afterID int64, limit int) ([]Event, error) {
	rows, err := s.db.QueryContext(ctx, `
SELECT id, time, app, service, kind, message FROM events
WHERE id > ?1 AND (?2 = '' OR app = ?2)
ORDER BY id LIMIT ?3`, afterID, app, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var (
			e Event
			t sql.NullInt64
		)
		if err := rows.Scan(&e.ID, &t, &e.App, &e.Service, &e.Kind, &e.Message); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		e.Time = fromNanos(t)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return out, nil
}

// TrimEvents deletes all but the newest keep events (of every app) and
// returns how many it deleted, so a long-running daemon's history stays
// bounded. IDs are never reused after a trim.
func (s *Store) TrimEvents(ctx context.Context, keep int) (int64, error) {
	if keep < 0 {
		keep = 0
	}
	var n int64
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?)`, keep)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("trim events: %w", err)
	}
	return n, nil
}
