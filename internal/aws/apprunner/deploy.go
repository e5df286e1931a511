package apprunner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apprunner"
	"github.com/aws/aws-sdk-go-v2/service/apprunner/types"

	"github.com/berth-dev/berth/internal/spec"
)

// Result is what a deploy or rollback did, for the caller's revision
// records (awsstate) and its output.
type Result struct {
	// ServiceARN and URL (https://...) of the App Runner service.
	ServiceARN string
	URL        string
	// Image is the image serving now; Previous the one serving before.
	// After a failed deploy Image is Previous: App Runner rolled back.
	Image    string
	Previous string
	// Operation is the UpdateService operation waited on.
	Operation Operation
}

// Deploy makes the App Runner service named by svc.AppRunner run image (a
// reference pinned by digest, repo@sha256:..., pushed by the caller) with
// svc's port, command, env, secrets, cpu/memory, health check and scale,
// in one UpdateService, and waits for the operation, printing its phases to
// progress. What the spec leaves unset (cpu, memory, scale) stays as the
// service has it; observability, network and the instance role are never
// changed. When the operation fails the error wraps ErrDeployFailed and
// says that App Runner rolled back and the previous image keeps serving;
// the Result then has Image == Previous.
func (r *Runner) Deploy(ctx context.Context, svc *spec.Service, image string, progress io.Writer) (*Result, error) {
	return r.update(ctx, svc, image, "deploy", progress)
}

// Rollback returns the service to previousImage, the digest of an earlier
// revision, with that revision's spec (svc): a deploy of it.
func (r *Runner) Rollback(ctx context.Context, svc *spec.Service, previousImage string, progress io.Writer) (*Result, error) {
	return r.update(ctx, svc, previousImage, "rollback", progress)
}

func (r *Runner) update(ctx context.Context, svc *spec.Service, image, verb string, progress io.Writer) (*Result, error) {
	if svc.AppRunner == "" {
		return nil, fmt.Errorf("service %s has no apprunner: ARN; berth import apprunner writes it", svc.Name)
	}
	if !strings.Contains(image, "@sha256:") {
		return nil, fmt.Errorf("%s of %s: image %q is not pinned by digest (repo@sha256:...); push it first", verb, svc.Name, image)
	}
	cur, err := r.describe(ctx, svc.AppRunner)
	if err != nil {
		return nil, err
	}
	if cur.Status != types.ServiceStatusRunning {
		return nil, notRunning(cur, verb)
	}
	in, err := r.updateInput(ctx, svc, cur, image, progress)
	if err != nil {
		return nil, fmt.Errorf("%s of %s: %w", verb, svc.Name, err)
	}
	res := &Result{ServiceARN: svc.AppRunner, Previous: servingImage(cur)}
	if u := aws.ToString(cur.ServiceUrl); u != "" {
		res.URL = "https://" + u
	}
	fmt.Fprintf(progress, "%s: App Runner service %s to %s\n", svc.Name, aws.ToString(cur.ServiceName), image)
	out, err := r.api.UpdateService(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("%s of %s: App Runner UpdateService: %w", verb, svc.Name, err)
	}
	op, after, err := r.wait(ctx, svc.AppRunner, aws.ToString(out.OperationId), progress)
	if err != nil {
		return nil, err
	}
	res.Operation = *op
	res.Image = servingImage(after)
	if op.Status != string(types.OperationStatusSucceeded) {
		return res, fmt.Errorf("%w: %s of %s to %s ended %s; App Runner rolled back by itself and %s keeps serving; the service's application logs say why the new instances failed",
			ErrDeployFailed, verb, svc.Name, image, op.Status, res.Image)
	}
	if res.Image != image {
		return res, fmt.Errorf("%w: %s of %s: the operation succeeded but the service runs %s, not %s; run the %s again", ErrDeployFailed, verb, svc.Name, res.Image, image, verb)
	}
	return res, nil
}

