package tasks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/apierr"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/store"
)

// Resolve turns a run request (`berth task run`) into what to run: the
// spec's named task (with extra arguments) or an ad-hoc command, on the
// service's serving revision with its env and secrets. The spec is the
// app's last deployed one. Nothing changes when it fails.
func (r *Runner) Resolve(ctx context.Context, app string, req api.TaskRunRequest) (Spec, error) {
	return r.resolve(ctx, app, req, kindOneOff)
}

func (r *Runner) resolve(ctx context.Context, app string, req api.TaskRunRequest, k kind) (Spec, error) {
	a, err := r.cfg.Store.GetApp(ctx, app)
	if errors.Is(err, store.ErrNotFound) {
		return Spec{}, fmt.Errorf("%w: no app named %q; see \"berth status\"", apierr.ErrNotFound, app)
	}
	if err != nil {
		return Spec{}, err
	}
	sp, err := spec.Parse(a.SpecFile, []byte(a.SpecYAML))
	if err != nil {
		return Spec{}, fmt.Errorf("the deployed spec of %s no longer parses (%w); deploy it again", app, err)
	}
	if req.Timeout < 0 {
		return Spec{}, fmt.Errorf("%w: timeout %s: must be positive, e.g. 10m", apierr.ErrInvalid, req.Timeout)
	}
	if err := CheckArgs(req.Command); err != nil {
		return Spec{}, err
	}
	ts := Spec{app: app, kind: k, timeout: req.Timeout, stdin: req.Stdin, tty: req.TTY}
	if req.Name != "" {
		t, ok := sp.Tasks[req.Name]
		if !ok {
			if len(sp.TaskOrder) == 0 {
				return Spec{}, fmt.Errorf("%w: no task named %q: the deployed %s has no tasks:; run a command with \"berth task run -- CMD ARGS\"", apierr.ErrNotFound, req.Name, a.SpecFile)
			}
			return Spec{}, fmt.Errorf("%w: no task named %q; the deployed %s defines %s", apierr.ErrNotFound, req.Name, a.SpecFile, strings.Join(sp.TaskOrder, ", "))
		}
		if req.Service != "" && req.Service != t.Service {
			return Spec{}, fmt.Errorf("%w: task %s runs on service %s (tasks: in %s); drop --service %s", apierr.ErrInvalid, t.Name, t.Service, a.SpecFile, req.Service)
		}
		ts.name, ts.service = t.Name, t.Service
		ts.command = append(slices.Clone(t.Command), req.Command...)
	} else {
		if len(req.Command) == 0 || req.Command[0] == "" {
			return Spec{}, fmt.Errorf("%w: empty command: put it after --, e.g. \"berth task run -- ./server migrate\", or name a task of the spec", apierr.ErrInvalid)
		}
		ts.command, ts.service = req.Command, req.Service
	}

	svcs, err := r.cfg.Store.ListServices(ctx, app)
	if err != nil {
		return Spec{}, err
	}
	if ts.service == "" {
		ts.service = defaultService(sp, svcs)
	}
	var current int
	for _, s := range svcs {
		if s.Name == ts.service {
			current = s.CurrentRevision
		}
	}
	if _, inSpec := sp.Services[ts.service]; !inSpec && current == 0 {
		return Spec{}, fmt.Errorf("%w: app %s has no service %q; services are: %s", apierr.ErrNotFound, app, ts.service, strings.Join(sp.ServiceOrder, ", "))
	}
	if current == 0 {
		return Spec{}, fmt.Errorf("%w: service %s has no revision yet; deploy it first (berth deploy)", apierr.ErrNoRevision, ts.service)
	}
	rev, err := r.cfg.Revision(ctx, app, ts.service, current)
	if err != nil {
		return Spec{}, err
	}
	ts.rev = rev
	if ts.secrets, err = r.cfg.Store.SecretValues(ctx, app, ts.service); err != nil {
		return Spec{}, err
	}
	// A task runs the service's container, with its secrets: one never
	// set would leave the variable missing in the task (a deploy refuses
	// it likewise).
	var missing []string
	for _, k := range rev.Spec.Secrets {
		if _, ok := ts.secrets[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return Spec{}, apierr.Refuse(fmt.Errorf("service %s: %s", ts.service, apierr.MissingSecrets(ts.service, missing)))
	}
	return ts, nil
}

// defaultService is the service a task runs on when none is named: the
// only one with a revision, else the spec's first.
func defaultService(sp *spec.Spec, svcs []store.Service) string {
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

// CheckArgs refuses a command argument with a NUL byte, which would end
// it in the process's argv: the spec's commands are refused at parse, and
// one sent over the API is refused here, before any container exists.
func CheckArgs(cmd []string) error {
	for i, a := range cmd {
		if strings.ContainsRune(a, 0) {
			return fmt.Errorf("%w: command argument %d contains a NUL byte (\\0), which a process cannot receive; remove it", apierr.ErrInvalid, i+1)
		}
	}
	return nil
}
