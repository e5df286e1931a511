package awsenv

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/berth-dev/berth/internal/aws/fargate"
	"github.com/berth-dev/berth/internal/spec"
)

// A berth service runs in two slots, a and b: each an ECS service behind
// its own target group, and one listener rule forwarding to both with
// weights. Exactly one slot has weight 100 (the active revision); the
// other is the next deploy's, or the previous revision kept warm for an
// instant rollback:
//
//	deploy:   idle slot := new task definition, N tasks
//	          ─▶ running and healthy ─▶ weights flipped in one ModifyRule
//	rollback: weights flipped back (warm) or the slot scaled up first (cold)
type Slot string

// The two slots.
const (
	SlotA Slot = "a"
	SlotB Slot = "b"
)

// Other is the slot that is not s.
func (s Slot) Other() Slot {
	if s == SlotA {
		return SlotB
	}
	return SlotA
}

// Every name of an app's resources holds its environment too: two
// environments of one app may share an account and region (and, with
// cluster:, a cluster) without touching each other's.
func (e *Env) ecsServiceName(svc string, s Slot) string {
	return name(255, e.App, e.Name, svc, string(s))
}

// repoName is the ECR repository of a service's images in the environment.
func (e *Env) repoName(svc string) string {
	return name(256, "berth", e.App, e.Name, svc)
}

func (e *Env) targetGroupName(svc string, s Slot) string {
	return name(32, "b", e.App, e.Name, svc, string(s))
}

// targetGroup finds or makes a slot's target group, health-checked as the
// service's health: says (an HTTP path, else TCP).
func (e *Env) targetGroup(ctx context.Context, in *infra, svc *spec.Service, s Slot) (string, error) {
	n := e.targetGroupName(svc.Name, s)
	out, err := e.c.ELB.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{Names: []string{n}})
	if err == nil && len(out.TargetGroups) > 0 {
		return aws.ToString(out.TargetGroups[0].TargetGroupArn), nil
	}
	if err != nil && apiCode(err) != "TargetGroupNotFound" {
		return "", fmt.Errorf("find target group %s: %w", n, err)
	}
	hc := fargate.TargetHealth(svc)
	mk, err := e.c.ELB.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{
		Name: aws.String(n), TargetType: elbtypes.TargetTypeEnumIp, VpcId: aws.String(in.VPC),
		Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(int32(svc.Port)),
		HealthCheckEnabled: aws.Bool(true), HealthCheckProtocol: elbtypes.ProtocolEnumHttp,
		HealthCheckPath:            aws.String(hc.Path),
		Matcher:                    &elbtypes.Matcher{HttpCode: aws.String(hc.Matcher)},
		HealthCheckIntervalSeconds: aws.Int32(int32(hc.IntervalSeconds)),
		HealthCheckTimeoutSeconds:  aws.Int32(int32(hc.TimeoutSeconds)),
		HealthyThresholdCount:      aws.Int32(int32(hc.HealthyThresholdCount)),
		UnhealthyThresholdCount:    aws.Int32(int32(hc.UnhealthyThresholdCount)),
		Tags:                       e.elbTags(map[string]string{TagService: svc.Name, TagSlot: string(s)}),
	})
	if err != nil {
		return "", fmt.Errorf("create target group %s: %w", n, err)
	}
	arn := aws.ToString(mk.TargetGroups[0].TargetGroupArn)
	var attrs []elbtypes.TargetGroupAttribute
	for k, v := range fargate.TargetGroupAttributes(svc) {
		attrs = append(attrs, elbtypes.TargetGroupAttribute{Key: aws.String(k), Value: aws.String(v)})
	}
	if _, err := e.c.ELB.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(arn), Attributes: attrs}); err != nil {
		return "", fmt.Errorf("set the draining of target group %s: %w", n, err)
	}
	return arn, nil
}

// slotService is one slot's ECS service as found.
type slotService struct {
	Exists         bool
	TaskDefinition string
	Desired        int32
	Running        int32
}

