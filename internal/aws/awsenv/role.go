package awsenv

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// The IAM roles berth makes for an app in an environment, each allowed
// only what its user needs:
//
//	berth-APP-ENV-exec   ECS, to start the tasks: pull from ECR, write
//	                     logs, read the app's secrets
//	berth-APP-ENV-task   the tasks themselves: the Session Manager
//	                     channels berth exec runs over, nothing else
//	berth-APP-ENV-sched  EventBridge Scheduler (schedrole.go)

// executionPolicy is the AWS-managed policy that lets ECS pull from ECR and
// write to CloudWatch Logs for a task.
const executionPolicy = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"

// Inline policy names.
const (
	secretsPolicy = "berth-secrets"
	execPolicy    = "berth-exec"
)

func (e *Env) execRoleName() string { return name(64, "berth", e.App, e.Name, "exec") }
func (e *Env) taskRoleName() string { return name(64, "berth", e.App, e.Name, "task") }

// role is an IAM role berth makes: who may assume it and what it may do.
type role struct {
	Name, Service, Description string
	// Condition limits who may assume it (nil: the service alone).
	Condition map[string]any
	Managed   []string
	// Inline are its inline policies by name; they are written on every
	// call, so a berth that grants more updates what an older one wrote.
	Inline map[string][]map[string]any
}

func iamGetRole(n string) *iam.GetRoleInput { return &iam.GetRoleInput{RoleName: aws.String(n)} }

// ensureRole finds or makes a role and writes its policies; it returns
// the role's ARN.
func (e *Env) ensureRole(ctx context.Context, r role) (string, error) {
	arn := ""
	got, err := e.c.IAM.GetRole(ctx, iamGetRole(r.Name))
	switch {
	case err == nil:
		arn = aws.ToString(got.Role.Arn)
	case apiCode(err) != "NoSuchEntity":
		return "", fmt.Errorf("find IAM role %s: %w", r.Name, err)
	default:
		stmt := map[string]any{
			"Effect": "Allow", "Action": "sts:AssumeRole",
			"Principal": map[string]string{"Service": r.Service},
		}
		if r.Condition != nil {
			stmt["Condition"] = r.Condition
		}
		trust, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []map[string]any{stmt}})
		var tags []iamtypes.Tag
		for k, v := range e.tagMap(nil) {
			tags = append(tags, iamtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		mk, err := e.c.IAM.CreateRole(ctx, &iam.CreateRoleInput{
			RoleName: aws.String(r.Name), AssumeRolePolicyDocument: aws.String(string(trust)), Tags: tags,
			Description: aws.String(r.Description),
		})
		switch {
		case err == nil:
			arn = aws.ToString(mk.Role.Arn)
		case apiCode(err) == "EntityAlreadyExists":
			if got, err = e.c.IAM.GetRole(ctx, iamGetRole(r.Name)); err != nil {
				return "", fmt.Errorf("find IAM role %s: %w", r.Name, err)
			}
			arn = aws.ToString(got.Role.Arn)
		default:
			return "", fmt.Errorf("create IAM role %s: %w", r.Name, err)
		}
	}
	for _, p := range r.Managed {
		if _, err := e.c.IAM.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(r.Name), PolicyArn: aws.String(p)}); err != nil {
			return "", fmt.Errorf("attach %s to IAM role %s: %w", p, r.Name, err)
		}
	}
	for pn, stmts := range r.Inline {
		doc, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": stmts})
		if _, err := e.c.IAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(r.Name), PolicyName: aws.String(pn), PolicyDocument: aws.String(string(doc))}); err != nil {
			return "", fmt.Errorf("write policy %s of IAM role %s: %w", pn, r.Name, err)
		}
	}
	return arn, nil
}

// deleteRole removes a role berth made with its policies, if it exists.
func (e *Env) deleteRole(ctx context.Context, n string, managed []string, inline ...string) error {
	rn := aws.String(n)
	if _, err := e.c.IAM.GetRole(ctx, iamGetRole(n)); apiCode(err) == "NoSuchEntity" {
		return nil
	}
	for _, p := range managed {
		if _, err := e.c.IAM.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: rn, PolicyArn: aws.String(p)}); err != nil && apiCode(err) != "NoSuchEntity" {
			return err
		}
	}
	for _, p := range inline {
		if _, err := e.c.IAM.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: rn, PolicyName: aws.String(p)}); err != nil && apiCode(err) != "NoSuchEntity" {
			return err
		}
	}
	if _, err := e.c.IAM.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: rn}); err != nil && apiCode(err) != "NoSuchEntity" {
		return err
	}
	return nil
}

// execRole finds or makes the app's task execution role: ECS may pull its
// images, write its logs and read its secrets (berth/ENV/APP/*), nothing
// else.
func (e *Env) execRole(ctx context.Context) (string, error) {
	account, err := e.c.AccountID(ctx)
	if err != nil {
		return "", err
	}
	return e.ensureRole(ctx, role{
		Name: e.execRoleName(), Service: "ecs-tasks.amazonaws.com",
		Description: "berth: ECS runs " + e.what() + "'s tasks with it",
		Managed:     []string{executionPolicy},
		Inline: map[string][]map[string]any{secretsPolicy: {{
			"Effect": "Allow", "Action": []string{"secretsmanager:GetSecretValue"},
			"Resource": fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s*", e.Region, account, e.secretPrefix()),
		}}},
	})
}

// taskRole finds or makes the role the app's tasks run with: the Session
// Manager channels ECS exec needs (berth exec), nothing else.
func (e *Env) taskRole(ctx context.Context) (string, error) {
	return e.ensureRole(ctx, role{
		Name: e.taskRoleName(), Service: "ecs-tasks.amazonaws.com",
		Description: "berth: " + e.what() + "'s tasks run with it (berth exec's channels)",
		Inline: map[string][]map[string]any{execPolicy: {{
			"Effect": "Allow", "Resource": "*", "Action": []string{
				"ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
				"ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel",
			},
		}}},
	})
}

func (e *Env) deleteExecRole(ctx context.Context) error {
	return e.deleteRole(ctx, e.execRoleName(), []string{executionPolicy}, secretsPolicy, appRunnerSecretsPolicy)
}

func (e *Env) deleteTaskRole(ctx context.Context) error {
	return e.deleteRole(ctx, e.taskRoleName(), nil, execPolicy)
}
