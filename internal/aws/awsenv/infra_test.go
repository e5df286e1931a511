package awsenv

import (
	"context"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/berth-dev/berth/internal/aws/awstest"
	"github.com/berth-dev/berth/internal/aws/clients"
	"github.com/berth-dev/berth/internal/spec"
)

func TestMain(m *testing.M) {
	code := m.Run()
	awstest.Stop()
	os.Exit(code)
}

func testEnv(t *testing.T, app string) *Env {
	t.Helper()
	awstest.UseMoto(t)
	c, err := clients.Load(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return &Env{Name: "prod", App: app, Region: awstest.Region, c: c}
}

// The shared resources are made once and found again by a later verb with
// nothing kept locally: a second ensureInfra makes nothing new.
func TestInfraIsFoundAgain(t *testing.T) {
	ctx := context.Background()
	e := testEnv(t, "infra1")
	in, err := e.ensureInfra(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if in.VPC == "" || len(in.Subnets) == 0 || in.ALBGroup == "" || in.SvcGroup == "" || in.Cluster != "berth-infra1" || in.LB == "" || in.Listener == "" {
		t.Fatalf("infra incomplete: %+v", in)
	}
	again, err := e.ensureInfra(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again.LB != in.LB || again.Listener != in.Listener || again.SvcGroup != in.SvcGroup || again.ALBGroup != in.ALBGroup {
		t.Fatalf("second run made new resources:\n%+v\n%+v", in, again)
	}
	lbs, err := e.c.ELB.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{Names: []string{e.lbName()}})
	if err != nil || len(lbs.LoadBalancers) != 1 {
		t.Fatalf("load balancers: %v %v", lbs, err)
	}
}

// A route switch rewrites the weights of the service's rules: the active
// slot gets 100, the other 0.
func TestRouteSwitchesWeights(t *testing.T) {
	ctx := context.Background()
	e := testEnv(t, "route1")
	in, err := e.ensureInfra(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := spec.Parse("berth.yaml", []byte("app: route1\nservices:\n  web:\n    image: web:1\n    port: 8080\n    domains: [www.example.com]\n"))
	if err != nil {
		t.Fatal(err)
	}
	svc := sp.Services["web"]
	tgs := map[Slot]string{}
	for _, s := range []Slot{SlotA, SlotB} {
		if tgs[s], err = e.targetGroup(ctx, in, svc, s); err != nil {
			t.Fatal(err)
		}
	}
	weights := func() map[string]int32 {
		live, _, err := e.rules(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := e.c.ELB.DescribeRules(ctx, &elb.DescribeRulesInput{RuleArns: []string{live["host:web"].ARN}})
		if err != nil {
			t.Fatal(err)
		}
		w := map[string]int32{}
		for _, g := range out.Rules[0].Actions[0].ForwardConfig.TargetGroups {
			w[aws.ToString(g.TargetGroupArn)] = aws.ToInt32(g.Weight)
		}
		return w
	}
	if _, err := e.route(ctx, in, sp, "web", tgs, SlotA); err != nil {
		t.Fatal(err)
	}
	if w := weights(); w[tgs[SlotA]] != 100 || w[tgs[SlotB]] != 0 {
		t.Fatalf("after switch to a: %v", w)
	}
	calls, err := e.route(ctx, in, sp, "web", tgs, SlotB)
	if err != nil {
		t.Fatal(err)
	}
	if w := weights(); w[tgs[SlotA]] != 0 || w[tgs[SlotB]] != 100 {
		t.Fatalf("after switch to b: %v", w)
	}
	if calls != 2 { // the host rule and the default rule
		t.Fatalf("switch took %d calls, want 2", calls)
	}
	live, _, _ := e.rules(ctx, in)
	if len(live) != 2 {
		t.Fatalf("rules: %v", live)
	}
}