func (e *Env) describeSlot(ctx context.Context, cluster, svc string, s Slot) (slotService, error) {
	n := e.ecsServiceName(svc, s)
	out, err := e.c.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{n}})
	if err != nil {
		if apiCode(err) == "ClusterNotFoundException" {
			return slotService{}, nil
		}
		return slotService{}, fmt.Errorf("read ECS service %s: %w", n, err)
	}
	for _, x := range out.Services {
		if aws.ToString(x.Status) == "ACTIVE" {
			return slotService{Exists: true, TaskDefinition: aws.ToString(x.TaskDefinition), Desired: x.DesiredCount, Running: x.RunningCount}, nil
		}
	}
	return slotService{}, nil
}

// runSlot points a slot's ECS service at a task definition with count
// tasks, making the service the first time.
func (e *Env) runSlot(ctx context.Context, in *infra, svc *spec.Service, s Slot, taskDef, targetGroup string, count int32, revision int) error {
	n := e.ecsServiceName(svc.Name, s)
	cur, err := e.describeSlot(ctx, in.Cluster, svc.Name, s)
	if err != nil {
		return err
	}
	if cur.Exists {
		up := &ecs.UpdateServiceInput{
			Cluster: aws.String(in.Cluster), Service: aws.String(n), TaskDefinition: aws.String(taskDef),
			DesiredCount: aws.Int32(count), ForceNewDeployment: cur.TaskDefinition == taskDef && count > 0,
		}
		if count > 0 { // a new deployment starts anyway: it registers in Cloud Map (discovery.go)
			if up.ServiceRegistries, err = e.slotRegistries(ctx, in, svc.Name, s); err != nil {
				return err
			}
		}
		_, err := e.c.ECS.UpdateService(ctx, up)
		if err != nil {
			return fmt.Errorf("update ECS service %s: %w", n, err)
		}
		return nil
	}
	assign := ecstypes.AssignPublicIpDisabled
	if in.PublicIPv4 {
		assign = ecstypes.AssignPublicIpEnabled
	}
	req := &ecs.CreateServiceInput{
		Cluster: aws.String(in.Cluster), ServiceName: aws.String(n), TaskDefinition: aws.String(taskDef),
		DesiredCount: aws.Int32(count), LaunchType: ecstypes.LaunchTypeFargate,
		NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{
			Subnets: in.Subnets, SecurityGroups: []string{in.SvcGroup}, AssignPublicIp: assign,
		}},
		DeploymentConfiguration: &ecstypes.DeploymentConfiguration{
			MinimumHealthyPercent: aws.Int32(100), MaximumPercent: aws.Int32(200),
			DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: true, Rollback: false},
		},
		EnableExecuteCommand: true,
		PropagateTags:        ecstypes.PropagateTagsService,
		Tags:                 e.ecsTags(map[string]string{TagService: svc.Name, TagSlot: string(s), TagRevision: strconv.Itoa(revision)}),
	}
	if req.ServiceRegistries, err = e.slotRegistries(ctx, in, svc.Name, s); err != nil {
		return err
	}
	if svc.Port > 0 && targetGroup != "" {
		req.LoadBalancers = []ecstypes.LoadBalancer{{TargetGroupArn: aws.String(targetGroup), ContainerName: aws.String(svc.Name), ContainerPort: aws.Int32(int32(svc.Port))}}
		req.HealthCheckGracePeriodSeconds = aws.Int32(30)
	}
	if _, err := e.c.ECS.CreateService(ctx, req); err != nil {
		return fmt.Errorf("create ECS service %s: %w", n, err)
	}
	return nil
}

// errNotReady is what a wait step answers while it should go on waiting.
var errNotReady = errors.New("not ready")

