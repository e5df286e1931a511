package awsenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/aws/awsstate"
	"github.com/berth-dev/berth/internal/spec"
)

// A task on AWS is RunTask on the environment's cluster with a revision's
// task definition and a command override of its main container (the
// service's). Its output is read from CloudWatch Logs as it runs, and the
// main container's exit code is the task's.
type taskRun struct {
	Service  string
	Name     string // the spec's task name, "" for an ad-hoc command
	Kind     string // oneoff, release, scheduled
	Command  []string
	TaskDef  string
	Revision int
	Timeout  time.Duration // 0: none
}

// ExitTimeout is the exit code of a task stopped by its timeout, as
// timeout(1) and the local engine answer.
const ExitTimeout = 124

func newTaskID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startTask starts a task and records it.
func (e *Env) startTask(ctx context.Context, in *infra, r taskRun) (awsstate.Task, error) {
	t := awsstate.Task{ID: newTaskID(), Service: r.Service, Name: r.Name, Kind: r.Kind, Command: r.Command,
		State: api.TaskRunning, Started: e.opts.Now(), Revision: r.Revision}
	assign := ecstypes.AssignPublicIpDisabled
	if in.PublicIPv4 {
		assign = ecstypes.AssignPublicIpEnabled
	}
	out, err := e.c.ECS.RunTask(ctx, &ecs.RunTaskInput{
		Cluster: aws.String(in.Cluster), TaskDefinition: aws.String(r.TaskDef), LaunchType: ecstypes.LaunchTypeFargate, Count: aws.Int32(1),
		NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{
			Subnets: in.Subnets, SecurityGroups: []string{in.SvcGroup}, AssignPublicIp: assign,
		}},
		Overrides:            &ecstypes.TaskOverride{ContainerOverrides: []ecstypes.ContainerOverride{{Name: aws.String(r.Service), Command: r.Command}}},
		StartedBy:            aws.String("berth/" + t.ID),
		EnableExecuteCommand: true,
		PropagateTags:        ecstypes.PropagateTagsTaskDefinition,
		Tags:                 e.ecsTags(map[string]string{TagService: r.Service, "berth.task": t.ID}),
	})
	if err == nil && len(out.Failures) > 0 {
		err = fmt.Errorf("%s: %s", aws.ToString(out.Failures[0].Reason), aws.ToString(out.Failures[0].Detail))
	}
	if err == nil && len(out.Tasks) == 0 {
		err = errors.New("ECS started no task")
	}
	if err != nil {
		return t, fmt.Errorf("start a task of %s in %s: %w", r.Service, e.what(), err)
	}
	t.TaskARN = aws.ToString(out.Tasks[0].TaskArn)
	if err := e.state.PutTask(ctx, t); err != nil {
		return t, err
	}
	return t, nil
}

