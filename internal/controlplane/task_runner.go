package controlplane

import (
	"context"

	"github.com/berth-dev/berth/internal/controlplane/fleet"
	"github.com/berth-dev/berth/internal/controlplane/tasks"
	"github.com/berth-dev/berth/internal/runtime"
)

// cronSeconds, set only by tests (export_test.go), reads a schedule's five
// fields as second, minute, hour, day of month and month, so a test sees a
// schedule fire within seconds. The spec's syntax does not change.
var cronSeconds bool

// newTaskRunner wires the tasks' Runner (internal/controlplane/tasks) to
// the daemon: its store, engine, events and metrics, the revisions and
// containers of the services, the apps' networks, internal names and
// closing, and its lifetime.
func newTaskRunner(d *Daemon) *tasks.Runner {
	return tasks.New(tasks.Config{
		Log:   d.log,
		Store: d.store,
		Pods:  d.pods,
		Revision: func(ctx context.Context, app, service string, n int) (tasks.Revision, error) {
			rev, _, err := d.fleet.LoadRevision(ctx, app, service, n)
			return rev.Task(), err
		},
		Container: func(app string, rev tasks.Revision, secrets map[string]string) runtime.ContainerSpec {
			return fleet.ContainerSpec(fleet.Revision{Number: rev.Number, Spec: rev.Spec, Image: rev.Image}, secrets)
		},
		Network:       fleet.NetworkName,
		InternalNames: d.internal.Names,
		Closing:       func(app string) bool { return d.fleet.Closing(app) },
		Event:         d.event,
		Count:         d.countTask,
		Ctx:           d.ctx,
		BG:            &d.bg,
		CronSeconds:   cronSeconds,
	})
}