// waitSlot waits until a slot's service runs count tasks of taskDef and
// its target group has count healthy targets. It fails at once on a
// failed rollout or a task that stopped, naming why (the stopped task's
// reason and its main container's exit code).
func (e *Env) waitSlot(ctx context.Context, in *infra, svc *spec.Service, s Slot, taskDef, targetGroup string, count int32, progress func(string)) error {
	n := e.ecsServiceName(svc.Name, s)
	last := "no task running yet"
	err := poll(ctx, 2*time.Second, func() error {
		out, err := e.c.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(in.Cluster), Services: []string{n}})
		if err != nil {
			return fmt.Errorf("read ECS service %s: %w", n, err)
		}
		if len(out.Services) == 0 {
			return fmt.Errorf("ECS service %s disappeared while deploying", n)
		}
		x := out.Services[0]
		var primary *ecstypes.Deployment
		for i := range x.Deployments {
			if aws.ToString(x.Deployments[i].Status) == "PRIMARY" {
				primary = &x.Deployments[i]
			}
		}
		if primary == nil || aws.ToString(primary.TaskDefinition) != taskDef {
			return errNotReady
		}
		if primary.RolloutState == ecstypes.DeploymentRolloutStateFailed {
			return fmt.Errorf("ECS rolled back: %s%s", aws.ToString(primary.RolloutStateReason), e.stoppedWhy(ctx, in, n))
		}
		if primary.FailedTasks > 0 {
			why := e.stoppedWhy(ctx, in, n)
			if why == "" && len(x.Events) > 0 {
				why = ": " + aws.ToString(x.Events[0].Message) // ECS's newest service event
			}
			return fmt.Errorf("a new task stopped%s", why)
		}
		msg := fmt.Sprintf("%d of %d tasks running", primary.RunningCount, count)
		if msg != last && progress != nil {
			progress(msg)
			last = msg
		}
		if primary.RunningCount < count {
			return errNotReady
		}
		if svc.Port == 0 || targetGroup == "" {
			return nil
		}
		th, err := e.c.ELB.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(targetGroup)})
		if err != nil {
			return fmt.Errorf("read the health of target group %s: %w", e.targetGroupName(svc.Name, s), err)
		}
		healthy := int32(0)
		for _, t := range th.TargetHealthDescriptions {
			if t.TargetHealth != nil && t.TargetHealth.State == elbtypes.TargetHealthStateEnumHealthy {
				healthy++
			}
		}
		msg = fmt.Sprintf("%d of %d targets healthy", healthy, count)
		if msg != last && progress != nil {
			progress(msg)
			last = msg
		}
		if healthy < count {
			return errNotReady
		}
		return nil
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%s: %w", last, err)
	}
	return err
}

// stoppedWhy names why the newest stopped task of an ECS service stopped,
// as ": REASON (container NAME exited CODE)", or "".
func (e *Env) stoppedWhy(ctx context.Context, in *infra, service string) string {
	ls, err := e.c.ECS.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(in.Cluster), ServiceName: aws.String(service), DesiredStatus: ecstypes.DesiredStatusStopped})
	if err != nil || len(ls.TaskArns) == 0 {
		return ""
	}
	out, err := e.c.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(in.Cluster), Tasks: ls.TaskArns})
	if err != nil || len(out.Tasks) == 0 {
		return ""
	}
	sort.Slice(out.Tasks, func(i, j int) bool {
		return aws.ToTime(out.Tasks[i].StoppedAt).After(aws.ToTime(out.Tasks[j].StoppedAt))
	})
	return ": " + taskStopped(out.Tasks[0])
}

// taskStopped says why a task stopped: its reason and its containers' exit
// codes.
func taskStopped(t ecstypes.Task) string {
	var b strings.Builder
	b.WriteString(aws.ToString(t.StoppedReason))
	for _, c := range t.Containers {
		if c.ExitCode != nil {
			fmt.Fprintf(&b, " (container %s exited %d", aws.ToString(c.Name), aws.ToInt32(c.ExitCode))
			if r := aws.ToString(c.Reason); r != "" {
				b.WriteString(": " + r)
			}
			b.WriteString(")")
		}
	}
	return strings.TrimSpace(b.String())
}

// poll calls step every interval until it answers nil or an error other
// than errNotReady, or ctx ends.
func poll(ctx context.Context, interval time.Duration, step func() error) error {
	for {
		err := step()
		if !errors.Is(err, errNotReady) {
			return err
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(interval):
		}
	}
}
