package controlplane

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth/internal/store"
)

// releaseLastLines is how many output lines of a failed release the deploy
// result carries.
const releaseLastLines = 20

// runRelease is a deploy's release phase: the new revision's release
// command runs once, as a task with the revision's image, env and secrets,
// before any of its instances starts. Its output streams into the deploy as
// "release" log lines. Anything but exit 0 fails the deploy, with the
// task's last output lines.
//
// Releases of one app run one at a time: a second one (a concurrent deploy
// of another service) waits for the first, saying so, since two migrations
// must never race.
func (d *Daemon) runRelease(ctx context.Context, s *service, rev revision, out progress) error {
	unlock, err := d.tasks.lockRelease(ctx, s.app, func() {
		out.phase(phaseRelease, "%s: waiting for another release of %s to finish", s.name, s.app)
	})
	if err != nil {
		return err
	}
	defer unlock()
	secrets, err := d.store.SecretValues(ctx, s.app, s.name)
	if err != nil {
		return err
	}
	ts := taskSpec{app: s.app, service: s.name, kind: kindRelease, command: rev.spec.Release, rev: rev, secrets: secrets}
	lines := &lineSplitter{emit: func(_, line string) { out.log("release", line) }}
	start := time.Now()
	run, err := d.startTask(ctx, ts, taskHooks{
		started: func(rec store.Task) {
			out.phase(phaseRelease, "%s: running %s (task %s)", s.name, quoteCommand(ts.command), rec.ID)
		},
		output: lines.write,
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
	lines.flush()
	rec := run.record()
	if rec.Status != taskSucceeded.String() {
		return &instanceFailure{
			err:      fmt.Errorf("%w: %s %s (task %s)", ErrReleaseFailed, quoteCommand(ts.command), taskOutcome(rec), rec.ID),
			lastLogs: lastLines(rec.Output, releaseLastLines),
		}
	}
	out.phase(phaseRelease, "%s: release succeeded in %s", s.name, time.Since(start).Round(time.Millisecond))
	return nil
}
