package fargate

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/spec"
)

// Input is what a service's revision needs besides its spec to become a
// task definition: names, where its pinned images and secrets are, and the
// roles and log group berth made for the app.
type Input struct {
	App, Env string
	Service  *spec.Service
	Revision int
	// Image is the service's own image, pinned by digest
	// (ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO@sha256:...).
	Image string
	// SidecarImages are the sidecars' pinned images, by sidecar name.
	SidecarImages map[string]string
	// SecretARNs are the Secrets Manager ARNs of the app's secrets, by
	// secret name. Only ARNs go in a task definition, never a value.
	SecretARNs map[string]string
	// LogGroup and Region are where the awslogs driver writes.
	LogGroup, Region string
	// ExecutionRoleARN lets ECS pull the images, write logs and read the
	// secrets; TaskRoleARN, optional, is what the app's code may do.
	ExecutionRoleARN string
	TaskRoleARN      string
	// Platform is what the images were built for, used when the service
	// names no platform; "" means linux/amd64.
	Platform string
}

// Tags berth puts on everything it creates in AWS.
const (
	TagApp      = "berth.app"
	TagEnv      = "berth.env"
	TagService  = "berth.service"
	TagRevision = "berth.revision"
)

// maxFamily is the longest task definition family ECS takes.
const maxFamily = 255

// familyRE matches what a family may not hold.
var familyRE = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// Family is the task definition family of an app's service: APP-SERVICE,
// with anything ECS does not take replaced by '-', at most 255 characters.
// The environment is not in it: environments are usually separate accounts
// or regions, and the berth.env tag tells them apart where they are not.
func Family(app, env, service string) string {
	f := familyRE.ReplaceAllString(app+"-"+env+"-"+service, "-")
	if len(f) > maxFamily {
		f = f[:maxFamily]
	}
	return f
}

// ErrMissingInput is wrapped by TaskDefinition's errors about an Input
// berth's deploy should have filled in.
var ErrMissingInput = errors.New("task definition input incomplete")

