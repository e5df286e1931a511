package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/attach"
	"github.com/berth-dev/berth/internal/aws/awsenv"
	"github.com/berth-dev/berth/internal/aws/awsstate"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/runtime/docker"
	"github.com/berth-dev/berth/internal/spec"
)

// backend is what a verb talks to: the local daemon (a *client.Client) or
// an AWS environment of the spec (--env, BERTH_ENV). Both answer with the
// API's types and errors, so a verb prints the same, with the same --json
// and exit codes, wherever the app runs.
type backend interface {
	Apps(ctx context.Context) ([]api.AppSummary, error)
	Deploy(ctx context.Context, req api.DeployRequest, fn func(api.Message)) (api.Message, error)
	Status(ctx context.Context, app string) (api.Status, error)
	Revisions(ctx context.Context, app, service string) ([]api.Revision, error)
	Rollback(ctx context.Context, app, service string, req api.RollbackRequest, fn func(api.Message)) (api.Message, error)
	Logs(ctx context.Context, app, service string, opts client.LogsOptions, fn func(api.Message)) error
	Scale(ctx context.Context, app string, counts map[string]int) (api.Status, error)
	Pause(ctx context.Context, app, service string) (api.ServiceStatus, error)
	Resume(ctx context.Context, app, service string, fn func(api.Message)) (api.Message, error)
	Destroy(ctx context.Context, app string, fn func(api.Message)) (api.Message, error)
	SecretSet(ctx context.Context, app, service string, values map[string]string) ([]api.SecretKey, error)
	SecretList(ctx context.Context, app, service string) ([]api.SecretKey, error)
	SecretDelete(ctx context.Context, app, service, key string) error
	Events(ctx context.Context, opts client.EventsOptions, fn func(api.Message)) error
	RunTask(ctx context.Context, app string, req api.TaskRunRequest, fn func(api.Message)) (api.Message, error)
	RunTaskDetached(ctx context.Context, app string, req api.TaskRunRequest) (api.Task, error)
	AttachTask(ctx context.Context, app string, req api.TaskRunRequest) (*attach.Conn, error)
	Exec(ctx context.Context, app, service string, req api.ExecRequest) (*attach.Conn, error)
	Tasks(ctx context.Context, app string, limit int) ([]api.Task, error)
	Task(ctx context.Context, id string) (api.Task, error)
	TaskLogs(ctx context.Context, id string, follow bool, fn func(api.Message)) error
	StopTask(ctx context.Context, id string) (api.Task, error)
}

var (
	_ backend = (*client.Client)(nil)
	_ backend = (*awsBackend)(nil)
)

// envName is the environment a verb acts on: --env, else BERTH_ENV; ""
// (or "local") is the local engine.
func (c *cli) envName() string {
	e := c.env
	if e == "" {
		e = os.Getenv("BERTH_ENV")
	}
	if e == "local" {
		return ""
	}
	return e
}

// specFileOf is the spec file a verb reads: its --file, else berth.yaml.
func specFileOf(cmd *cobra.Command) string {
	if f := cmd.Flags().Lookup("file"); f != nil {
		return f.Value.String()
	}
	return defaultSpecFile
}

// backend connects a verb to where its app runs: the daemon, or the AWS
// environment named by --env in the verb's spec file.
func (c *cli) backend(cmd *cobra.Command) (backend, error) {
	env := c.envName()
	if env == "" {
		return c.client()
	}
	file := specFileOf(cmd)
	b, err := os.ReadFile(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, invalidf("--env %s needs the spec that names the environment: no %s here (pass -f FILE)", env, file)
		}
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	sp, err := spec.Parse(file, b)
	if err != nil {
		return nil, inputError{err.Error()}
	}
	if c.app != "" && c.app != sp.App {
		return nil, invalidf("--app %s conflicts with app %s in %s: an AWS environment is reached through its app's spec", c.app, sp.App, file)
	}
	e, err := awsenv.Open(cmd.Context(), sp, env, awsenv.Options{Build: buildLocally, LockWait: c.lockWait})
	if err != nil {
		return nil, awsError(err)
	}
	return &awsBackend{env: e, sp: sp}, nil
}

