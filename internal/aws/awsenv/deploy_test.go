package awsenv

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/aws/awsstate"
	"github.com/berth-dev/berth/internal/aws/awstest"
	"github.com/berth-dev/berth/internal/aws/clients"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/testutil"
)

// awsApp is one app on the simulated AWS of one test: moto behind the
// proxy, the loopback registry, ECS's missing behaviour simulated.
type awsApp struct {
	t     *testing.T
	proxy *awstest.Proxy
	sim   *awstest.ECS
	sp    *spec.Spec
	image string
	c     *clients.Clients
}

func newAWSApp(t *testing.T, yaml string) *awsApp {
	t.Helper()
	p := awstest.UseProxy(t)
	a := &awsApp{t: t, proxy: p, sim: awstest.SimulateECS(t, p), image: testutil.TestAppImage(t)}
	app := testutil.UniqueName(t, "a")
	yaml = strings.ReplaceAll(yaml, "APP", app)
	yaml = strings.ReplaceAll(yaml, "IMAGE", a.image)
	sp, err := spec.Parse("berth.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	a.sp = sp
	c, err := clients.Load(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	a.c = c
	return a
}

// env opens the environment afresh, as a new berth process (or a
// teammate's machine) would: nothing is carried over in memory.
func (a *awsApp) env(opts Options) *Env {
	a.t.Helper()
	return a.envNamed("prod", opts)
}

func (a *awsApp) envNamed(name string, opts Options) *Env {
	a.t.Helper()
	if opts.DeployTimeout == 0 {
		opts.DeployTimeout = 90 * time.Second // long: a loaded machine is slow, and a deploy that succeeds never waits it out
	}
	e, err := Open(context.Background(), a.sp, name, opts)
	if err != nil {
		a.t.Fatal(err)
	}
	return e
}

func (a *awsApp) deploy(e *Env) (api.Message, []api.Message) {
	var msgs []api.Message
	res := e.Deploy(context.Background(), a.sp, nil, nil, func(m api.Message) { msgs = append(msgs, m) })
	return res, msgs
}

// weights reads the host rule of a service: target group name → weight.
func (a *awsApp) weights(e *Env, service string) map[string]int32 {
	a.t.Helper()
	ctx := context.Background()
	in, err := e.findInfra(ctx)
	if err != nil {
		a.t.Fatal(err)
	}
	live, _, err := e.rules(ctx, in)
	if err != nil {
		a.t.Fatal(err)
	}
	r, ok := live["host:"+service]
	if !ok {
		return nil
	}
	out, err := a.c.ELB.DescribeRules(ctx, &elb.DescribeRulesInput{RuleArns: []string{r.ARN}})
	if err != nil {
		a.t.Fatal(err)
	}
	w := map[string]int32{}
	for _, g := range out.Rules[0].Actions[0].ForwardConfig.TargetGroups {
		arn := aws.ToString(g.TargetGroupArn)
		w[arn[strings.Index(arn, "targetgroup/")+len("targetgroup/"):strings.LastIndex(arn, "/")]] = aws.ToInt32(g.Weight)
	}
	return w
}

func (a *awsApp) serving(e *Env, service string) string {
	for tg, w := range a.weights(e, service) {
		if w == 100 {
			return tg[len(tg)-1:]
		}
	}
	return ""
}

func (a *awsApp) desired(e *Env, service string, s Slot) int32 {
	a.t.Helper()
	cur, err := e.describeSlot(context.Background(), e.clusterName(), service, s)
	if err != nil {
		a.t.Fatal(err)
	}
	return cur.Desired
}

const webYAML = `app: APP
environments:
  prod:
    engine: aws
services:
  web:
    image: IMAGE
    port: 8080
    instances: 2
    health:
      path: /health
      interval: 5s
    release: [/testapp, migrate]
`

// A deploy to AWS: the image pushed and pinned by digest, a task
// definition, the release run, two tasks in slot a, the rule sending all
// traffic there; a second deploy goes to slot b and flips the weights;
// a teammate with no local state sees the same revisions; rollback within
// the warm window is the switch alone.
func TestDeployRollbackOnAWS(t *testing.T) {
	a := newAWSApp(t, webYAML)
	e := a.env(Options{})
	res, msgs := a.deploy(e)
	if !res.OK {
		t.Fatalf("deploy failed: %s\n%v", res.Error, msgs)
	}
	if len(res.Deployed) != 1 || res.Deployed[0].Revision != 1 {
		t.Fatalf("deployed: %+v", res.Deployed)
	}
	var phases []string
	for _, m := range msgs {
		if m.Kind == api.KindPhase {
			phases = append(phases, m.Phase)
		}
	}
	for _, want := range []string{"build", "release", "start", "healthy", "switch", "done"} {
		if !strings.Contains(strings.Join(phases, " "), want) {
			t.Errorf("no %s phase in %v", want, phases)
		}
	}
	if got := a.serving(e, "web"); got != "a" {
		t.Fatalf("after the first deploy slot %q serves, want a (%v)", got, a.weights(e, "web"))
	}
	if d := a.desired(e, "web", SlotA); d != 2 {
		t.Fatalf("slot a wants %d tasks, want 2", d)
	}
	// The task definition names the image by digest, in the registry ECR
	// named, and holds the release's exit in the task record.
	revs, err := e.Revisions(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(revs[0].Image, "@sha256:") || !strings.HasPrefix(revs[0].Image, a.proxy.Registry()+"/") {
		t.Fatalf("revision image %q is not pinned in the registry %s", revs[0].Image, a.proxy.Registry())
	}
	td, err := a.c.ECS.DescribeTaskDefinition(context.Background(), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(revs[0].ImageID)})
	if err != nil {
		t.Fatal(err)
	}
	if img := aws.ToString(td.TaskDefinition.ContainerDefinitions[0].Image); img != revs[0].Image {
		t.Fatalf("task definition runs %q, revision says %q", img, revs[0].Image)
	}
	tasks, err := e.Tasks(context.Background(), 10)
	if err != nil || len(tasks) != 1 || tasks[0].Kind != "release" || tasks[0].Status != api.TaskSucceeded {
		t.Fatalf("release task: %+v %v", tasks, err)
	}

	// Second deploy, from a fresh process: slot b, weights flipped.
	e2 := a.env(Options{})
	if res, msgs := a.deploy(e2); !res.OK {
		t.Fatalf("second deploy failed: %s\n%v", res.Error, msgs)
	}
	if got := a.serving(e2, "web"); got != "b" {
		t.Fatalf("after the second deploy slot %q serves, want b", got)
	}
	if d := a.desired(e2, "web", SlotA); d != 2 {
		t.Fatalf("the previous revision's slot a wants %d tasks, want 2 (warm)", d)
	}

	// A teammate (fresh Env, same AWS) rolls back: a warm switch.
	e3 := a.env(Options{})
	before := a.proxy.Count("ecs:UpdateService") + a.proxy.Count("ecs:CreateService")
	start := time.Now()
	rb := e3.Rollback(context.Background(), a.sp, "web", 0, nil)
	took := time.Since(start)
	if !rb.OK || rb.Deployed[0].Revision != 1 {
		t.Fatalf("rollback: %+v", rb)
	}
	if got := a.serving(e3, "web"); got != "a" {
		t.Fatalf("after rollback slot %q serves, want a", got)
	}
	if n := a.proxy.Count("ecs:UpdateService") + a.proxy.Count("ecs:CreateService") - before; n != 0 {
		t.Fatalf("a warm rollback changed ECS services %d times; it must only switch traffic", n)
	}
	t.Logf("warm rollback against moto took %s", took)
	revs, _ = e3.Revisions(context.Background(), "web")
	states := map[int]string{}
	for _, r := range revs {
		states[r.Number] = r.Status
	}
	if states[1] != "active" || states[2] != "previous" {
		t.Fatalf("states after rollback: %v", states)
	}
	evs, err := e3.Events(context.Background(), time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range evs {
		kinds = append(kinds, ev.Kind)
	}
	if got := strings.Join(kinds, ","); !strings.Contains(got, "deploy,") || !strings.HasSuffix(got, "rollback") {
		t.Fatalf("events: %s", got)
	}
}

// A failed deploy leaves the previous revision serving and says why: a
// release that exits non-zero, tasks that crash, targets never healthy.
func TestFailedDeploysKeepServingOnAWS(t *testing.T) {
	a := newAWSApp(t, webYAML)
	if res, _ := a.deploy(a.env(Options{})); !res.OK {
		t.Fatalf("first deploy: %s", res.Error)
	}
	ctx := context.Background()
	cases := []struct {
		name  string
		fault func(e *Env)
		want  string
	}{
		{"release fails", func(*Env) {
			a.sim.OnRun(func(cmd []string) (int, []string) { return 3, []string{"migration 7 failed"} })
		}, "exited 3"},
		{"tasks crash", func(e *Env) {
			a.sim.OnRun(func(cmd []string) (int, []string) { return 0, nil })
			e.opts.Build = nil
			a.crashNext(e, "CannotPullContainerError: pull access denied")
		}, "CannotPullContainerError"},
		{"never healthy", func(e *Env) {
			a.unhealthyNext(e)
		}, "targets healthy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := a.env(Options{DeployTimeout: 6 * time.Second})
			tc.fault(e)
			res, _ := a.deploy(e)
			if res.OK {
				t.Fatal("deploy succeeded despite the fault")
			}
			if !strings.Contains(res.Error, tc.want) || !strings.Contains(res.Error, "revision 1 keeps serving") {
				t.Fatalf("error %q does not say %q and that revision 1 keeps serving", res.Error, tc.want)
			}
			if got := a.serving(e, "web"); got != "a" {
				t.Fatalf("slot %q serves after a failed deploy, want a", got)
			}
			if d := a.desired(e, "web", SlotB); d != 0 {
				t.Fatalf("the failed revision's slot b still wants %d tasks", d)
			}
			revs, _ := e.Revisions(ctx, "web")
			if revs[0].Status != "failed" || revs[len(revs)-1].Status != "active" {
				t.Fatalf("revisions: %+v", revs)
			}
		})
	}
}

// crashNext makes the next registered task definition's tasks crash: the
// revision after the last one.
func (a *awsApp) crashNext(e *Env, why string) {
	a.nextTaskDef(e, func(arn string) { a.sim.Crash(arn, why) })
}

func (a *awsApp) unhealthyNext(e *Env) {
	a.nextTaskDef(e, a.sim.Unhealthy)
}

// nextTaskDef calls fn with the ARN the next RegisterTaskDefinition of
// the service's family answers, before the deploy goes on.
func (a *awsApp) nextTaskDef(e *Env, fn func(arn string)) {
	a.proxy.Handle("ecs:RegisterTaskDefinition", func(c *awstest.Call) *awstest.Response {
		r, err := c.Forward()
		if err != nil {
			return nil
		}
		v, err := r.JSON()
		if err == nil {
			if td, ok := v["taskDefinition"].(map[string]any); ok {
				fn(fmt.Sprint(td["taskDefinitionArn"]))
			}
		}
		return r
	})
}

// Two deploys of one app at once: the second fails at once naming the
// holder, and nothing of it is applied.
func TestDeployLockOnAWS(t *testing.T) {
	a := newAWSApp(t, webYAML)
	e := a.env(Options{})
	ctx := context.Background()
	l, err := e.state.Acquire(ctx, awsstate.Holder{Who: "alice", Host: "laptop", PID: 1, Op: "deploy"}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	res, _ := a.deploy(a.env(Options{}))
	if res.OK || res.Code != "busy" || !strings.Contains(res.Error, "alice@laptop") {
		t.Fatalf("second deploy: ok=%v code=%q error=%q", res.OK, res.Code, res.Error)
	}
	if revs, _ := e.state.Revisions(ctx, "web"); len(revs) != 0 {
		t.Fatalf("a refused deploy recorded revisions: %+v", revs)
	}
}

// A task run: RunTask with the serving revision's task definition and the
// command, its output from CloudWatch, its exit code berth's.
func TestTaskRunOnAWS(t *testing.T) {
	a := newAWSApp(t, webYAML+"tasks:\n  migrate:\n    service: web\n    command: [/testapp, migrate]\n")
	e := a.env(Options{})
	if res, _ := a.deploy(e); !res.OK {
		t.Fatalf("deploy: %s", res.Error)
	}
	a.sim.OnRun(func(cmd []string) (int, []string) {
		return 7, []string{"ran " + strings.Join(cmd, " "), "done"}
	})
	var lines []string
	res := e.RunTask(context.Background(), a.sp, api.TaskRunRequest{Name: "migrate", Command: []string{"--step", "2"}}, func(m api.Message) {
		if m.Kind == api.KindLog {
			lines = append(lines, m.Text)
		}
	})
	if !res.OK || res.Task == nil {
		t.Fatalf("task run: %+v", res)
	}
	if res.Task.ExitCode != 7 || res.Task.Status != api.TaskFailed {
		t.Fatalf("task ended %s with %d, want failed with 7", res.Task.Status, res.Task.ExitCode)
	}
	if got := strings.Join(lines, "|"); got != "ran /testapp migrate --step 2|done" {
		t.Fatalf("output %q", got)
	}
	ts, err := a.env(Options{}).Tasks(context.Background(), 5)
	if err != nil || ts[0].ID != res.Task.ID || ts[0].ExitCode != 7 {
		t.Fatalf("tasks seen by a fresh process: %+v %v", ts, err)
	}
}

// Two environments of one app in one account and region keep apart: a
// staging deploy that fails, and staging's destroy, leave prod serving.
func TestEnvironmentsKeepApartOnAWS(t *testing.T) {
	a := newAWSApp(t, strings.Replace(webYAML, "environments:\n", "environments:\n  staging:\n    engine: aws\n", 1))
	ctx := context.Background()
	prod, staging := a.env(Options{}), a.envNamed("staging", Options{})
	if res, _ := a.deploy(prod); !res.OK {
		t.Fatalf("prod deploy: %s", res.Error)
	}
	if res, _ := a.deploy(staging); !res.OK {
		t.Fatalf("staging deploy: %s", res.Error)
	}
	a.unhealthyNext(staging)
	staging.opts.DeployTimeout = 4 * time.Second
	if res, _ := a.deploy(staging); res.OK {
		t.Fatal("staging deploy with unhealthy targets succeeded")
	}
	if d := a.desired(prod, "web", SlotA); d != 2 {
		t.Fatalf("prod's serving slot wants %d tasks after staging's failed deploy, want 2", d)
	}
	if res := staging.Destroy(ctx, a.sp, nil); !res.OK {
		t.Fatalf("staging destroy: %s", res.Error)
	}
	st, err := a.env(Options{}).Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Apps) != 1 || st.Apps[0].Services[0].State != "running" || st.Apps[0].Services[0].Revision != 1 {
		t.Fatalf("prod after staging's destroy: %+v", st)
	}
	if got := a.serving(prod, "web"); got != "a" {
		t.Fatalf("prod serves slot %q after staging's destroy", got)
	}
}
