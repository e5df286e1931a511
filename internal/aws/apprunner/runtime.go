package apprunner

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Runtime is what the App Runner service runs now, for a task run on the
// environment's ECS cluster (task run, release:) to run like it: the same
// image, command, env and secret references.
type Runtime struct {
	Image   string
	Port    int
	Command []string          // the start command as words; nil: the image's
	Env     map[string]string // RuntimeEnvironmentVariables
	// Secrets maps variable names to the Secrets Manager secret or SSM
	// parameter ARNs App Runner reads them from (an ECS container
	// definition's secrets take the same ARNs as valueFrom).
	Secrets map[string]string
	CPU     float64 // vCPUs
	Memory  int64   // bytes
	// InstanceRole is the role the service's code runs with ("" if none).
	InstanceRole string
}

// Runtime reads what the service runs now.
func (r *Runner) Runtime(ctx context.Context, arn string) (*Runtime, error) {
	svc, err := r.describe(ctx, arn)
	if err != nil {
		return nil, err
	}
	rt := &Runtime{Image: servingImage(svc), Env: map[string]string{}, Secrets: map[string]string{}}
	if sc := svc.SourceConfiguration; sc != nil && sc.ImageRepository != nil && sc.ImageRepository.ImageConfiguration != nil {
		ic := sc.ImageRepository.ImageConfiguration
		rt.Port, _ = strconv.Atoi(aws.ToString(ic.Port))
		if cmd := aws.ToString(ic.StartCommand); cmd != "" {
			rt.Command = splitCommand(cmd)
		}
		maps.Copy(rt.Env, ic.RuntimeEnvironmentVariables)
		maps.Copy(rt.Secrets, ic.RuntimeEnvironmentSecrets)
	}
	if ic := svc.InstanceConfiguration; ic != nil {
		rt.CPU, _ = parseCPU(aws.ToString(ic.Cpu))
		rt.Memory, _ = parseMemory(aws.ToString(ic.Memory))
		rt.InstanceRole = aws.ToString(ic.InstanceRoleArn)
	}
	return rt, nil
}

// LogGroups are the CloudWatch log groups App Runner writes for the service
// arn: application (the instances' stdout and stderr: berth logs) and
// service (deployments and health checks: berth events), named
// /aws/apprunner/NAME/ID/application and .../service.
func LogGroups(arn string) (application, service string, err error) {
	// arn:aws:apprunner:REGION:ACCOUNT:service/NAME/ID
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[2] != "apprunner" {
		return "", "", fmt.Errorf("%q is not an App Runner service ARN", arn)
	}
	res := strings.Split(parts[5], "/")
	if len(res) != 3 || res[0] != "service" || res[1] == "" || res[2] == "" {
		return "", "", fmt.Errorf("%q is not an App Runner service ARN", arn)
	}
	base := "/aws/apprunner/" + res[1] + "/" + res[2]
	return base + "/application", base + "/service", nil
}
