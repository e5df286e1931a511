package awsenv

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	aas "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"

	"github.com/berth-dev/berth/internal/aws/awsstate"
	"github.com/berth-dev/berth/internal/aws/fargate"
	"github.com/berth-dev/berth/internal/spec"
)

// A service with scale: gets Application Auto Scaling on the ECS service
// of its serving slot, and only that one:
//
//	scalable target  service/CLUSTER/APP-SERVICE-SLOT, ecs:service:DesiredCount, min..max
//	policy           berth-requests: target tracking on ALBRequestCountPerTarget
//	                 (the ALB and the slot's target group), fargate.Scaling's value
//
// After a switch (deploy or rollback) the target and its policy move to
// the slot now serving and leave the other: the warm slot keeps the count
// it had and is never scaled by traffic it no longer gets, until its
// cool-down (schedule.go) or the next verb scales it to 0. A worker (no
// port) has no requests to track: it runs min tasks (the spec's
// DesiredInstances) and gets no scalable target.

// scalingPolicy is the name of berth's target tracking policy on a slot.
const scalingPolicy = "berth-requests"

// Target tracking cool-downs: out fast when requests climb, in slowly so a
// short lull does not drop tasks a burst needs again.
const (
	scaleOutCooldown = 60
	scaleInCooldown  = 300
)

// scalableID is the Application Auto Scaling resource ID of a slot's ECS
// service.
func (e *Env) scalableID(service string, s Slot) string {
	return "service/" + e.clusterName() + "/" + e.ecsServiceName(service, s)
}

// resourceLabel is ALBRequestCountPerTarget's resource label: the part of
// the load balancer's ARN after "loadbalancer/" and of the target group's
// after its last ":" (app/NAME/ID/targetgroup/NAME/ID).
func resourceLabel(lbARN, tgARN string) (string, error) {
	i := strings.Index(lbARN, ":loadbalancer/")
	j := strings.LastIndex(tgARN, ":")
	if i < 0 || j < 0 || !strings.HasPrefix(tgARN[j+1:], "targetgroup/") {
		return "", fmt.Errorf("cannot name the request count of target group %q on load balancer %q", tgARN, lbARN)
	}
	return lbARN[i+len(":loadbalancer/"):] + "/" + tgARN[j+1:], nil
}

// startCount is how many tasks a new revision starts with: the spec's
// count, or, for a service with scale:, as many as the serving slot runs
// now (within min..max), so a deploy under load does not drop capacity
// at the switch.
func (e *Env) startCount(ctx context.Context, cluster string, svc *spec.Service, active *awsstate.Revision) int32 {
	want := int32(svc.DesiredInstances())
	a := fargate.Scaling(svc)
	if a == nil || a.RequestsPerTarget == 0 || active == nil || active.Slot == "" {
		return want
	}
	cur, err := e.describeSlot(ctx, cluster, svc.Name, Slot(active.Slot))
	if err != nil || !cur.Exists {
		return want
	}
	return max(want, min(cur.Desired, int32(a.Max)))
}

