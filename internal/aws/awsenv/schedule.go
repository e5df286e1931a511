package awsenv

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/berth-dev/berth/internal/aws/fargate"
	"github.com/berth-dev/berth/internal/spec"
)

// EventBridge Scheduler runs what must happen when no berth runs. All of
// an app's schedules are in one schedule group, berth-APP-ENV (tagged;
// schedules themselves take no tags):
//
//	task-NAME        a task with schedule: — cron from fargate.ScheduleExpression,
//	                 an ECS RunTask target on the app's cluster with the serving
//	                 revision's task definition and the task's command
//	cool-SERVICE-S   one time, at the end of a warm window: UpdateService
//	                 desiredCount 0 on slot S, then the schedule deletes itself
//
// Task schedules are written at each deploy (and rollback) after the
// switch, so they always run the serving revision, and removed when their
// task leaves the spec. A cool-down is set on the previous slot at each
// switch and taken off the slot that starts serving, so it never stops
// what serves. Scheduled runs are ECS tasks berth did not start: they are
// not in berth's task records (berth task ls), only in ECS and the logs.

// coolDownTarget is EventBridge Scheduler's universal target for ECS's
// UpdateService.
const coolDownTarget = "arn:aws:scheduler:::aws-sdk:ecs:updateService"

func (e *Env) scheduleGroup() string { return name(64, "berth", e.App, e.Name) }

func taskScheduleName(task string) string { return name(64, "task", task) }

func coolDownName(service string, s Slot) string { return name(64, "cool", service, string(s)) }

// ensureScheduleGroup finds or makes the app's schedule group.
func (e *Env) ensureScheduleGroup(ctx context.Context) error {
	g := e.scheduleGroup()
	_, err := e.c.Scheduler.GetScheduleGroup(ctx, &scheduler.GetScheduleGroupInput{Name: aws.String(g)})
	if err == nil {
		return nil
	}
	if apiCode(err) != "ResourceNotFoundException" {
		return fmt.Errorf("find schedule group %s: %w", g, err)
	}
	var tags []schedtypes.Tag
	for k, v := range e.tagMap(nil) {
		tags = append(tags, schedtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	_, err = e.c.Scheduler.CreateScheduleGroup(ctx, &scheduler.CreateScheduleGroupInput{Name: aws.String(g), Tags: tags})
	if err != nil && apiCode(err) != "ConflictException" {
		return fmt.Errorf("create schedule group %s: %w", g, err)
	}
	return nil
}

// schedules lists the names of the schedules in the app's group.
func (e *Env) schedules(ctx context.Context) ([]string, error) {
	var out []string
	pg := scheduler.NewListSchedulesPaginator(e.c.Scheduler, &scheduler.ListSchedulesInput{GroupName: aws.String(e.scheduleGroup())})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			if apiCode(err) == "ResourceNotFoundException" {
				return nil, nil
			}
			return nil, fmt.Errorf("list the schedules of %s: %w", e.scheduleGroup(), err)
		}
		for _, s := range page.Schedules {
			if aws.ToString(s.GroupName) == "" || aws.ToString(s.GroupName) == e.scheduleGroup() {
				out = append(out, aws.ToString(s.Name))
			}
		}
	}
	return out, nil
}

// putSchedule makes a schedule or, when it exists, replaces its
// expression and target. A role IAM has just made may not be assumable
// for some seconds: that refusal is tried again.
func (e *Env) putSchedule(ctx context.Context, in *scheduler.CreateScheduleInput) error {
	_, err := e.c.Scheduler.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: in.Name, GroupName: in.GroupName})
	exists := err == nil
	if err != nil && apiCode(err) != "ResourceNotFoundException" {
		return fmt.Errorf("read schedule %s: %w", aws.ToString(in.Name), err)
	}
	return retryFor(ctx, time.Minute, func() error {
		var err error
		if exists {
			_, err = e.c.Scheduler.UpdateSchedule(ctx, &scheduler.UpdateScheduleInput{
				Name: in.Name, GroupName: in.GroupName, Description: in.Description,
				ScheduleExpression: in.ScheduleExpression, ScheduleExpressionTimezone: in.ScheduleExpressionTimezone,
				FlexibleTimeWindow: in.FlexibleTimeWindow, Target: in.Target, State: in.State,
				ActionAfterCompletion: in.ActionAfterCompletion,
			})
		} else {
			_, err = e.c.Scheduler.CreateSchedule(ctx, in)
		}
		if apiCode(err) == "ValidationException" && strings.Contains(err.Error(), "assume") {
			return errNotReady
		}
		if err != nil {
			return fmt.Errorf("write schedule %s: %w", aws.ToString(in.Name), err)
		}
		return nil
	})
}

