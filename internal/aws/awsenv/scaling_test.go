package awsenv

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	aas "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/berth-dev/berth/internal/aws/awstest"
)

const scaleYAML = `app: APP
environments:
  prod:
    engine: aws
services:
  web:
    image: IMAGE
    port: 8080
    scale: {min: 2, max: 6, concurrency: 5}
    health:
      path: /health
      interval: 5s
  worker:
    image: IMAGE
    command: [/testapp, worker]
    scale: {min: 3, max: 5, concurrency: 1}
`

// scalable reads the Application Auto Scaling target of a slot from moto,
// or nil.
func (a *awsApp) scalable(e *Env, service string, s Slot) *aastypes.ScalableTarget {
	a.t.Helper()
	out, err := a.c.AutoScaling.DescribeScalableTargets(context.Background(), &aas.DescribeScalableTargetsInput{
		ServiceNamespace: aastypes.ServiceNamespaceEcs, ResourceIds: []string{e.scalableID(service, s)},
	})
	if err != nil {
		a.t.Fatal(err)
	}
	for i := range out.ScalableTargets {
		if aws.ToString(out.ScalableTargets[i].ResourceId) == e.scalableID(service, s) {
			return &out.ScalableTargets[i]
		}
	}
	return nil
}

// policies reads the scaling policies of a slot from moto.
func (a *awsApp) policies(e *Env, service string, s Slot) []aastypes.ScalingPolicy {
	a.t.Helper()
	out, err := a.c.AutoScaling.DescribeScalingPolicies(context.Background(), &aas.DescribeScalingPoliciesInput{
		ServiceNamespace: aastypes.ServiceNamespaceEcs, ResourceId: aws.String(e.scalableID(service, s)),
	})
	if err != nil {
		a.t.Fatal(err)
	}
	var mine []aastypes.ScalingPolicy
	for _, p := range out.ScalingPolicies {
		if aws.ToString(p.ResourceId) == e.scalableID(service, s) {
			mine = append(mine, p)
		}
	}
	return mine
}

// checkScaled says whether a slot carries the spec's autoscaling: min 2,
// max 6, one target tracking policy on the requests of the slot's target
// group at 5*60 a minute.
func (a *awsApp) checkScaled(e *Env, s Slot) {
	a.t.Helper()
	st := a.scalable(e, "web", s)
	if st == nil {
		a.t.Fatalf("slot %s of web has no scalable target", s)
	}
	if aws.ToInt32(st.MinCapacity) != 2 || aws.ToInt32(st.MaxCapacity) != 6 || st.ScalableDimension != aastypes.ScalableDimensionECSServiceDesiredCount {
		a.t.Fatalf("slot %s scalable target: min %d max %d %s, want 2..6 on ecs:service:DesiredCount", s, aws.ToInt32(st.MinCapacity), aws.ToInt32(st.MaxCapacity), st.ScalableDimension)
	}
	ps := a.policies(e, "web", s)
	if len(ps) != 1 || ps[0].PolicyType != aastypes.PolicyTypeTargetTrackingScaling || ps[0].TargetTrackingScalingPolicyConfiguration == nil {
		a.t.Fatalf("slot %s policies: %+v, want one target tracking policy", s, ps)
	}
	tt := ps[0].TargetTrackingScalingPolicyConfiguration
	if aws.ToFloat64(tt.TargetValue) != 300 {
		a.t.Errorf("target value %v, want 300 requests a minute per task (concurrency 5 × 60)", aws.ToFloat64(tt.TargetValue))
	}
	pm := tt.PredefinedMetricSpecification
	if pm == nil || pm.PredefinedMetricType != aastypes.MetricTypeALBRequestCountPerTarget {
		a.t.Fatalf("metric %+v, want ALBRequestCountPerTarget", pm)
	}
	// The label names the app's ALB and this slot's target group.
	ctx := context.Background()
	lbs, err := a.c.ELB.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{Names: []string{e.lbName()}})
	if err != nil {
		a.t.Fatal(err)
	}
	tgs, err := a.c.ELB.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{Names: []string{e.targetGroupName("web", s)}})
	if err != nil {
		a.t.Fatal(err)
	}
	lb, tg := aws.ToString(lbs.LoadBalancers[0].LoadBalancerArn), aws.ToString(tgs.TargetGroups[0].TargetGroupArn)
	want := lb[strings.Index(lb, "loadbalancer/")+len("loadbalancer/"):] + "/" + tg[strings.LastIndex(tg, ":")+1:]
	if got := aws.ToString(pm.ResourceLabel); got != want || !strings.HasPrefix(got, "app/") || !strings.Contains(got, "/targetgroup/") {
		a.t.Fatalf("resource label %q, want %q", got, want)
	}
}

