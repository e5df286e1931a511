package awsenv

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berth-dev/berth/internal/aws/awstest"
)

// Exec on AWS: ExecuteCommand on a running task of the serving slot, in
// the service's container, through the data channel (the fake SSM agent:
// moto has no ExecuteCommand); the command's output and exit code come
// back, and the exec is an event.
func TestExecOnAWS(t *testing.T) {
	a := newAWSApp(t, webYAML)
	e := a.env(Options{})
	if res, _ := a.deploy(e); !res.OK {
		t.Fatalf("deploy: %s", res.Error)
	}
	agent := awstest.StartSSMAgent(t)
	a.proxy.Handle("ecs:ExecuteCommand", agent.ExecuteCommand)
	ctx := context.Background()

	var out bytes.Buffer
	code, err := e.Exec(ctx, "web", ExecRequest{Command: []string{"sh", "-c", "echo in $0; exit 4", "web"},
		Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if code != 4 || out.String() != "in web\n" {
		t.Errorf("exit %d, output %q", code, out.String())
	}
	s := agent.Sessions()[0]
	slot := Slot(a.serving(e, "web"))
	tasks, err := a.c.ECS.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(e.clusterName()), ServiceName: aws.String(e.ecsServiceName("web", slot))})
	if err != nil {
		t.Fatal(err)
	}
	if s.Container != "web" || s.Cluster != e.clusterName() || !contains(tasks.TaskArns, s.Task) {
		t.Errorf("exec went to %s/%s/%s; the serving slot %s has %v", s.Cluster, s.Task, s.Container, slot, tasks.TaskArns)
	}

	// --instance: a prefix of a task's ID; an unknown one is refused.
	id := ecsTaskID(s.Task)
	if _, err := e.Exec(ctx, "web", ExecRequest{Instance: id[:6], Command: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	if got := agent.Sessions()[1].Task; got != s.Task {
		t.Errorf("--instance %s went to %s", id[:6], got)
	}
	if _, err := e.Exec(ctx, "web", ExecRequest{Instance: "zzzz", Command: []string{"true"}}); err == nil || !strings.Contains(err.Error(), `"zzzz"`) {
		t.Errorf("unknown instance: %v", err)
	}
	if _, err := e.Exec(ctx, "nope", ExecRequest{Command: []string{"true"}}); err == nil {
		t.Error("exec into a service that is not deployed worked")
	}

	evs, err := e.Events(ctx, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range evs {
		found = found || (ev.Kind == "exec" && strings.Contains(ev.Message, id))
	}
	if !found {
		t.Errorf("no exec event in %+v", evs)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