// addLockWaitFlag adds --lock-wait to a verb that takes an AWS app's lock
// (deploy, rollback, scale, pause, resume, destroy).
// The local daemon serializes deploys itself, so it applies to --env only.
func (c *cli) addLockWaitFlag(cmd *cobra.Command) {
	cmd.Flags().DurationVar(&c.lockWait, "lock-wait", 0, "with --env: wait up to this long for another berth holding the app's lock (default: fail at once, naming it)")
}

// buildLocally builds a spec's build: on the local Docker Engine, for an
// AWS deploy to push.
func buildLocally(ctx context.Context, b *spec.Build, dir, platform string, progress io.Writer) (string, error) {
	eng, err := docker.New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return "", err
	}
	return eng.BuildForPlatform(ctx, dir, b.Dockerfile, "", platform, b.Args, progress)
}

// awsError gives an AWS environment's error the code the daemon would
// answer with, so scripts and exit codes see no difference.
func awsError(err error) error {
	if err == nil {
		return nil
	}
	var held *awsstate.HeldError
	code := "error"
	switch {
	case errors.Is(err, awsenv.ErrRefused):
		code = "invalid"
	case errors.As(err, &held):
		code = "busy"
	case errors.Is(err, awsstate.ErrNotFound):
		code = "not_found"
	}
	return &client.APIError{StatusCode: 0, Body: api.Error{Message: trimRefused(err.Error()), Code: code}}
}

func trimRefused(s string) string {
	p := awsenv.ErrRefused.Error() + ": "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// awsBackend runs the verbs on an AWS environment, in this process.
type awsBackend struct {
	env *awsenv.Env
	sp  *spec.Spec
}

// streamResult is a stream's result as the client answers it: a failure is a
// *client.ResultError.
func streamResult(m api.Message, fn func(api.Message)) (api.Message, error) {
	if fn != nil {
		fn(m)
	}
	if !m.OK {
		return m, &client.ResultError{Result: m}
	}
	return m, nil
}

func (b *awsBackend) Apps(ctx context.Context) ([]api.AppSummary, error) {
	return []api.AppSummary{{Name: b.env.App}}, nil
}

func (b *awsBackend) Deploy(ctx context.Context, req api.DeployRequest, fn func(api.Message)) (api.Message, error) {
	if req.Canary > 0 || req.Promote {
		return api.Message{}, awsError(fmt.Errorf("%w: --canary and --promote are not available on AWS environments yet", awsenv.ErrRefused))
	}
	sp, err := spec.Parse(req.File, []byte(req.YAML))
	if err != nil {
		return api.Message{}, inputError{err.Error()}
	}
	return streamResult(b.env.Deploy(ctx, sp, req.Services, req.Images, fn), fn)
}

func (b *awsBackend) Status(ctx context.Context, app string) (api.Status, error) {
	st, err := b.env.Status(ctx)
	return st, awsError(err)
}

func (b *awsBackend) Revisions(ctx context.Context, app, service string) ([]api.Revision, error) {
	r, err := b.env.Revisions(ctx, service)
	return r, awsError(err)
}

func (b *awsBackend) Rollback(ctx context.Context, app, service string, req api.RollbackRequest, fn func(api.Message)) (api.Message, error) {
	return streamResult(b.env.Rollback(ctx, b.sp, service, req.To, fn), fn)
}

func (b *awsBackend) Logs(ctx context.Context, app, service string, o client.LogsOptions, fn func(api.Message)) error {
	opts := awsenv.LogsOptions{Follow: o.Follow, Container: o.Container, Tail: o.Tail, Instance: o.Instance}
	if o.Since != "" {
		d, err := time.ParseDuration(o.Since)
		if err != nil {
			return invalidf("--since %s: on AWS environments give a duration such as 10m", o.Since)
		}
		opts.Since = d
	}
	return awsError(b.env.Logs(ctx, service, opts, fn))
}

func (b *awsBackend) Scale(ctx context.Context, app string, counts map[string]int) (api.Status, error) {
	st, err := b.env.Scale(ctx, counts)
	return st, awsError(err)
}

func (b *awsBackend) Pause(ctx context.Context, app, service string) (api.ServiceStatus, error) {
	st, err := b.env.Pause(ctx, service)
	return st, awsError(err)
}

func (b *awsBackend) Resume(ctx context.Context, app, service string, fn func(api.Message)) (api.Message, error) {
	return streamResult(b.env.Resume(ctx, service, fn), fn)
}

func (b *awsBackend) Destroy(ctx context.Context, app string, fn func(api.Message)) (api.Message, error) {
	return streamResult(b.env.Destroy(ctx, b.sp, fn), fn)
}

func (b *awsBackend) SecretSet(ctx context.Context, app, service string, values map[string]string) ([]api.SecretKey, error) {
	k, err := b.env.SecretSet(ctx, service, values)
	return k, awsError(err)
}

func (b *awsBackend) SecretList(ctx context.Context, app, service string) ([]api.SecretKey, error) {
	k, err := b.env.SecretList(ctx, service)
	return k, awsError(err)
}

func (b *awsBackend) SecretDelete(ctx context.Context, app, service, key string) error {
	return awsError(b.env.SecretDelete(ctx, service, key))
}

func (b *awsBackend) Events(ctx context.Context, o client.EventsOptions, fn func(api.Message)) error {
	var since time.Time
	for {
		evs, err := b.env.Events(ctx, since, 0)
		if err != nil {
			return awsError(err)
		}
		for i := range evs {
			if !evs[i].Time.After(since) && !since.IsZero() {
				continue
			}
			fn(api.Message{Kind: api.KindEvent, Time: evs[i].Time, Event: &evs[i]})
			since = evs[i].Time
		}
		if !o.Follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(2 * time.Second):
		}
	}
}