// ecsTaskID is the last part of a task ARN, as log stream names use it.
func ecsTaskID(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

// waitTask follows a started task to its end, sending its output lines to
// out, and records how it ended. A timeout stops it (exit 124); a ctx that
// ends stops following, not the task.
func (e *Env) waitTask(ctx context.Context, in *infra, t awsstate.Task, r taskRun, out func(api.Message)) (awsstate.Task, error) {
	logs := e.logReader(in.LogGroup, r.Service+"/"+r.Service+"/"+ecsTaskID(t.TaskARN), t.ID, out)
	var deadline time.Time
	if r.Timeout > 0 {
		deadline = t.Started.Add(r.Timeout)
	}
	timedOut := false
	err := poll(ctx, time.Second, func() error {
		logs.read(ctx)
		d, err := e.c.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(in.Cluster), Tasks: []string{t.TaskARN}})
		if err != nil {
			return fmt.Errorf("read task %s: %w", t.ID, err)
		}
		if len(d.Tasks) == 0 {
			return fmt.Errorf("task %s (%s) is gone from ECS", t.ID, t.TaskARN)
		}
		x := d.Tasks[0]
		if aws.ToString(x.LastStatus) != "STOPPED" {
			if !deadline.IsZero() && !timedOut && e.opts.Now().After(deadline) {
				timedOut = true
				_, _ = e.c.ECS.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(in.Cluster), Task: aws.String(t.TaskARN),
					Reason: aws.String(fmt.Sprintf("berth: timed out after %s", r.Timeout))})
			}
			return errNotReady
		}
		logs.read(ctx)
		t.Ended = e.opts.Now()
		code := -1
		for _, c := range x.Containers {
			if aws.ToString(c.Name) == r.Service && c.ExitCode != nil {
				code = int(aws.ToInt32(c.ExitCode))
			}
		}
		switch {
		case timedOut:
			code = ExitTimeout
			t.State, t.Message = api.TaskTimeout, fmt.Sprintf("stopped after its timeout of %s", r.Timeout)
		case code == 0:
			t.State = api.TaskSucceeded
		case code > 0:
			t.State, t.Message = api.TaskFailed, fmt.Sprintf("exited %d", code)
		default:
			t.State, t.Message = api.TaskFailed, "did not run: "+taskStopped(x)
		}
		if code >= 0 {
			t.ExitCode = &code
		}
		return nil
	})
	if err != nil {
		return t, err
	}
	return t, e.state.PutTask(context.WithoutCancel(ctx), t)
}

// logReader reads a log stream from where it left off.
type logReader struct {
	e             *Env
	group, stream string
	source        string
	token         *string
	out           func(api.Message)
}

func (e *Env) logReader(group, stream, source string, out func(api.Message)) *logReader {
	return &logReader{e: e, group: group, stream: stream, source: source, out: out}
}

// read sends the lines written since the last read. A stream that does
// not exist yet (the task has not written) is not an error.
func (l *logReader) read(ctx context.Context) {
	for {
		page, err := l.e.c.Logs.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{
			LogGroupName: aws.String(l.group), LogStreamName: aws.String(l.stream),
			StartFromHead: aws.Bool(true), NextToken: l.token,
		})
		if err != nil {
			return
		}
		for _, ev := range page.Events {
			if l.out != nil {
				l.out(api.Message{Kind: api.KindLog, Time: time.UnixMilli(aws.ToInt64(ev.Timestamp)), Source: l.source, Stream: "stdout", Text: aws.ToString(ev.Message)})
			}
		}
		if page.NextForwardToken == nil || (l.token != nil && *page.NextForwardToken == *l.token) || len(page.Events) == 0 {
			l.token = page.NextForwardToken
			return
		}
		l.token = page.NextForwardToken
	}
}

// apiTask is a task record as the API shows it.
func (e *Env) apiTask(t awsstate.Task) api.Task {
	a := api.Task{ID: t.ID, App: e.App, Service: t.Service, Name: t.Name, Kind: t.Kind, Command: t.Command,
		Revision: t.Revision, Status: t.State, StartedAt: t.Started, FinishedAt: t.Ended, Message: t.Message}
	if t.ExitCode != nil {
		a.ExitCode = *t.ExitCode
	}
	return a
}

