package awsenv

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	sd "github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	sdtypes "github.com/aws/aws-sdk-go-v2/service/servicediscovery/types"
)

// cloudMap reads the app's namespace and the Cloud Map services in it
// from moto: namespace ID ("" when none), service name → service.
func (a *awsApp) cloudMap(e *Env) (string, map[string]*sdtypes.Service) {
	a.t.Helper()
	ctx := context.Background()
	ns, err := e.findNamespace(ctx)
	if err != nil {
		a.t.Fatal(err)
	}
	out := map[string]*sdtypes.Service{}
	if ns == "" {
		return "", out
	}
	ls, err := a.c.ServiceDiscovery.ListServices(ctx, &sd.ListServicesInput{})
	if err != nil {
		a.t.Fatal(err)
	}
	for _, s := range ls.Services {
		got, err := a.c.ServiceDiscovery.GetService(ctx, &sd.GetServiceInput{Id: s.Id})
		if err != nil {
			continue
		}
		if aws.ToString(got.Service.NamespaceId) == ns {
			out[aws.ToString(got.Service.Name)] = got.Service
		}
	}
	return ns, out
}

// cname is where SERVICE.APP.ENV.berth.internal points: the CNAME values of
// its Cloud Map service's instances.
func (a *awsApp) cname(svc *sdtypes.Service) []string {
	a.t.Helper()
	ls, err := a.c.ServiceDiscovery.ListInstances(context.Background(), &sd.ListInstancesInput{ServiceId: svc.Id})
	if err != nil {
		a.t.Fatal(err)
	}
	var out []string
	for _, i := range ls.Instances {
		out = append(out, i.Attributes[cnameAttr])
	}
	return out
}

const discoveryYAML = `app: APP
environments:
  prod:
    engine: aws
services:
  web:
    image: IMAGE
    port: 8080
    scale: {min: 1, max: 3, concurrency: 10}
    health:
      path: /health
      interval: 5s
  api:
    image: IMAGE
    port: 8081
    health:
      path: /health
      interval: 5s
tasks:
  report:
    service: web
    command: [/testapp, report]
    schedule: "@daily"
`

// Services reach each other as SERVICE.APP.ENV.berth.internal: a private
// namespace in the app's VPC, a Cloud Map service per slot that its ECS
// service registers in, and a CNAME naming the serving slot, repointed by
// each switch. destroy removes it all, with the schedules, the scaling
// and the scheduler role.
func TestDiscoveryAndDestroyOnAWS(t *testing.T) {
	a := newAWSApp(t, discoveryYAML)
	ctx := context.Background()
	e := a.env(Options{})
	if res, msgs := a.deploy(e); !res.OK {
		t.Fatalf("deploy: %s\n%v", res.Error, msgs)
	}
	ns, svcs := a.cloudMap(e)
	if ns == "" {
		t.Fatalf("no Cloud Map namespace %s", e.namespaceName())
	}
	got, err := a.c.ServiceDiscovery.GetNamespace(ctx, &sd.GetNamespaceInput{Id: aws.String(ns)})
	if err != nil {
		t.Fatal(err)
	}
	if n := got.Namespace; aws.ToString(n.Name) != a.sp.App+".prod.berth.internal" || n.Type != sdtypes.NamespaceTypeDnsPrivate {
		t.Fatalf("namespace %s of type %s, want private DNS %s.prod.berth.internal", aws.ToString(n.Name), n.Type, a.sp.App)
	}
	for _, svc := range []string{"web", "api"} {
		for _, n := range []string{svc, "a." + svc} {
			if svcs[n] == nil {
				t.Fatalf("no Cloud Map service %s in %s (have %v)", n, e.namespaceName(), keys(svcs))
			}
		}
		recs := svcs[svc].DnsConfig.DnsRecords
		if len(recs) != 1 || recs[0].Type != sdtypes.RecordTypeCname {
			t.Fatalf("%s's records %+v, want one CNAME", svc, recs)
		}
		if recs := svcs["a."+svc].DnsConfig.DnsRecords; len(recs) != 1 || recs[0].Type != sdtypes.RecordTypeA {
			t.Fatalf("a.%s's records %+v, want A", svc, recs)
		}
		if got := a.cname(svcs[svc]); len(got) != 1 || got[0] != "a."+svc+"."+e.namespaceName() {
			t.Fatalf("%s.%s points at %v, want slot a", svc, e.namespaceName(), got)
		}
		// The slot's ECS service registers its tasks in its slot's name.
		out, err := a.c.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(e.clusterName()), Services: []string{e.ecsServiceName(svc, SlotA)}})
		if err != nil {
			t.Fatal(err)
		}
		regs := out.Services[0].ServiceRegistries
		if len(regs) != 1 || aws.ToString(regs[0].RegistryArn) != aws.ToString(svcs["a."+svc].Arn) {
			t.Fatalf("ECS service %s registers in %+v, want Cloud Map service a.%s", e.ecsServiceName(svc, SlotA), regs, svc)
		}
	}

	// A second deploy: the names follow the traffic to slot b.
	if res, msgs := a.deploy(a.env(Options{})); !res.OK {
		t.Fatalf("second deploy: %s\n%v", res.Error, msgs)
	}
	_, svcs = a.cloudMap(e)
	if got := a.cname(svcs["web"]); len(got) != 1 || got[0] != "b.web."+e.namespaceName() {
		t.Fatalf("after the second deploy web.%s points at %v, want slot b only", e.namespaceName(), got)
	}
	if svcs["b.web"] == nil {
		t.Fatal("no Cloud Map service b.web")
	}

	// destroy removes what all of this made.
	e3 := a.env(Options{})
	if a.scalable(e3, "web", SlotB) == nil || a.schedule(e3, "task-report") == nil || a.schedule(e3, coolDownName("web", SlotA)) == nil {
		t.Fatal("before destroy: web's slot b is not scaled, or the task or cool-down schedule is missing")
	}
	if res := e3.Destroy(ctx, a.sp, nil); !res.OK {
		t.Fatalf("destroy: %s", res.Error)
	}
	if ns, svcs := a.cloudMap(e3); ns != "" || len(svcs) != 0 {
		t.Fatalf("after destroy: namespace %q, services %v", ns, keys(svcs))
	}
	if _, err := a.c.ServiceDiscovery.GetNamespace(ctx, &sd.GetNamespaceInput{Id: aws.String(ns)}); apiCode(err) != "NamespaceNotFound" {
		t.Fatalf("namespace %s after destroy: %v", ns, err)
	}
	_, err = a.c.Scheduler.GetScheduleGroup(ctx, &scheduler.GetScheduleGroupInput{Name: aws.String(e3.scheduleGroup())})
	if apiCode(err) != "ResourceNotFoundException" {
		t.Fatalf("schedule group %s after destroy: %v", e3.scheduleGroup(), err)
	}
	for _, s := range []Slot{SlotA, SlotB} {
		if st := a.scalable(e3, "web", s); st != nil || len(a.policies(e3, "web", s)) != 0 {
			t.Fatalf("slot %s of web is still scaled after destroy", s)
		}
	}
	if _, err := a.c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(e3.schedulerRoleName())}); apiCode(err) != "NoSuchEntity" {
		t.Fatalf("scheduler role %s after destroy: %v", e3.schedulerRoleName(), err)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