// updateInput is the UpdateService request that makes cur run image with
// svc's configuration.
func (r *Runner) updateInput(ctx context.Context, svc *spec.Service, cur *types.Service, image string, progress io.Writer) (*apprunner.UpdateServiceInput, error) {
	if svc.Port == 0 {
		return nil, errors.New("App Runner serves HTTP: a service on it needs port:")
	}
	old := cur.SourceConfiguration
	if old == nil || old.ImageRepository == nil {
		return nil, fmt.Errorf("App Runner service %s is built from source code, not an image; berth deploys images only", aws.ToString(cur.ServiceName))
	}
	ic := &types.ImageConfiguration{Port: aws.String(strconv.Itoa(svc.Port))}
	if len(svc.Env) > 0 {
		ic.RuntimeEnvironmentVariables = maps.Clone(svc.Env)
	}
	if len(svc.Command) > 0 {
		ic.StartCommand = aws.String(joinCommand(svc.Command))
	}
	var known map[string]string
	if old.ImageRepository.ImageConfiguration != nil {
		known = old.ImageRepository.ImageConfiguration.RuntimeEnvironmentSecrets
	}
	for _, name := range svc.Secrets {
		ref, ok := known[name]
		if !ok && r.SecretARN != nil {
			var err error
			if ref, err = r.SecretARN(name); err != nil {
				return nil, fmt.Errorf("secret %s: %w", name, err)
			}
			ok = ref != ""
		}
		if !ok {
			return nil, fmt.Errorf("secret %s is not referenced by App Runner service %s: add it to the service's RuntimeEnvironmentSecrets (a Secrets Manager or SSM ARN) or remove it from secrets:", name, aws.ToString(cur.ServiceName))
		}
		if ic.RuntimeEnvironmentSecrets == nil {
			ic.RuntimeEnvironmentSecrets = map[string]string{}
		}
		ic.RuntimeEnvironmentSecrets[name] = ref
	}
	repoType := types.ImageRepositoryTypeEcr
	if strings.HasPrefix(image, "public.ecr.aws/") {
		repoType = types.ImageRepositoryTypeEcrPublic
	}
	if aws.ToBool(old.AutoDeploymentsEnabled) {
		fmt.Fprintf(progress, "%s: turning App Runner's automatic deployments off: berth deploys images pinned by digest\n", svc.Name)
	}
	in := &apprunner.UpdateServiceInput{
		ServiceArn: aws.String(svc.AppRunner),
		SourceConfiguration: &types.SourceConfiguration{
			ImageRepository: &types.ImageRepository{
				ImageIdentifier:     aws.String(image),
				ImageRepositoryType: repoType,
				ImageConfiguration:  ic,
			},
			AutoDeploymentsEnabled:      aws.Bool(false),
			AuthenticationConfiguration: old.AuthenticationConfiguration,
		},
	}
	if svc.CPU != 0 || svc.Memory != 0 {
		cpu, mem := svc.CPU, svc.Memory
		if cur.InstanceConfiguration != nil {
			if cpu == 0 {
				cpu, _ = parseCPU(aws.ToString(cur.InstanceConfiguration.Cpu))
			}
			if mem == 0 {
				mem, _ = parseMemory(aws.ToString(cur.InstanceConfiguration.Memory))
			}
		}
		c, m, err := instanceSize(cpu, mem)
		if err != nil {
			return nil, err
		}
		in.InstanceConfiguration = &types.InstanceConfiguration{Cpu: aws.String(c), Memory: aws.String(m)}
		if cur.InstanceConfiguration != nil {
			in.InstanceConfiguration.InstanceRoleArn = cur.InstanceConfiguration.InstanceRoleArn
		}
	}
	hc, err := healthCheck(svc.Health)
	if err != nil {
		return nil, err
	}
	in.HealthCheckConfiguration = hc
	if svc.Scale != nil {
		arn, err := r.scaling(ctx, svc, cur)
		if err != nil {
			return nil, err
		}
		in.AutoScalingConfigurationArn = arn
	}
	return in, nil
}

