package awsenv

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/aws/awsstate"
	"github.com/berth-dev/berth/internal/aws/ssmexec"
)

// ExecRequest is a command to run in a running task of a service.
type ExecRequest struct {
	// Instance is a task ID or a unique prefix of one; "" picks a running
	// task of the serving slot.
	Instance string
	// Container is a sidecar's name; "" is the service's main container.
	Container string
	Command   []string
	Stdin     io.Reader
	Stdout    io.Writer
	TTY       bool
	Resize    <-chan ssmexec.Size
}

// Exec runs a command in a running task of a service's serving slot with
// ECS exec (ssmexec), records it as an event, and returns the command's
// exit code.
func (e *Env) Exec(ctx context.Context, service string, r ExecRequest) (int, error) {
	if len(r.Command) == 0 || r.Command[0] == "" {
		return 0, fmt.Errorf("empty command: put it after --, e.g. berth exec --env %s %s -- sh", e.Name, service)
	}
	cur, _, err := e.serving(ctx, service)
	if err != nil {
		return 0, err
	}
	task, err := e.execTask(ctx, service, Slot(cur.Slot), r.Instance)
	if err != nil {
		return 0, err
	}
	container := r.Container
	if container == "" {
		container = service
	}
	if _, err := e.state.AddEvent(ctx, eventOf(service, "exec",
		fmt.Sprintf("exec in task %s (%s): %s", ecsTaskID(task), container, strings.Join(r.Command, " ")))); err != nil {
		return 0, err
	}
	return ssmexec.Exec(ctx, e.c.ECS, e.clusterName(), task, container, r.Command, r.Stdin, r.Stdout, r.TTY, r.Resize)
}

// execTask is the ARN of the running task of the slot to exec into: the
// one whose ID starts with instance, or the oldest running one.
func (e *Env) execTask(ctx context.Context, service string, s Slot, instance string) (string, error) {
	cluster := e.clusterName()
	list, err := e.c.ECS.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(cluster),
		ServiceName: aws.String(e.ecsServiceName(service, s)), DesiredStatus: ecstypes.DesiredStatusRunning})
	if err != nil {
		return "", fmt.Errorf("list the tasks of %s in %s: %w", service, e.what(), err)
	}
	var running []ecstypes.Task
	if len(list.TaskArns) > 0 {
		d, err := e.c.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: list.TaskArns})
		if err != nil {
			return "", fmt.Errorf("read the tasks of %s in %s: %w", service, e.what(), err)
		}
		for _, t := range d.Tasks {
			if aws.ToString(t.LastStatus) == "RUNNING" {
				running = append(running, t)
			}
		}
	}
	sort.Slice(running, func(i, j int) bool { return aws.ToTime(running[i].StartedAt).Before(aws.ToTime(running[j].StartedAt)) })
	if instance == "" {
		if len(running) == 0 {
			return "", fmt.Errorf("%w: %s has no running task in %s to exec into; see \"berth status --env %s\"", awsstate.ErrNotFound, service, e.what(), e.Name)
		}
		return aws.ToString(running[0].TaskArn), nil
	}
	var match []string
	for _, t := range running {
		if arn := aws.ToString(t.TaskArn); strings.HasPrefix(ecsTaskID(arn), instance) {
			match = append(match, arn)
		}
	}
	switch len(match) {
	case 0:
		return "", fmt.Errorf("%w: no running task of %s in %s has an ID starting with %q; see \"berth status --env %s\"", awsstate.ErrNotFound, service, e.what(), instance, e.Name)
	case 1:
		return match[0], nil
	}
	return "", fmt.Errorf("%q names %d tasks of %s; give more of the ID", instance, len(match), service)
}