// RunTask runs a task on the serving revision of its service (the spec's
// task, or an ad-hoc command) and answers the stream's result, whose Task
// carries the exit code. With detach it answers once the task started.
func (e *Env) RunTask(ctx context.Context, sp *spec.Spec, req api.TaskRunRequest, out func(api.Message)) api.Message {
	r := taskRun{Kind: "oneoff", Command: req.Command, Service: req.Service, Timeout: req.Timeout, Name: req.Name}
	if req.Name != "" {
		t := sp.Tasks[req.Name]
		if t == nil {
			var names []string
			for _, n := range sp.TaskOrder {
				names = append(names, n)
			}
			return failure(fmt.Errorf("%w: %s has no task %q (tasks: %s)", ErrRefused, sp.File, req.Name, strings.Join(names, ", ")))
		}
		r.Service, r.Command = t.Service, append(append([]string(nil), t.Command...), req.Command...)
	}
	if r.Service == "" && len(sp.ServiceOrder) > 0 {
		r.Service = sp.ServiceOrder[0]
	}
	revs, err := e.state.Revisions(ctx, r.Service)
	if err != nil {
		return failure(err)
	}
	cur := activeOf(revs)
	if cur == nil {
		return failure(fmt.Errorf("%w: %s has no serving revision in %s to run a task with; deploy it first (berth deploy --env %s)", awsstate.ErrNotFound, r.Service, e.what(), e.Name))
	}
	r.TaskDef, r.Revision = cur.TaskDefinition, cur.Number
	// A service on App Runner runs its tasks on the cluster, like it.
	in, td, onAppRunner, err := e.appRunnerTask(ctx, cur)
	if err != nil {
		return failure(err)
	}
	if onAppRunner {
		r.TaskDef = td
	} else if in, err = e.findInfra(ctx); err != nil {
		return failure(err)
	}
	t, err := e.startTask(ctx, in, r)
	if err != nil {
		return failure(err)
	}
	at := e.apiTask(t)
	if out != nil {
		out(api.Message{Kind: api.KindTask, Time: time.Now(), Task: &at})
	}
	_, _ = e.state.AddEvent(ctx, eventOf(r.Service, "task", fmt.Sprintf("task %s started: %s", t.ID, strings.Join(r.Command, " "))))
	if req.Detach {
		return api.Message{Kind: api.KindResult, Time: time.Now(), OK: true, Task: &at}
	}
	t, err = e.waitTask(ctx, in, t, r, out)
	if err != nil {
		return failure(err)
	}
	at = e.apiTask(t)
	_, _ = e.state.AddEvent(context.WithoutCancel(ctx), eventOf(r.Service, "task", fmt.Sprintf("task %s %s", t.ID, t.State)))
	return api.Message{Kind: api.KindResult, Time: time.Now(), OK: true, Task: &at}
}

// Tasks lists the app's task runs, newest first.
func (e *Env) Tasks(ctx context.Context, limit int) ([]api.Task, error) {
	ts, err := e.state.Tasks(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := make([]api.Task, 0, len(ts))
	for _, t := range ts {
		out = append(out, e.apiTask(t))
	}
	return out, nil
}

// TaskLogs sends a task's output (from CloudWatch Logs), following it
// to its end when follow is set.
func (e *Env) TaskLogs(ctx context.Context, id string, follow bool, out func(api.Message)) error {
	t, err := e.state.Task(ctx, id)
	if err != nil {
		return err
	}
	in, err := e.findInfra(ctx)
	if err != nil {
		return err
	}
	if follow && t.State == api.TaskRunning {
		_, err := e.waitTask(ctx, in, t, taskRun{Service: t.Service, Command: t.Command, Revision: t.Revision}, out)
		return err
	}
	e.logReader(in.LogGroup, t.Service+"/"+t.Service+"/"+ecsTaskID(t.TaskARN), t.ID, out).read(ctx)
	return nil
}

// StopTask stops a running task.
func (e *Env) StopTask(ctx context.Context, id string) (api.Task, error) {
	t, err := e.state.Task(ctx, id)
	if err != nil {
		return api.Task{}, err
	}
	if t.State != api.TaskRunning {
		return e.apiTask(t), nil
	}
	if _, err := e.c.ECS.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(e.clusterName()), Task: aws.String(t.TaskARN), Reason: aws.String("berth task stop")}); err != nil {
		return api.Task{}, fmt.Errorf("stop task %s: %w", t.ID, err)
	}
	t.State, t.Message, t.Ended = api.TaskStopped, "stopped by berth task stop", e.opts.Now()
	if err := e.state.PutTask(ctx, t); err != nil {
		return api.Task{}, err
	}
	return e.apiTask(t), nil
}