// deleteSchedule removes a schedule of the app's group, if it exists.
func (e *Env) deleteSchedule(ctx context.Context, n string) error {
	_, err := e.c.Scheduler.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String(n), GroupName: aws.String(e.scheduleGroup())})
	if err != nil && apiCode(err) != "ResourceNotFoundException" {
		return fmt.Errorf("remove schedule %s: %w", n, err)
	}
	return nil
}

// clusterARN is the ARN of the app's cluster, as a schedule's target.
func (e *Env) clusterARN(ctx context.Context, cluster string) (string, error) {
	out, err := e.c.ECS.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{cluster}})
	if err != nil {
		return "", fmt.Errorf("find ECS cluster %s: %w", cluster, err)
	}
	if len(out.Clusters) == 0 {
		return "", fmt.Errorf("ECS cluster %s not found", cluster)
	}
	return aws.ToString(out.Clusters[0].ClusterArn), nil
}

// scheduledTask is a task with schedule: as EventBridge Scheduler gets it.
type scheduledTask struct {
	Name, Service, Expression, TaskDefinition string
	Command                                   []string
}

// scheduledTasks are the spec's scheduled tasks whose service has a
// serving revision; the others are named in skipped.
func (e *Env) scheduledTasks(ctx context.Context, sp *spec.Spec) (tasks []scheduledTask, skipped []string, err error) {
	for _, n := range sp.TaskOrder {
		t := sp.Tasks[n]
		if t == nil || t.Schedule == "" {
			continue
		}
		expr, err := fargate.ScheduleExpression(t.Schedule)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrRefused, sp.FieldError("tasks."+n+".schedule", "%s", err.Error()))
		}
		svc := t.Service
		if svc == "" && len(sp.ServiceOrder) > 0 {
			svc = sp.ServiceOrder[0]
		}
		revs, err := e.state.Revisions(ctx, svc)
		if err != nil {
			return nil, nil, err
		}
		cur := activeOf(revs)
		if cur == nil || cur.TaskDefinition == "" {
			skipped = append(skipped, n)
			continue
		}
		tasks = append(tasks, scheduledTask{Name: n, Service: svc, Expression: expr, TaskDefinition: cur.TaskDefinition, Command: t.Command})
	}
	return tasks, skipped, nil
}

// syncSchedules writes the schedules of the spec's scheduled tasks, each
// on its service's serving revision, and removes those of tasks no longer
// scheduled in the spec.
func (e *Env) syncSchedules(ctx context.Context, in *infra, sp *spec.Spec, p progress) error {
	if sp == nil {
		return nil
	}
	tasks, skipped, err := e.scheduledTasks(ctx, sp)
	if err != nil {
		return err
	}
	for _, n := range skipped {
		p.phase("schedule", "task %s: not scheduled yet, its service has no serving revision", n)
	}
	have, err := e.schedules(ctx)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	if len(tasks) > 0 {
		if err := e.ensureScheduleGroup(ctx); err != nil {
			return err
		}
		role, err := e.schedulerRole(ctx)
		if err != nil {
			return err
		}
		cluster, err := e.clusterARN(ctx, in.Cluster)
		if err != nil {
			return err
		}
		for _, t := range tasks {
			want[taskScheduleName(t.Name)] = true
			if err := e.putSchedule(ctx, e.taskSchedule(in, t, cluster, role)); err != nil {
				return err
			}
			p.phase("schedule", "task %s: %s runs %s on %s", t.Name, t.Expression, strings.Join(t.Command, " "), t.Service)
		}
	}
	sort.Strings(have)
	for _, n := range have {
		if strings.HasPrefix(n, "task-") && !want[n] {
			if err := e.deleteSchedule(ctx, n); err != nil {
				return err
			}
			p.phase("schedule", "schedule %s removed: its task is no longer scheduled", n)
		}
	}
	return nil
}

