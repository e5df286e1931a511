package awsenv

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/berth-dev/berth/internal/aws/awsstate"
	"github.com/berth-dev/berth/internal/aws/fargate"
	"github.com/berth-dev/berth/internal/spec"
)

const scheduleTasks = `tasks:
  report:
    service: web
    command: [/testapp, report, --daily]
    schedule: "*/15 9-17 * * 1-5"
`

// schedule reads a schedule of the app's group from moto, or nil.
func (a *awsApp) schedule(e *Env, n string) *scheduler.GetScheduleOutput {
	a.t.Helper()
	out, err := a.c.Scheduler.GetSchedule(context.Background(), &scheduler.GetScheduleInput{Name: aws.String(n), GroupName: aws.String(e.scheduleGroup())})
	if apiCode(err) == "ResourceNotFoundException" {
		return nil
	}
	if err != nil {
		a.t.Fatal(err)
	}
	return out
}

// active is the active revision of a service as recorded in AWS.
func (a *awsApp) active(e *Env, service string) awsstate.Revision {
	a.t.Helper()
	revs, err := e.state.Revisions(context.Background(), service)
	if err != nil {
		a.t.Fatal(err)
	}
	cur := activeOf(revs)
	if cur == nil {
		a.t.Fatalf("%s has no active revision", service)
	}
	return *cur
}

// respec replaces the app's spec with another berth.yaml of the same app.
func (a *awsApp) respec(yaml string) {
	a.t.Helper()
	yaml = strings.ReplaceAll(yaml, "APP", a.sp.App)
	yaml = strings.ReplaceAll(yaml, "IMAGE", a.image)
	sp, err := spec.Parse("berth.yaml", []byte(yaml))
	if err != nil {
		a.t.Fatal(err)
	}
	a.sp = sp
}

