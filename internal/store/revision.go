package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// RevisionStatus is where a revision is in its life. The control plane moves
// it; the store only records it and refuses unknown values.
//
//	            instances healthy,
//	            traffic switched          next revision active
//	deploying ------------------> active --------------------> previous
//	    |                           ^                             |
//	    | release failed,           |  rollback                   | another revision
//	    | unhealthy, timed out      +-----------------------------+ became previous
//	    v                                                         v
//	  failed                                                   retired
//
// A previous revision is kept stopped-but-present for an instant rollback;
// a retired one has no containers left.
type RevisionStatus string

// Revision statuses.
const (
	RevisionDeploying RevisionStatus = "deploying"
	RevisionActive    RevisionStatus = "active"
	RevisionPrevious  RevisionStatus = "previous"
	RevisionRetired   RevisionStatus = "retired"
	RevisionFailed    RevisionStatus = "failed"
)

// String returns the status as shown to users and stored.
func (st RevisionStatus) String() string { return string(st) }

// Valid reports whether st is one of the statuses above.
func (st RevisionStatus) Valid() bool {
	switch st {
	case RevisionDeploying, RevisionActive, RevisionPrevious, RevisionRetired, RevisionFailed:
		return true
	}
	return false
}

// Revision is one immutable version of a service: its resolved spec and
// image, numbered 1, 2, 3... per service.
type Revision struct {
	App     string
	Service string
	Number  int
	// Spec is the JSON of the spec.Service this revision runs.
	Spec []byte
	// Image is the reference as written or built; ImageID pins what ran.
	Image   string
	ImageID string
	Status  RevisionStatus
	// Message says why the status is what it is (the failure, mostly).
	Message string
	// CreatedAt is kept from the first PutRevision.
	CreatedAt time.Time
	// By is who deployed it, as the daemon knew the caller.
	By string
}

const revisionColumns = `app, service, number, spec, image, image_id, status, message, created_at, deployed_by`

// NextRevisionNumber allocates the service's next revision number: one more
// than any number it has handed out or stored, 1 for the first. Every call
// allocates, so two concurrent deploys never get the same number, and a
// number is never reused even when its deploy failed before the revision was
// stored, or the service or app was deleted since.
func (s *Store) NextRevisionNumber(ctx context.Context, app, service string) (int, error) {
	if err := required("app", app, "service", service); err != nil {
		return 0, fmt.Errorf("next revision number: %w", err)
	}
	var next int
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `
SELECT max(
	coalesce((SELECT last FROM revision_seq WHERE app = ?1 AND service = ?2), 0),
	coalesce((SELECT max(number) FROM revisions WHERE app = ?1 AND service = ?2), 0)
) + 1`, app, service).Scan(&next)
		if err != nil {
			return err
		}
		return bumpRevisionSeq(ctx, tx, app, service, next)
	})
	if err != nil {
		return 0, fmt.Errorf("next revision number of %s/%s: %w", app, service, err)
	}
	return next, nil
}

// bumpRevisionSeq records that n has been used.
func bumpRevisionSeq(ctx context.Context, tx *sql.Tx, app, service string, n int) error {
	_, err := tx.ExecContext(ctx, `
INSERT INTO revision_seq (app, service, last) VALUES (?, ?, ?)
ON CONFLICT (app, service) DO UPDATE SET last = max(last, excluded.last)`, app, service, n)
	return err
}

// PutRevision creates or updates revision (App, Service, Number). The app
// must exist (ErrNotFound otherwise); Number must be positive and Status
// valid (ErrInvalid).
func (s *Store) PutRevision(ctx context.Context, r Revision) error {
	if err := required("app", r.App, "service", r.Service); err != nil {
		return fmt.Errorf("put revision: %w", err)
	}
	if r.Number < 1 {
		return fmt.Errorf("put revision %s/%s: %w: number %d, want 1 or more", r.App, r.Service, ErrInvalid, r.Number)
	}
	if !r.Status.Valid() {
		return fmt.Errorf("put revision %s/%s#%d: %w: status %q", r.App, r.Service, r.Number, ErrInvalid, r.Status)
	}
	spec := r.Spec
	if spec == nil {
		spec = []byte{}
	}
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
INSERT INTO revisions (`+revisionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (app, service, number) DO UPDATE SET
	spec        = excluded.spec,
	image       = excluded.image,
	image_id    = excluded.image_id,
	status      = excluded.status,
	message     = excluded.message,
	created_at  = coalesce(revisions.created_at, excluded.created_at),
	deployed_by = CASE excluded.deployed_by WHEN '' THEN revisions.deployed_by ELSE excluded.deployed_by END`,
			r.App, r.Service, r.Number, spec, r.Image, r.ImageID, string(r.Status), r.Message, nanos(r.CreatedAt), r.By)
		if err != nil {
			return appMissing(err, r.App)
		}
		return bumpRevisionSeq(ctx, tx, r.App, r.Service, r.Number)
	})
	if err != nil {
		return fmt.Errorf("put revision %s/%s#%d: %w", r.App, r.Service, r.Number, err)
	}
	return nil
}

// GetRevision returns revision n of the service, or ErrNotFound.
func (s *Store) GetRevision(ctx context.Context, app, service string, n int) (Revision, error) {
	row := s.db.QueryRowContext(ctx,
		`SELECT `+revisionColumns+` FROM revisions WHERE app = ? AND service = ? AND number = ?`, app, service, n)
	r, err := scanRevision(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Revision{}, fmt.Errorf("revision %d of %s/%s: %w", n, app, service, ErrNotFound)
	}
	if err != nil {
		return Revision{}, fmt.Errorf("get revision %d of %s/%s: %w", n, app, service, err)
	}
	return r, nil
}

// ListRevisions returns the service's revisions, newest first.
func (s *Store) ListRevisions(ctx context.Context, app, service string) ([]Revision, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT `+revisionColumns+` FROM revisions WHERE app = ? AND service = ? ORDER BY number DESC`, app, service)
	if err != nil {
		return nil, fmt.Errorf("list revisions of %s/%s: %w", app, service, err)
	}
	defer rows.Close()
	var revs []Revision
	for rows.Next() {
		r, err := scanRevision(rows)
		if err != nil {
			return nil, fmt.Errorf("list revisions of %s/%s: %w", app, service, err)
		}
		revs = append(revs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list revisions of %s/%s: %w", app, service, err)
	}
	return revs, nil
}

func scanRevision(sc scanner) (Revision, error) {
	var (
		r         Revision
		status    string
		createdAt sql.NullInt64
	)
	if err := sc.Scan(&r.App, &r.Service, &r.Number, &r.Spec, &r.Image, &r.ImageID, &status, &r.Message, &createdAt, &r.By); err != nil {
		return Revision{}, err
	}
	r.Spec = orNil(r.Spec)
	r.Status = RevisionStatus(status)
	r.CreatedAt = fromNanos(createdAt)
	return r, nil
}
