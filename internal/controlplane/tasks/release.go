package tasks

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth/internal/store"
)

// releaseLastLines is how many output lines of a failed release the deploy
// result carries.
const releaseLastLines = 20

// ReleaseOutput is where a release reports as it goes: Phase gets what it
// does (the deploy's "release" phase), Line each line of its output.
type ReleaseOutput struct {
	Phase func(msg string)
	Line  func(line string)
}

// ReleaseError is a release command that ran and did not exit 0: the
// deploy fails with the task's last output lines.
type ReleaseError struct {
	// LastLines are the last lines of the task's output.
	LastLines []string
	err       error
}

func (e *ReleaseError) Error() string { return e.err.Error() }
func (e *ReleaseError) Unwrap() error { return e.err }

// Release is a deploy's release phase: the new revision's release command
// runs once, as a task with the revision's image, env and secrets, before
// any of its instances starts. Its output goes to out line by line.
// Anything but exit 0 is an error wrapping ErrReleaseFailed (a
// *ReleaseError once the command ran).
//
// Releases of one app run one at a time: a second one (a concurrent deploy
// of another service) waits for the first, saying so, since two migrations
// must never race.
func (r *Runner) Release(ctx context.Context, app, service string, rev Revision, out ReleaseOutput) error {
	unlock, err := r.lockRelease(ctx, app, func() {
		out.Phase(fmt.Sprintf("%s: waiting for another release of %s to finish", service, app))
	})
	if err != nil {
		return err
	}
	defer unlock()
	secrets, err := r.cfg.Store.SecretValues(ctx, app, service)
	if err != nil {
		return err
	}
	ts := Spec{app: app, service: service, kind: kindRelease, command: rev.Spec.Release, rev: rev, secrets: secrets}
	lines := &LineSplitter{Emit: func(_, line string) { out.Line(line) }}
	start := time.Now()
	run, err := r.Start(ctx, ts, Hooks{
		Started: func(rec store.Task) {
			out.Phase(fmt.Sprintf("%s: running %s (task %s)", service, quoteCommand(ts.command), rec.ID))
		},
		Output: lines.Write,
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrReleaseFailed, err)
	}
	select {
	case <-run.done:
	case <-ctx.Done():
		// The daemon is stopping: the next one records the task.
		return context.Cause(ctx)
	}
	lines.Flush()
	rec := run.Record()
	if rec.Status != succeeded.String() {
		return &ReleaseError{
			err:       fmt.Errorf("%w: %s %s (task %s)", ErrReleaseFailed, quoteCommand(ts.command), outcome(rec), rec.ID),
			LastLines: lastLines(rec.Output, releaseLastLines),
		}
	}
	out.Phase(fmt.Sprintf("%s: release succeeded in %s", service, time.Since(start).Round(time.Millisecond)))
	return nil
}