func (b *awsBackend) RunTask(ctx context.Context, app string, req api.TaskRunRequest, fn func(api.Message)) (api.Message, error) {
	return streamResult(b.env.RunTask(ctx, b.sp, req, fn), fn)
}

func (b *awsBackend) RunTaskDetached(ctx context.Context, app string, req api.TaskRunRequest) (api.Task, error) {
	req.Detach = true
	m, err := streamResult(b.env.RunTask(ctx, b.sp, req, nil), nil)
	if err != nil {
		return api.Task{}, err
	}
	return *m.Task, nil
}

// errNotOnAWS answers what AWS environments cannot do yet.
func errNotOnAWS(what string) error {
	return awsError(fmt.Errorf("%w: %s is not available on AWS environments yet", awsenv.ErrRefused, what))
}

func (b *awsBackend) AttachTask(ctx context.Context, app string, req api.TaskRunRequest) (*attach.Conn, error) {
	return nil, errNotOnAWS("an interactive task (-it)")
}

func (b *awsBackend) Exec(ctx context.Context, app, service string, req api.ExecRequest) (*attach.Conn, error) {
	return nil, errNotOnAWS("berth exec")
}

func (b *awsBackend) Tasks(ctx context.Context, app string, limit int) ([]api.Task, error) {
	t, err := b.env.Tasks(ctx, limit)
	return t, awsError(err)
}

func (b *awsBackend) Task(ctx context.Context, id string) (api.Task, error) {
	ts, err := b.env.Tasks(ctx, 0)
	if err != nil {
		return api.Task{}, awsError(err)
	}
	for _, t := range ts {
		if t.ID == id || (len(id) >= awsstate.MinTaskIDPrefix && len(t.ID) > len(id) && t.ID[:len(id)] == id) {
			return t, nil
		}
	}
	return api.Task{}, awsError(fmt.Errorf("%w: no task %s in %s", awsstate.ErrNotFound, id, b.env.App))
}

func (b *awsBackend) TaskLogs(ctx context.Context, id string, follow bool, fn func(api.Message)) error {
	return awsError(b.env.TaskLogs(ctx, id, follow, fn))
}

func (b *awsBackend) StopTask(ctx context.Context, id string) (api.Task, error) {
	t, err := b.env.StopTask(ctx, id)
	return t, awsError(err)
}
