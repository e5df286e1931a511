package awsenv

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// executionPolicy is the AWS-managed policy that lets ECS pull from ECR and
// write to CloudWatch Logs for a task.
const executionPolicy = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"

func (e *Env) execRoleName() string { return name(64, "berth", e.App, e.Name, "exec") }

// execRole finds or makes the app's task execution role: ECS may pull its
// images, write its logs and read its secrets (berth/ENV/APP/*), nothing
// else.
func (e *Env) execRole(ctx context.Context) (string, error) {
	n := e.execRoleName()
	got, err := e.c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(n)})
	if err == nil {
		return aws.ToString(got.Role.Arn), nil
	}
	if apiCode(err) != "NoSuchEntity" {
		return "", fmt.Errorf("find IAM role %s: %w", n, err)
	}
	trust, _ := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{{
			"Effect": "Allow", "Action": "sts:AssumeRole",
			"Principal": map[string]string{"Service": "ecs-tasks.amazonaws.com"},
		}},
	})
	var tags []iamtypes.Tag
	for k, v := range e.tagMap(nil) {
		tags = append(tags, iamtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	mk, err := e.c.IAM.CreateRole(ctx, &iam.CreateRoleInput{
		RoleName: aws.String(n), AssumeRolePolicyDocument: aws.String(string(trust)), Tags: tags,
		Description: aws.String("berth: ECS runs " + e.what() + "'s tasks with it"),
	})
	if err != nil && apiCode(err) != "EntityAlreadyExists" {
		return "", fmt.Errorf("create IAM role %s: %w", n, err)
	}
	if _, err := e.c.IAM.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(n), PolicyArn: aws.String(executionPolicy)}); err != nil {
		return "", fmt.Errorf("attach %s to IAM role %s: %w", executionPolicy, n, err)
	}
	account, err := e.c.AccountID(ctx)
	if err != nil {
		return "", err
	}
	secrets, _ := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{{
			"Effect": "Allow", "Action": []string{"secretsmanager:GetSecretValue"},
			"Resource": fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s*", e.Region, account, e.secretPrefix()),
		}},
	})
	if _, err := e.c.IAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(n), PolicyName: aws.String("berth-secrets"), PolicyDocument: aws.String(string(secrets))}); err != nil {
		return "", fmt.Errorf("let IAM role %s read the app's secrets: %w", n, err)
	}
	if mk != nil {
		return aws.ToString(mk.Role.Arn), nil
	}
	got, err = e.c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(n)})
	if err != nil {
		return "", fmt.Errorf("find IAM role %s: %w", n, err)
	}
	return aws.ToString(got.Role.Arn), nil
}

func iamGetRole(n string) *iam.GetRoleInput { return &iam.GetRoleInput{RoleName: aws.String(n)} }