// taskSchedule is the schedule of a scheduled task.
func (e *Env) taskSchedule(in *infra, t scheduledTask, cluster, role string) *scheduler.CreateScheduleInput {
	assign := schedtypes.AssignPublicIpDisabled
	if in.PublicIPv4 {
		assign = schedtypes.AssignPublicIpEnabled
	}
	overrides, _ := json.Marshal(map[string]any{
		"containerOverrides": []map[string]any{{"name": t.Service, "command": t.Command}},
	})
	return &scheduler.CreateScheduleInput{
		Name: aws.String(taskScheduleName(t.Name)), GroupName: aws.String(e.scheduleGroup()),
		Description:        aws.String("berth " + e.what() + ": task " + t.Name),
		ScheduleExpression: aws.String(t.Expression), ScheduleExpressionTimezone: aws.String("UTC"),
		FlexibleTimeWindow: &schedtypes.FlexibleTimeWindow{Mode: schedtypes.FlexibleTimeWindowModeOff},
		State:              schedtypes.ScheduleStateEnabled,
		Target: &schedtypes.Target{
			Arn: aws.String(cluster), RoleArn: aws.String(role),
			Input: aws.String(string(overrides)),
			EcsParameters: &schedtypes.EcsParameters{
				TaskDefinitionArn: aws.String(t.TaskDefinition), LaunchType: schedtypes.LaunchTypeFargate, TaskCount: aws.Int32(1),
				NetworkConfiguration: &schedtypes.NetworkConfiguration{AwsvpcConfiguration: &schedtypes.AwsVpcConfiguration{
					Subnets: in.Subnets, SecurityGroups: []string{in.SvcGroup}, AssignPublicIp: assign,
				}},
				PropagateTags:        schedtypes.PropagateTagsTaskDefinition,
				EnableECSManagedTags: aws.Bool(true),
			},
			// A run missed is not made up hours later: the next one comes.
			RetryPolicy: &schedtypes.RetryPolicy{MaximumEventAgeInSeconds: aws.Int32(3600), MaximumRetryAttempts: aws.Int32(3)},
		},
	}
}

// coolDown sets the one-time schedule that scales a warm slot to 0 at the
// end of its window, in case no berth verb runs by then to do it.
func (e *Env) coolDown(ctx context.Context, service string, s Slot, at time.Time) error {
	if err := e.ensureScheduleGroup(ctx); err != nil {
		return err
	}
	role, err := e.schedulerRoleARN(ctx)
	if err != nil {
		return err
	}
	input, _ := json.Marshal(map[string]any{"Cluster": e.clusterName(), "Service": e.ecsServiceName(service, s), "DesiredCount": 0})
	n := coolDownName(service, s)
	// A cool-down set by an earlier switch is replaced whole.
	if err := e.deleteSchedule(ctx, n); err != nil {
		return err
	}
	return e.putSchedule(ctx, &scheduler.CreateScheduleInput{
		Name: aws.String(n), GroupName: aws.String(e.scheduleGroup()),
		Description:                aws.String(fmt.Sprintf("berth %s: %s slot %s warm until %s", e.what(), service, s, at.UTC().Format(time.RFC3339))),
		ScheduleExpression:         aws.String("at(" + at.UTC().Format("2006-01-02T15:04:05") + ")"),
		ScheduleExpressionTimezone: aws.String("UTC"),
		FlexibleTimeWindow:         &schedtypes.FlexibleTimeWindow{Mode: schedtypes.FlexibleTimeWindowModeOff},
		ActionAfterCompletion:      schedtypes.ActionAfterCompletionDelete,
		State:                      schedtypes.ScheduleStateEnabled,
		Target: &schedtypes.Target{
			Arn: aws.String(coolDownTarget), RoleArn: aws.String(role), Input: aws.String(string(input)),
			RetryPolicy: &schedtypes.RetryPolicy{MaximumEventAgeInSeconds: aws.Int32(3600), MaximumRetryAttempts: aws.Int32(10)},
		},
	})
}

// keepWarm takes the cool-down off a slot that starts serving or
// starting again.
func (e *Env) keepWarm(ctx context.Context, service string, s Slot) error {
	if _, err := e.c.Scheduler.GetScheduleGroup(ctx, &scheduler.GetScheduleGroupInput{Name: aws.String(e.scheduleGroup())}); apiCode(err) == "ResourceNotFoundException" {
		return nil
	}
	return e.deleteSchedule(ctx, coolDownName(service, s))
}

// destroySchedules removes the app's schedule group and every schedule in
// it (the scheduler role goes with the execution role).
func (e *Env) destroySchedules(ctx context.Context) error {
	if _, err := e.c.Scheduler.GetScheduleGroup(ctx, &scheduler.GetScheduleGroupInput{Name: aws.String(e.scheduleGroup())}); apiCode(err) == "ResourceNotFoundException" {
		return nil
	}
	names, err := e.schedules(ctx)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := e.deleteSchedule(ctx, n); err != nil {
			return err
		}
	}
	_, err = e.c.Scheduler.DeleteScheduleGroup(ctx, &scheduler.DeleteScheduleGroupInput{Name: aws.String(e.scheduleGroup())})
	if err != nil && apiCode(err) != "ResourceNotFoundException" {
		return fmt.Errorf("remove schedule group %s: %w", e.scheduleGroup(), err)
	}
	return nil
}
