package awsenv

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// schedulerPolicy is the name of the scheduler role's inline policy.
const schedulerPolicy = "berth-scheduler"

func (e *Env) schedulerRoleName() string { return name(64, "berth", e.App, e.Name, "sched") }

// schedulerRole finds or makes the role EventBridge Scheduler assumes for
// the app's schedules, and (re)writes what it may do: run the app's task
// definitions on its cluster (passing them the execution role), tag the
// tasks it starts, and set the task count of the app's ECS services (the
// warm slots' cool-down). Nothing else.
func (e *Env) schedulerRole(ctx context.Context) (string, error) {
	account, err := e.c.AccountID(ctx)
	if err != nil {
		return "", err
	}
	prefix := fmt.Sprintf("arn:aws:ecs:%s:%s:", e.Region, account)
	cluster := e.clusterName()
	return e.ensureRole(ctx, role{
		Name: e.schedulerRoleName(), Service: "scheduler.amazonaws.com",
		Description: "berth: EventBridge Scheduler runs " + e.what() + "'s scheduled tasks and cools its warm slots with it",
		Condition:   map[string]any{"StringEquals": map[string]string{"aws:SourceAccount": account}},
		Inline: map[string][]map[string]any{schedulerPolicy: {
			{
				"Effect": "Allow", "Action": "ecs:RunTask",
				"Resource":  prefix + "task-definition/" + e.App + "-*",
				"Condition": map[string]any{"ArnEquals": map[string]string{"ecs:cluster": prefix + "cluster/" + cluster}},
			},
			{"Effect": "Allow", "Action": "ecs:TagResource", "Resource": prefix + "task/" + cluster + "/*"},
			{"Effect": "Allow", "Action": "ecs:UpdateService", "Resource": prefix + "service/" + cluster + "/" + e.App + "-*"},
			{
				"Effect": "Allow", "Action": "iam:PassRole",
				"Resource": []string{
					fmt.Sprintf("arn:aws:iam::%s:role/%s", account, e.execRoleName()),
					fmt.Sprintf("arn:aws:iam::%s:role/%s", account, e.taskRoleName()),
				},
				"Condition": map[string]any{"StringLike": map[string]string{"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
			},
		}},
	})
}

// schedulerRoleARN is the scheduler role's ARN, made (schedulerRole) only
// when missing: a switch does not rewrite its policy.
func (e *Env) schedulerRoleARN(ctx context.Context) (string, error) {
	got, err := e.c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(e.schedulerRoleName())})
	if err == nil {
		return aws.ToString(got.Role.Arn), nil
	}
	return e.schedulerRole(ctx)
}

// deleteSchedulerRole removes the scheduler role, if berth made one.
func (e *Env) deleteSchedulerRole(ctx context.Context) error {
	return e.deleteRole(ctx, e.schedulerRoleName(), nil, schedulerPolicy)
}