// A task with schedule: is an EventBridge Scheduler schedule running the
// serving revision's task definition with the task's command on the
// app's cluster, rewritten by each deploy and removed with the task; each
// deploy sets a one-time cool-down on the warm slot, taken off a slot
// when it serves again.
func TestSchedulesOnAWS(t *testing.T) {
	a := newAWSApp(t, webYAML+scheduleTasks)
	ctx := context.Background()
	e := a.env(Options{})
	if res, msgs := a.deploy(e); !res.OK {
		t.Fatalf("deploy: %s\n%v", res.Error, msgs)
	}
	s := a.schedule(e, "task-report")
	if s == nil {
		t.Fatal("no schedule for task report after the deploy")
	}
	want, _ := fargate.ScheduleExpression("*/15 9-17 * * 1-5")
	if aws.ToString(s.ScheduleExpression) != want || aws.ToString(s.ScheduleExpressionTimezone) != "UTC" {
		t.Fatalf("schedule %q in %q, want %q in UTC", aws.ToString(s.ScheduleExpression), aws.ToString(s.ScheduleExpressionTimezone), want)
	}
	checkTaskTarget := func(e *Env, s *scheduler.GetScheduleOutput, taskDef string) {
		t.Helper()
		tg := s.Target
		if tg == nil || tg.EcsParameters == nil {
			t.Fatalf("target %+v has no ECS parameters", tg)
		}
		if arn := aws.ToString(tg.Arn); !strings.HasSuffix(arn, ":cluster/"+e.clusterName()) {
			t.Errorf("target %q is not the app's cluster %s", arn, e.clusterName())
		}
		if got := aws.ToString(tg.EcsParameters.TaskDefinitionArn); got != taskDef {
			t.Errorf("schedule runs task definition %q, want the serving %q", got, taskDef)
		}
		if tg.EcsParameters.LaunchType != schedtypes.LaunchTypeFargate || aws.ToInt32(tg.EcsParameters.TaskCount) != 1 {
			t.Errorf("ECS parameters %+v: want one Fargate task", tg.EcsParameters)
		}
		nc := tg.EcsParameters.NetworkConfiguration
		if nc == nil || nc.AwsvpcConfiguration == nil || len(nc.AwsvpcConfiguration.Subnets) == 0 || len(nc.AwsvpcConfiguration.SecurityGroups) != 1 {
			t.Errorf("network configuration %+v: want the app's subnets and services' group", nc)
		}
		var in struct {
			ContainerOverrides []struct {
				Name    string   `json:"name"`
				Command []string `json:"command"`
			} `json:"containerOverrides"`
		}
		if err := json.Unmarshal([]byte(aws.ToString(tg.Input)), &in); err != nil || len(in.ContainerOverrides) != 1 {
			t.Fatalf("input %q: %v", aws.ToString(tg.Input), err)
		}
		if o := in.ContainerOverrides[0]; o.Name != "web" || strings.Join(o.Command, " ") != "/testapp report --daily" {
			t.Errorf("override %+v, want web running /testapp report --daily", o)
		}
		// The role EventBridge Scheduler assumes exists and trusts it.
		role := aws.ToString(tg.RoleArn)
		got, err := a.c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(role[strings.LastIndex(role, "/")+1:])})
		if err != nil {
			t.Fatalf("schedule role %s: %v", role, err)
		}
		if doc := aws.ToString(got.Role.AssumeRolePolicyDocument); !strings.Contains(doc, "scheduler.amazonaws.com") {
			t.Errorf("role %s trusts %s, not EventBridge Scheduler", role, doc)
		}
	}
	rev1 := a.active(e, "web")
	checkTaskTarget(e, s, rev1.TaskDefinition)
	if c := a.schedule(e, coolDownName("web", SlotA)); c != nil {
		t.Fatalf("a cool-down %q after the first deploy, with nothing warm", aws.ToString(c.ScheduleExpression))
	}

	// Second deploy: the schedule runs revision 2; slot a (revision 1)
	// is warm and scaled to 0 at its window's end by a one-time schedule.
	e2 := a.env(Options{})
	if res, msgs := a.deploy(e2); !res.OK {
		t.Fatalf("second deploy: %s\n%v", res.Error, msgs)
	}
	checkTaskTarget(e2, a.schedule(e2, "task-report"), a.active(e2, "web").TaskDefinition)
	revs, _ := e2.state.Revisions(ctx, "web")
	var warmUntil time.Time
	for _, r := range revs {
		if r.Number == rev1.Number {
			warmUntil = r.WarmUntil
		}
	}
	c := a.schedule(e2, coolDownName("web", SlotA))
	if c == nil {
		t.Fatal("no cool-down schedule for the warm slot a")
	}
	at, err := time.Parse("2006-01-02T15:04:05", strings.TrimSuffix(strings.TrimPrefix(aws.ToString(c.ScheduleExpression), "at("), ")"))
	if err != nil || aws.ToString(c.ScheduleExpressionTimezone) != "UTC" {
		t.Fatalf("cool-down at %q in %q: %v", aws.ToString(c.ScheduleExpression), aws.ToString(c.ScheduleExpressionTimezone), err)
	}
	if d := at.Sub(warmUntil.UTC()); d < -2*time.Second || d > 2*time.Second {
		t.Errorf("cool-down at %s, revision 1 is warm until %s", at, warmUntil.UTC())
	}
	if c.ActionAfterCompletion != schedtypes.ActionAfterCompletionDelete {
		t.Errorf("cool-down's action after completion %q, want DELETE", c.ActionAfterCompletion)
	}
	if aws.ToString(c.Target.Arn) != coolDownTarget {
		t.Errorf("cool-down target %q, want %s", aws.ToString(c.Target.Arn), coolDownTarget)
	}
	var upd struct {
		Cluster, Service string
		DesiredCount     *int
	}
	if err := json.Unmarshal([]byte(aws.ToString(c.Target.Input)), &upd); err != nil {
		t.Fatal(err)
	}
	if upd.Cluster != e2.clusterName() || upd.Service != e2.ecsServiceName("web", SlotA) || upd.DesiredCount == nil || *upd.DesiredCount != 0 {
		t.Fatalf("cool-down input %s, want slot a's service %s to 0", aws.ToString(c.Target.Input), e2.ecsServiceName("web", SlotA))
	}

	// A rollback makes slot a serve: its cool-down goes, slot b's comes.
	if rb := a.env(Options{}).Rollback(ctx, a.sp, "web", 0, nil); !rb.OK {
		t.Fatalf("rollback: %s", rb.Error)
	}
	if a.schedule(e2, coolDownName("web", SlotA)) != nil {
		t.Fatal("the serving slot a still has a cool-down after the rollback")
	}
	if a.schedule(e2, coolDownName("web", SlotB)) == nil {
		t.Fatal("the warm slot b has no cool-down after the rollback")
	}
	checkTaskTarget(e2, a.schedule(e2, "task-report"), rev1.TaskDefinition)

	// The task leaves the spec: its schedule goes with the next deploy.
	a.respec(webYAML)
	if res, msgs := a.deploy(a.env(Options{})); !res.OK {
		t.Fatalf("deploy without the task: %s\n%v", res.Error, msgs)
	}
	if s := a.schedule(e2, "task-report"); s != nil {
		t.Fatalf("the schedule of the removed task is still there: %q", aws.ToString(s.ScheduleExpression))
	}
}