// scale: becomes Application Auto Scaling on the serving slot only: it
// moves with each deploy and rollback, the warm slot keeps its count and
// is not scaled, a worker runs min tasks with no scalable target, and a
// deploy starts as many tasks as the serving slot was scaled to.
func TestScalingFollowsServingSlotOnAWS(t *testing.T) {
	a := newAWSApp(t, scaleYAML)
	e := a.env(Options{})
	if res, msgs := a.deploy(e); !res.OK {
		t.Fatalf("deploy: %s\n%v", res.Error, msgs)
	}
	a.checkScaled(e, SlotA)
	if st := a.scalable(e, "web", SlotB); st != nil {
		t.Fatalf("idle slot b is scaled: %+v", st)
	}
	if st := a.scalable(e, "worker", SlotA); st != nil {
		t.Fatalf("the worker has a scalable target %+v; it has no requests to track", st)
	}
	if d := a.desired(e, "worker", SlotA); d != 3 {
		t.Fatalf("the worker runs %d tasks, want min 3", d)
	}
	if d := a.desired(e, "web", SlotA); d != 2 {
		t.Fatalf("web starts %d tasks, want min 2", d)
	}

	// Traffic scaled slot a to 4: the next deploy starts 4 in slot b.
	ctx := context.Background()
	if _, err := a.c.ECS.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(e.clusterName()), Service: aws.String(e.ecsServiceName("web", SlotA)), DesiredCount: aws.Int32(4)}); err != nil {
		t.Fatal(err)
	}
	e2 := a.env(Options{})
	if res, msgs := a.deploy(e2); !res.OK {
		t.Fatalf("second deploy: %s\n%v", res.Error, msgs)
	}
	a.checkScaled(e2, SlotB)
	if st := a.scalable(e2, "web", SlotA); st != nil || len(a.policies(e2, "web", SlotA)) != 0 {
		t.Fatalf("the warm slot a is still scaled: %+v", st)
	}
	if d := a.desired(e2, "web", SlotB); d != 4 {
		t.Fatalf("slot b started %d tasks, want the 4 slot a was scaled to", d)
	}
	if d := a.desired(e2, "web", SlotA); d != 4 {
		t.Fatalf("warm slot a runs %d tasks, want the 4 it had", d)
	}

	// A warm rollback moves the scaling back with the traffic.
	rb := a.env(Options{}).Rollback(ctx, a.sp, "web", 0, nil)
	if !rb.OK {
		t.Fatalf("rollback: %s", rb.Error)
	}
	a.checkScaled(e2, SlotA)
	if st := a.scalable(e2, "web", SlotB); st != nil {
		t.Fatalf("slot b is still scaled after the rollback: %+v", st)
	}

	// Pause takes the scaling off (it would start the tasks again);
	// resume puts it back.
	if _, err := a.env(Options{}).Pause(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if st := a.scalable(e2, "web", SlotA); st != nil {
		t.Fatalf("the paused slot a is still scaled: %+v", st)
	}
	if res := a.env(Options{}).Resume(ctx, "web", nil); !res.OK {
		t.Fatalf("resume: %s", res.Error)
	}
	a.checkScaled(e2, SlotA)
}

// A deploy cut off after its switch, before its records: the next verb
// finishes it, and what follows the serving slot follows it then (the
// scaling, the name, the warm slot's cool-down).
func TestInterruptedDeployFollowsSwitchOnAWS(t *testing.T) {
	a := newAWSApp(t, discoveryYAML)
	ctx := context.Background()
	if res, msgs := a.deploy(a.env(Options{})); !res.OK {
		t.Fatalf("deploy: %s\n%v", res.Error, msgs)
	}
	// The records' write after the switch fails once, as if the process
	// died there.
	var mu sync.Mutex
	failed := false
	a.proxy.Handle("dynamodb:TransactWriteItems", func(c *awstest.Call) *awstest.Response {
		mu.Lock()
		defer mu.Unlock()
		if failed || !strings.Contains(string(c.Body), "replaced by revision") {
			return nil
		}
		failed = true
		return c.Error(400, "AccessDeniedException", "cut off")
	})
	e := a.env(Options{})
	res := e.Deploy(ctx, a.sp, []string{"web"}, nil, nil)
	if res.OK || !strings.Contains(res.Error, "cut off") {
		t.Fatalf("deploy: ok=%v error=%q, want it cut off after the switch", res.OK, res.Error)
	}
	if a.serving(e, "web") != "b" {
		t.Fatal("the cut-off deploy did not switch to slot b")
	}
	if a.scalable(e, "web", SlotB) != nil {
		t.Fatal("slot b scaled before its deploy finished")
	}

	// The next verb that changes something finishes the deploy.
	e2 := a.env(Options{})
	if _, err := e2.Scale(ctx, map[string]int{}); err != nil {
		t.Fatal(err)
	}
	if a.active(e2, "web").Slot != "b" {
		t.Fatalf("after settling, revision in slot %q is active, want b", a.active(e2, "web").Slot)
	}
	if a.scalable(e2, "web", SlotB) == nil || a.scalable(e2, "web", SlotA) != nil {
		t.Fatal("after settling, the scaling is not on slot b alone")
	}
	if a.schedule(e2, coolDownName("web", SlotA)) == nil {
		t.Fatal("after settling, the warm slot a has no cool-down")
	}
	_, svcs := a.cloudMap(e2)
	if got := a.cname(svcs["web"]); len(got) != 1 || got[0] != "b.web."+e2.namespaceName() {
		t.Fatalf("after settling web.%s points at %v, want slot b", e2.namespaceName(), got)
	}
}
