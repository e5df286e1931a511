package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// MinTaskIDPrefix is the shortest prefix GetTask accepts in place of a full
// task ID.
const MinTaskIDPrefix = 4

// MaxTaskOutput caps the output tail kept per task; PutTask keeps the last
// MaxTaskOutput bytes of a longer one. Callers are expected to bound it
// themselves; this stops one runaway task from bloating the database.
const MaxTaskOutput = 1 << 20

// Task is one run of a command in a service's image: an ad-hoc `berth task
// run`, a named task, a deploy's release command or a scheduled run.
type Task struct {
	ID      string
	App     string
	Service string
	// Name is the task's name under tasks:, "" for an ad-hoc command.
	Name string
	// Kind is "oneoff", "release" or "scheduled".
	Kind     string
	Command  []string
	Revision int
	// ContainerID is "" until the container exists.
	ContainerID string
	// Status is "running", "succeeded", "failed", "stopped", "timeout",
	// "skipped" or "lost".
	Status   string
	ExitCode int
	// Output is the tail of the task's combined output.
	Output     []byte
	StartedAt  time.Time
	FinishedAt time.Time
	Message    string
}

const taskColumns = `id, app, service, name, kind, command, revision, container_id, status,
	exit_code, output, started_at, finished_at, message`

// PutTask creates or updates the task with t.ID. The app must exist
// (ErrNotFound otherwise).
func (s *Store) PutTask(ctx context.Context, t Task) error {
	if err := required("task id", t.ID, "app", t.App); err != nil {
		return fmt.Errorf("put task: %w", err)
	}
	command, err := json.Marshal(t.Command)
	if err != nil {
		return fmt.Errorf("put task %s: %w", t.ID, err)
	}
	output := t.Output
	if len(output) > MaxTaskOutput {
		output = output[len(output)-MaxTaskOutput:]
	}
	if output == nil {
		output = []byte{}
	}
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
INSERT INTO tasks (`+taskColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
	app          = excluded.app,
	service      = excluded.service,
	name         = excluded.name,
	kind         = excluded.kind,
	command      = excluded.command,
	revision     = excluded.revision,
	container_id = excluded.container_id,
	status       = excluded.status,
	exit_code    = excluded.exit_code,
	output       = excluded.output,
	started_at   = excluded.started_at,
	finished_at  = excluded.finished_at,
	message      = excluded.message`,
			t.ID, t.App, t.Service, t.Name, t.Kind, string(command), t.Revision, t.ContainerID, t.Status,
			t.ExitCode, output, nanos(t.StartedAt), nanos(t.FinishedAt), t.Message)
		return appMissing(err, t.App)
	})
	if err != nil {
		return fmt.Errorf("put task %s: %w", t.ID, err)
	}
	return nil
}

// GetTask returns the task with this ID or, failing that, the one task whose
// ID starts with it when it is at least MinTaskIDPrefix characters long:
// ErrAmbiguous when several do, ErrNotFound when none does.
func (s *Store) GetTask(ctx context.Context, id string) (Task, error) {
	if id == "" {
		return Task{}, fmt.Errorf("task %q: %w", id, ErrNotFound)
	}
	t, err := scanTask(s.db.QueryRowContext(ctx, `SELECT `+taskColumns+` FROM tasks WHERE id = ?`, id))
	if err == nil {
		return t, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Task{}, fmt.Errorf("get task %q: %w", id, err)
	}
	if utf8.RuneCountInString(id) < MinTaskIDPrefix {
		return Task{}, fmt.Errorf("task %q: %w", id, ErrNotFound)
	}

	rows, err := s.db.QueryContext(ctx, `
SELECT `+taskColumns+` FROM tasks WHERE substr(id, 1, ?) = ? ORDER BY id LIMIT 2`,
		utf8.RuneCountInString(id), id)
	if err != nil {
		return Task{}, fmt.Errorf("get task %q: %w", id, err)
	}
	defer rows.Close()
	var found []Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return Task{}, fmt.Errorf("get task %q: %w", id, err)
		}
		found = append(found, t)
	}
	if err := rows.Err(); err != nil {
		return Task{}, fmt.Errorf("get task %q: %w", id, err)
	}
	switch len(found) {
	case 0:
		return Task{}, fmt.Errorf("task %q: %w", id, ErrNotFound)
	case 1:
		return found[0], nil
	default:
		return Task{}, fmt.Errorf("task id %q matches several tasks, give more of it: %w", id, ErrAmbiguous)
	}
}

// ListTasks returns up to limit tasks of app (of every app when app is ""),
// newest first by start time. limit <= 0 means no limit.
func (s *Store) ListTasks(ctx context.Context, app string, limit int) ([]Task, error) {
	rows, err := s.db.QueryContext(ctx, `
SELECT `+taskColumns+` FROM tasks
WHERE ?1 = '' OR app = ?1
ORDER BY started_at DESC, id DESC LIMIT ?2`, app, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	defer rows.Close()
	var out []Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, fmt.Errorf("list tasks: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	return out, nil
}

func scanTask(sc scanner) (Task, error) {
	var (
		t                     Task
		command               string
		startedAt, finishedAt sql.NullInt64
	)
	err := sc.Scan(&t.ID, &t.App, &t.Service, &t.Name, &t.Kind, &command, &t.Revision, &t.ContainerID, &t.Status,
		&t.ExitCode, &t.Output, &startedAt, &finishedAt, &t.Message)
	if err != nil {
		return Task{}, err
	}
	if err := json.Unmarshal([]byte(command), &t.Command); err != nil {
		return Task{}, fmt.Errorf("task %s: command: %w", t.ID, err)
	}
	t.Output = orNil(t.Output)
	t.StartedAt, t.FinishedAt = fromNanos(startedAt), fromNanos(finishedAt)
	return t, nil
}