// TaskDefinition is the RegisterTaskDefinition request for a revision of a
// service: awsvpc networking on Fargate, the task size from Size, the
// service's own container (essential, its port, command, env sorted by
// name, secrets as ARNs) and its sidecars (essential as the spec says,
// dependsOn with the spec's conditions), all logging to CloudWatch through
// awslogs with the service as the stream prefix, tagged with the app, the
// environment, the service and the revision.
//
// No container gets an ECS health check: berth's checks are HTTP or TCP
// probes from outside, which the ALB's target group carries
// (TargetHealth), while an ECS container health check is a command run
// inside the image, which a FROM-scratch image has no shell or tool for.
//
// It fails when the size is not one Fargate sells (Check says so with the
// line first) or when in lacks an image or a secret's ARN.
func TaskDefinition(in Input) (*ecs.RegisterTaskDefinitionInput, error) {
	svc := in.Service
	if svc == nil {
		return nil, fmt.Errorf("%w: no service", ErrMissingInput)
	}
	size, err := Size(svc)
	if err != nil {
		return nil, err
	}
	platform := svc.Platform
	if platform == "" {
		platform = in.Platform
	}
	arch, err := Architecture(platform)
	if err != nil {
		return nil, err
	}
	split := Split(svc, size)
	logs := func() *types.LogConfiguration {
		return &types.LogConfiguration{
			LogDriver: types.LogDriverAwslogs,
			Options: map[string]string{
				"awslogs-group":         in.LogGroup,
				"awslogs-region":        in.Region,
				"awslogs-stream-prefix": svc.Name,
			},
		}
	}

	if in.Image == "" {
		return nil, fmt.Errorf("%w: no image for service %s", ErrMissingInput, svc.Name)
	}
	env := maps.Clone(svc.Env)
	if svc.Port != 0 {
		if _, set := env["PORT"]; !set {
			if env == nil {
				env = map[string]string{}
			}
			// The local engine tells the app its port as $PORT; so does
			// Fargate, unless the spec's env sets it.
			env["PORT"] = strconv.Itoa(svc.Port)
		}
	}
	main := types.ContainerDefinition{
		Name:        aws.String(svc.Name),
		Image:       aws.String(in.Image),
		Essential:   aws.Bool(true),
		Command:     svc.Command,
		StopTimeout: aws.Int32(int32(spec.DefaultStopGrace / time.Second)),
	}
	if svc.Port != 0 {
		main.PortMappings = []types.PortMapping{{
			Name:          aws.String(svc.Name + "-http"),
			ContainerPort: aws.Int32(int32(svc.Port)),
			Protocol:      types.TransportProtocolTcp,
			AppProtocol:   types.ApplicationProtocolHttp,
		}}
	}
	if err := fill(&main, env, svc.Secrets, in.SecretARNs, split[svc.Name], svc.DependsOn, logs()); err != nil {
		return nil, err
	}
	defs := []types.ContainerDefinition{main}

	// A non-essential sidecar is restarted alone on the local engine,
	// unless a container waits for it to complete (an init container).
	initTargets := map[string]bool{}
	for name, cond := range svc.DependsOn {
		if cond == spec.ConditionComplete || cond == spec.ConditionSuccess {
			initTargets[name] = true
		}
	}
	for _, sc := range svc.Sidecars {
		for name, cond := range sc.DependsOn {
			if cond == spec.ConditionComplete || cond == spec.ConditionSuccess {
				initTargets[name] = true
			}
		}
	}
	for _, name := range sidecarNames(svc) {
		sc := svc.Sidecars[name]
		image := in.SidecarImages[name]
		if image == "" {
			return nil, fmt.Errorf("%w: no image for sidecar %s of service %s", ErrMissingInput, name, svc.Name)
		}
		d := types.ContainerDefinition{
			Name:        aws.String(name),
			Image:       aws.String(image),
			Essential:   aws.Bool(sc.Essential),
			Command:     sc.Command,
			StopTimeout: aws.Int32(int32(spec.DefaultStopGrace / time.Second)),
		}
		if !sc.Essential && !initTargets[name] {
			d.RestartPolicy = &types.ContainerRestartPolicy{Enabled: aws.Bool(true)}
		}
		if err := fill(&d, sc.Env, sc.Secrets, in.SecretARNs, split[name], sc.DependsOn, logs()); err != nil {
			return nil, err
		}
		defs = append(defs, d)
	}

	out := &ecs.RegisterTaskDefinitionInput{
		Family:                  aws.String(Family(in.App, in.Env, svc.Name)),
		NetworkMode:             types.NetworkModeAwsvpc,
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		Cpu:                     aws.String(strconv.Itoa(size.CPU)),
		Memory:                  aws.String(strconv.Itoa(size.Memory)),
		RuntimePlatform: &types.RuntimePlatform{
			CpuArchitecture:       types.CPUArchitecture(arch),
			OperatingSystemFamily: types.OSFamilyLinux,
		},
		ContainerDefinitions: defs,
		Tags: []types.Tag{
			{Key: aws.String(TagApp), Value: aws.String(in.App)},
			{Key: aws.String(TagEnv), Value: aws.String(in.Env)},
			{Key: aws.String(TagService), Value: aws.String(svc.Name)},
			{Key: aws.String(TagRevision), Value: aws.String(strconv.Itoa(in.Revision))},
		},
	}
	if in.ExecutionRoleARN != "" {
		out.ExecutionRoleArn = aws.String(in.ExecutionRoleARN)
	}
	if in.TaskRoleARN != "" {
		out.TaskRoleArn = aws.String(in.TaskRoleARN)
	}
	return out, nil
}

// fill sets what the service's container and its sidecars share: env sorted
// by name, secrets as ARNs sorted by name, sizes, dependencies and logs.
func fill(d *types.ContainerDefinition, env map[string]string, secrets []string, arns map[string]string, size ContainerSize, deps map[string]spec.Condition, logs *types.LogConfiguration) error {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		d.Environment = append(d.Environment, types.KeyValuePair{Name: aws.String(k), Value: aws.String(env[k])})
	}
	for _, name := range slices.Sorted(slices.Values(secrets)) {
		arn := arns[name]
		if arn == "" {
			return fmt.Errorf("%w: no ARN for secret %s; set it with berth secret set --env", ErrMissingInput, name)
		}
		d.Secrets = append(d.Secrets, types.Secret{Name: aws.String(name), ValueFrom: aws.String(arn)})
	}
	if size.CPU > 0 {
		d.Cpu = int32(size.CPU)
	}
	if size.Memory > 0 {
		d.Memory = aws.Int32(int32(size.Memory))
	}
	d.MemoryReservation = aws.Int32(int32(size.MemoryReservation))
	for _, name := range slices.Sorted(maps.Keys(deps)) {
		d.DependsOn = append(d.DependsOn, types.ContainerDependency{
			ContainerName: aws.String(name),
			Condition:     Condition(deps[name]),
		})
	}
	d.LogConfiguration = logs
	return nil
}

// Condition is the ECS container condition of a berth one.
func Condition(c spec.Condition) types.ContainerCondition {
	switch c {
	case spec.ConditionHealthy:
		return types.ContainerConditionHealthy
	case spec.ConditionComplete:
		return types.ContainerConditionComplete
	case spec.ConditionSuccess:
		return types.ContainerConditionSuccess
	}
	return types.ContainerConditionStart
}