// followScaling puts a service's autoscaling on its serving slot (when its
// spec asks for it) and takes it off the other slot. tg is the serving
// slot's target group ARN ("" for a worker).
func (e *Env) followScaling(ctx context.Context, in *infra, svc *spec.Service, serving Slot, tg string) error {
	if err := e.unscale(ctx, svc.Name, serving.Other()); err != nil {
		return err
	}
	a := fargate.Scaling(svc)
	if a == nil || a.RequestsPerTarget == 0 || tg == "" || in.LB == "" {
		return e.unscale(ctx, svc.Name, serving)
	}
	id := e.scalableID(svc.Name, serving)
	if _, err := e.c.AutoScaling.RegisterScalableTarget(ctx, &aas.RegisterScalableTargetInput{
		ServiceNamespace: aastypes.ServiceNamespaceEcs, ScalableDimension: aastypes.ScalableDimensionECSServiceDesiredCount,
		ResourceId: aws.String(id), MinCapacity: aws.Int32(int32(a.Min)), MaxCapacity: aws.Int32(int32(a.Max)),
		Tags: e.tagMap(map[string]string{TagService: svc.Name, TagSlot: string(serving)}),
	}); err != nil {
		return fmt.Errorf("register %s with Application Auto Scaling (%d-%d tasks): %w", id, a.Min, a.Max, err)
	}
	label, err := resourceLabel(in.LB, tg)
	if err != nil {
		return err
	}
	if _, err := e.c.AutoScaling.PutScalingPolicy(ctx, &aas.PutScalingPolicyInput{
		PolicyName: aws.String(scalingPolicy), PolicyType: aastypes.PolicyTypeTargetTrackingScaling,
		ServiceNamespace: aastypes.ServiceNamespaceEcs, ScalableDimension: aastypes.ScalableDimensionECSServiceDesiredCount,
		ResourceId: aws.String(id),
		TargetTrackingScalingPolicyConfiguration: &aastypes.TargetTrackingScalingPolicyConfiguration{
			TargetValue: aws.Float64(a.RequestsPerTarget),
			PredefinedMetricSpecification: &aastypes.PredefinedMetricSpecification{
				PredefinedMetricType: aastypes.MetricTypeALBRequestCountPerTarget, ResourceLabel: aws.String(label),
			},
			ScaleOutCooldown: aws.Int32(scaleOutCooldown), ScaleInCooldown: aws.Int32(scaleInCooldown),
		},
	}); err != nil {
		return fmt.Errorf("set the request-count scaling policy of %s: %w", id, err)
	}
	return nil
}

// unscale removes berth's scaling policy and scalable target from a slot,
// if it has them. The slot keeps the task count it has.
func (e *Env) unscale(ctx context.Context, service string, s Slot) error {
	id := e.scalableID(service, s)
	got, err := e.c.AutoScaling.DescribeScalableTargets(ctx, &aas.DescribeScalableTargetsInput{
		ServiceNamespace: aastypes.ServiceNamespaceEcs, ScalableDimension: aastypes.ScalableDimensionECSServiceDesiredCount,
		ResourceIds: []string{id},
	})
	if err != nil {
		return fmt.Errorf("read the autoscaling of %s: %w", id, err)
	}
	found := false
	for _, t := range got.ScalableTargets {
		found = found || aws.ToString(t.ResourceId) == id
	}
	if !found {
		return nil
	}
	// Deregistering deletes the target's policies in AWS; the policy is
	// deleted first all the same, so nothing is left where it does not.
	_, err = e.c.AutoScaling.DeleteScalingPolicy(ctx, &aas.DeleteScalingPolicyInput{
		PolicyName: aws.String(scalingPolicy), ServiceNamespace: aastypes.ServiceNamespaceEcs,
		ScalableDimension: aastypes.ScalableDimensionECSServiceDesiredCount, ResourceId: aws.String(id),
	})
	if err != nil && apiCode(err) != "ObjectNotFoundException" {
		return fmt.Errorf("remove the scaling policy of %s: %w", id, err)
	}
	_, err = e.c.AutoScaling.DeregisterScalableTarget(ctx, &aas.DeregisterScalableTargetInput{
		ServiceNamespace: aastypes.ServiceNamespaceEcs, ScalableDimension: aastypes.ScalableDimensionECSServiceDesiredCount,
		ResourceId: aws.String(id),
	})
	if err != nil && apiCode(err) != "ObjectNotFoundException" {
		return fmt.Errorf("stop the autoscaling of %s: %w", id, err)
	}
	return nil
}

// followSwitch moves to the slot now serving what follows it: the
// autoscaling, the service's name in Cloud Map, and the cool-down, taken
// off the serving slot and set on the other one when it stays warm until
// warmUntil (zero: nothing stays warm, as for a worker).
func (e *Env) followSwitch(ctx context.Context, in *infra, svc *spec.Service, serving Slot, tg string, warmUntil time.Time) error {
	if err := e.keepWarm(ctx, svc.Name, serving); err != nil {
		return err
	}
	if err := e.followScaling(ctx, in, svc, serving, tg); err != nil {
		return err
	}
	if err := e.pointName(ctx, in, svc.Name, serving); err != nil {
		return err
	}
	if warmUntil.IsZero() {
		return nil
	}
	return e.coolDown(ctx, svc.Name, serving.Other(), warmUntil)
}
