package awsenv

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

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
	// moto's ECS services start no tasks (and its ListTasks ignores
	// serviceName): the serving slot's two tasks are answered here, as ECS
	// lists and describes them.
	slot := Slot(a.serving(e, "web"))
	group := "service:" + e.ecsServiceName("web", slot)
	base := "arn:aws:ecs:" + awstest.Region + ":123456789012:task/" + e.clusterName() + "/"
	running := []string{base + "0a1b2c3d4e5f4a5b8c9d0e1f2a3b4c5d", base + "9f8e7d6c5b4a4f3e8d2c1b0a9f8e7d6c"}
	a.proxy.Handle("ecs:ListTasks", func(c *awstest.Call) *awstest.Response {
		var in struct{ ServiceName, DesiredStatus string }
		_ = json.Unmarshal(c.Body, &in)
		if "service:"+in.ServiceName != group {
			return nil
		}
		r := &awstest.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}}}
		_ = r.SetJSON(map[string]any{"taskArns": running})
		return r
	})
	a.proxy.Handle("ecs:DescribeTasks", func(c *awstest.Call) *awstest.Response {
		var in struct{ Tasks []string }
		_ = json.Unmarshal(c.Body, &in)
		var tasks []any
		for i, arn := range in.Tasks {
			if !slices.Contains(running, arn) {
				return nil
			}
			tasks = append(tasks, map[string]any{"taskArn": arn, "group": group, "lastStatus": "RUNNING", "desiredStatus": "RUNNING",
				"enableExecuteCommand": true, "startedAt": float64(time.Now().Add(-time.Duration(10-i) * time.Minute).Unix())})
		}
		r := &awstest.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}}}
		_ = r.SetJSON(map[string]any{"tasks": tasks, "failures": []any{}})
		return r
	})
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
	if s.Container != "web" || s.Cluster != e.clusterName() || s.Task != running[0] {
		t.Errorf("exec went to %s/%s/%s; want the serving slot's oldest task %s", s.Cluster, s.Task, s.Container, running[0])
	}

	// --instance: a prefix of a task's ID; an unknown one is refused.
	id := ecsTaskID(running[1])
	if _, err := e.Exec(ctx, "web", ExecRequest{Instance: id[:6], Command: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	if got := agent.Sessions()[1].Task; got != running[1] {
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
		found = found || (ev.Kind == "exec" && strings.Contains(ev.Message, ecsTaskID(running[0])))
	}
	if !found {
		t.Errorf("no exec event in %+v", evs)
	}
}