// healthCheck is App Runner's health check for berth's: HTTP GET of the
// path, or a TCP connect without one; whole seconds, each value 1-20
// (botocore's HealthCheck* shapes).
func healthCheck(h spec.Health) (*types.HealthCheckConfiguration, error) {
	secs := func(key string, d time.Duration) (*int32, error) {
		s := d.Seconds()
		if s != math.Trunc(s) || s < 1 || s > 20 {
			return nil, fmt.Errorf("health.%s %s: App Runner takes whole seconds from 1s to 20s", key, d)
		}
		return aws.Int32(int32(s)), nil
	}
	count := func(key string, n int) (*int32, error) {
		if n < 1 || n > 20 {
			return nil, fmt.Errorf("health.%s %d: App Runner takes 1 to 20", key, n)
		}
		return aws.Int32(int32(n)), nil
	}
	hc := &types.HealthCheckConfiguration{Protocol: types.HealthCheckProtocolTcp}
	if h.Path != "" {
		hc.Protocol, hc.Path = types.HealthCheckProtocolHttp, aws.String(h.Path)
	}
	var err error
	if hc.Interval, err = secs("interval", h.Interval); err != nil {
		return nil, err
	}
	if hc.Timeout, err = secs("timeout", h.Timeout); err != nil {
		return nil, err
	}
	if hc.HealthyThreshold, err = count("healthy", h.Healthy); err != nil {
		return nil, err
	}
	if hc.UnhealthyThreshold, err = count("unhealthy", h.Unhealthy); err != nil {
		return nil, err
	}
	return hc, nil
}

// scaling returns the auto scaling configuration ARN for svc.Scale: the
// service's own when it already says the same (nil: unchanged), else a new
// revision of berth-SERVICE (CreateAutoScalingConfiguration).
func (r *Runner) scaling(ctx context.Context, svc *spec.Service, cur *types.Service) (*string, error) {
	sc := svc.Scale
	switch {
	case sc.Min < 1 || sc.Min > 25:
		return nil, fmt.Errorf("scale.min %d: App Runner keeps 1 to 25 instances provisioned", sc.Min)
	case sc.Max < 1 || sc.Max > 25:
		return nil, fmt.Errorf("scale.max %d: App Runner runs 1 to 25 instances", sc.Max)
	case sc.Concurrency < 1 || sc.Concurrency > 200:
		return nil, fmt.Errorf("scale.concurrency %d: App Runner takes 1 to 200 requests per instance", sc.Concurrency)
	}
	if s := cur.AutoScalingConfigurationSummary; s != nil && s.AutoScalingConfigurationArn != nil {
		now, err := r.api.DescribeAutoScalingConfiguration(ctx, &apprunner.DescribeAutoScalingConfigurationInput{AutoScalingConfigurationArn: s.AutoScalingConfigurationArn})
		if err != nil {
			return nil, fmt.Errorf("App Runner DescribeAutoScalingConfiguration: %w", err)
		}
		a := now.AutoScalingConfiguration
		if int(aws.ToInt32(a.MinSize)) == sc.Min && int(aws.ToInt32(a.MaxSize)) == sc.Max && int(aws.ToInt32(a.MaxConcurrency)) == sc.Concurrency {
			return nil, nil
		}
	}
	name := "berth-" + svc.Name
	if len(name) > 32 {
		name = name[:32]
	}
	out, err := r.api.CreateAutoScalingConfiguration(ctx, &apprunner.CreateAutoScalingConfigurationInput{
		AutoScalingConfigurationName: aws.String(name),
		MinSize:                      aws.Int32(int32(sc.Min)),
		MaxSize:                      aws.Int32(int32(sc.Max)),
		MaxConcurrency:               aws.Int32(int32(sc.Concurrency)),
		Tags:                         []types.Tag{{Key: aws.String("berth.service"), Value: aws.String(svc.Name)}},
	})
	if err != nil {
		return nil, fmt.Errorf("App Runner CreateAutoScalingConfiguration %s: %w", name, err)
	}
	return out.AutoScalingConfiguration.AutoScalingConfigurationArn, nil
}
