package controlplane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/store"
)

// resolveTask turns a run request into what to run: the spec's named task
// (with extra arguments) or an ad-hoc command, on the service's serving
// revision with its env and secrets. The spec is the app's last deployed
// one. Nothing changes when it fails.
func (d *Daemon) resolveTask(ctx context.Context, app string, req api.TaskRunRequest, kind taskKind) (taskSpec, error) {
	a, err := d.store.GetApp(ctx, app)
	if errors.Is(err, store.ErrNotFound) {
		return taskSpec{}, fmt.Errorf("%w: no app named %q; see \"berth status\"", ErrNotFound, app)
	}
	if err != nil {
		return taskSpec{}, err
	}
	sp, err := spec.Parse(a.SpecFile, []byte(a.SpecYAML))
	if err != nil {
		return taskSpec{}, fmt.Errorf("the deployed spec of %s no longer parses (%w); deploy it again", app, err)
	}
	if req.Timeout < 0 {
		return taskSpec{}, fmt.Errorf("%w: timeout %s: must be positive, e.g. 10m", ErrInvalid, req.Timeout)
	}
	if err := checkArgs(req.Command); err != nil {
		return taskSpec{}, err
	}
	ts := taskSpec{app: app, kind: kind, timeout: req.Timeout, stdin: req.Stdin, tty: req.TTY}
	if req.Name != "" {
		t, ok := sp.Tasks[req.Name]
		if !ok {
			if len(sp.TaskOrder) == 0 {
				return taskSpec{}, fmt.Errorf("%w: no task named %q: the deployed %s has no tasks:; run a command with \"berth task run -- CMD ARGS\"", ErrNotFound, req.Name, a.SpecFile)
			}
			return taskSpec{}, fmt.Errorf("%w: no task named %q; the deployed %s defines %s", ErrNotFound, req.Name, a.SpecFile, strings.Join(sp.TaskOrder, ", "))
		}
		if req.Service != "" && req.Service != t.Service {
			return taskSpec{}, fmt.Errorf("%w: task %s runs on service %s (tasks: in %s); drop --service %s", ErrInvalid, t.Name, t.Service, a.SpecFile, req.Service)
		}
		ts.name, ts.service = t.Name, t.Service
		ts.command = append(slices.Clone(t.Command), req.Command...)
	} else {
		if len(req.Command) == 0 || req.Command[0] == "" {
			return taskSpec{}, fmt.Errorf("%w: empty command: put it after --, e.g. \"berth task run -- ./server migrate\", or name a task of the spec", ErrInvalid)
		}
		ts.command, ts.service = req.Command, req.Service
	}

	svcs, err := d.store.ListServices(ctx, app)
	if err != nil {
		return taskSpec{}, err
	}
	if ts.service == "" {
		ts.service = defaultTaskService(sp, svcs)
	}
	var current int
	for _, s := range svcs {
		if s.Name == ts.service {
			current = s.CurrentRevision
		}
	}
	if _, inSpec := sp.Services[ts.service]; !inSpec && current == 0 {
		return taskSpec{}, fmt.Errorf("%w: app %s has no service %q; services are: %s", ErrNotFound, app, ts.service, strings.Join(sp.ServiceOrder, ", "))
	}
	if current == 0 {
		return taskSpec{}, fmt.Errorf("%w: service %s has no revision yet; deploy it first (berth deploy)", ErrNoRevision, ts.service)
	}
	rev, _, err := d.loadRevision(ctx, app, ts.service, current)
	if err != nil {
		return taskSpec{}, err
	}
	ts.rev = rev
	if ts.secrets, err = d.store.SecretValues(ctx, app, ts.service); err != nil {
		return taskSpec{}, err
	}
	// A task runs the service's container, with its secrets: one never
	// set would leave the variable missing in the task (deploy.go).
	var missing []string
	for _, k := range rev.spec.Secrets {
		if _, ok := ts.secrets[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return taskSpec{}, refuse(fmt.Errorf("service %s: %s", ts.service, missingSecretsMsg(ts.service, missing)))
	}
	return ts, nil
}

// defaultTaskService is the service a task runs on when none is named: the
// only one with a revision, else the spec's first.
func defaultTaskService(sp *spec.Spec, svcs []store.Service) string {
	var deployed []string
	for _, s := range svcs {
		if s.CurrentRevision > 0 {
			deployed = append(deployed, s.Name)
		}
	}
	if len(deployed) == 1 {
		return deployed[0]
	}
	return sp.ServiceOrder[0]
}

// checkArgs refuses a command argument with a NUL byte, which would end
// it in the process's argv: the spec's commands are refused at parse, and
// one sent over the API is refused here, before any container exists.
func checkArgs(cmd []string) error {
	for i, a := range cmd {
		if strings.ContainsRune(a, 0) {
			return fmt.Errorf("%w: command argument %d contains a NUL byte (\\0), which a process cannot receive; remove it", ErrInvalid, i+1)
		}
	}
	return nil
}
