package awsenv

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
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
	n := e.schedulerRoleName()
	account, err := e.c.AccountID(ctx)
	if err != nil {
		return "", err
	}
	arn := ""
	got, err := e.c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(n)})
	switch {
	case err == nil:
		arn = aws.ToString(got.Role.Arn)
	case apiCode(err) != "NoSuchEntity":
		return "", fmt.Errorf("find IAM role %s: %w", n, err)
	default:
		trust, _ := json.Marshal(map[string]any{
			"Version": "2012-10-17",
			"Statement": []map[string]any{{
				"Effect": "Allow", "Action": "sts:AssumeRole",
				"Principal": map[string]string{"Service": "scheduler.amazonaws.com"},
				"Condition": map[string]any{"StringEquals": map[string]string{"aws:SourceAccount": account}},
			}},
		})
		var tags []iamtypes.Tag
		for k, v := range e.tagMap(nil) {
			tags = append(tags, iamtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		mk, err := e.c.IAM.CreateRole(ctx, &iam.CreateRoleInput{
			RoleName: aws.String(n), AssumeRolePolicyDocument: aws.String(string(trust)), Tags: tags,
			Description: aws.String("berth: EventBridge Scheduler runs " + e.what() + "'s scheduled tasks and cools its warm slots with it"),
		})
		switch {
		case err == nil:
			arn = aws.ToString(mk.Role.Arn)
		case apiCode(err) == "EntityAlreadyExists":
			if got, err = e.c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(n)}); err != nil {
				return "", fmt.Errorf("find IAM role %s: %w", n, err)
			}
			arn = aws.ToString(got.Role.Arn)
		default:
			return "", fmt.Errorf("create IAM role %s: %w", n, err)
		}
	}
	prefix := fmt.Sprintf("arn:aws:ecs:%s:%s:", e.Region, account)
	cluster := e.clusterName()
	policy, _ := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{
			{
				"Effect": "Allow", "Action": "ecs:RunTask",
				"Resource":  prefix + "task-definition/" + e.App + "-*",
				"Condition": map[string]any{"ArnEquals": map[string]string{"ecs:cluster": prefix + "cluster/" + cluster}},
			},
			{"Effect": "Allow", "Action": "ecs:TagResource", "Resource": prefix + "task/" + cluster + "/*"},
			{"Effect": "Allow", "Action": "ecs:UpdateService", "Resource": prefix + "service/" + cluster + "/" + e.App + "-*"},
			{
				"Effect": "Allow", "Action": "iam:PassRole",
				"Resource":  fmt.Sprintf("arn:aws:iam::%s:role/%s", account, e.execRoleName()),
				"Condition": map[string]any{"StringLike": map[string]string{"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
			},
		},
	})
	if _, err := e.c.IAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(n), PolicyName: aws.String(schedulerPolicy), PolicyDocument: aws.String(string(policy))}); err != nil {
		return "", fmt.Errorf("let IAM role %s run the app's tasks: %w", n, err)
	}
	return arn, nil
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
	n := aws.String(e.schedulerRoleName())
	if _, err := e.c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: n}); apiCode(err) == "NoSuchEntity" {
		return nil
	}
	if _, err := e.c.IAM.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: n, PolicyName: aws.String(schedulerPolicy)}); err != nil && apiCode(err) != "NoSuchEntity" {
		return err
	}
	if _, err := e.c.IAM.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: n}); err != nil && apiCode(err) != "NoSuchEntity" {
		return err
	}
	return nil
}
