package awstest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

// ECS fills in, behind a Proxy, what moto's ECS does not do: a service's
// tasks run (moto never starts them), its deployment completes, its
// target group's targets are healthy, and a task run ends with an exit
// code and output (moto always answers 0 and writes no logs). Faults are
// set per task definition or target group: a deployment whose tasks
// crash, targets that never pass their health check, a task that exits
// non-zero.
//
// It answers through the real AWS wire protocols (the SDK parses what it
// makes), reading moto's own state for what it does not track itself.
type ECS struct {
	p      *Proxy
	ecs    *ecs.Client // straight to moto, past the proxy
	logs   *cloudwatchlogs.Client
	mu     sync.Mutex
	crash  map[string]string // task definition ARN → why its tasks stop
	sick   map[string]bool   // task definition ARN → its targets stay unhealthy
	run    func(command []string) (exit int, output []string)
	exits  map[string]int // task ARN → exit code
	stop   map[string]bool
	tgDesc map[string]string // target group ARN → ECS service using it ("cluster|service")
}

// SimulateECS installs the ECS simulation on p. By default every task run
// prints its command and exits 0; OnRun changes that.
func SimulateECS(t testing.TB, p *Proxy) *ECS {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(Region),
		config.WithBaseEndpoint(p.moto),
		config.WithRetryMaxAttempts(8),
	)
	if err != nil {
		t.Fatal(err)
	}
	s := &ECS{p: p, ecs: ecs.NewFromConfig(cfg), logs: cloudwatchlogs.NewFromConfig(cfg),
		crash: map[string]string{}, sick: map[string]bool{}, exits: map[string]int{}, stop: map[string]bool{}, tgDesc: map[string]string{},
		run: func(cmd []string) (int, []string) { return 0, []string{strings.Join(cmd, " ")} }}
	if err := immediateTasks(p.moto); err != nil {
		t.Fatal(err)
	}
	p.Handle("ecs:DescribeServices", s.describeServices)
	p.Handle("ecs:RunTask", s.runTask)
	p.Handle("ecs:DescribeTasks", s.describeTasks)
	p.Handle("ecs:StopTask", s.stopTask)
	p.Handle("elasticloadbalancing:DescribeTargetHealth", s.targetHealth)
	return s
}

// Crash makes the tasks of a task definition stop as they start, with why.
func (s *ECS) Crash(taskDef, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.crash[taskDef] = why
}

// Unhealthy makes the targets of a task definition's tasks fail their
// health check forever.
func (s *ECS) Unhealthy(taskDef string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sick[taskDef] = true
}

// OnRun decides what a task run prints and its exit code, by command.
func (s *ECS) OnRun(fn func(command []string) (exit int, output []string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.run = fn
}

// describeServices: every ACTIVE service runs its desired count of its
// task definition, in one COMPLETED deployment, unless its task
// definition crashes (then the deployment has failed tasks).
func (s *ECS) describeServices(c *Call) *Response {
	r, err := c.Forward()
	if err != nil || r.StatusCode != http.StatusOK {
		return r
	}
	v, err := r.JSON()
	if err != nil {
		return r
	}
	svcs, _ := v["services"].([]any)
	for _, x := range svcs {
		svc, _ := x.(map[string]any)
		td, _ := svc["taskDefinition"].(string)
		desired := svc["desiredCount"]
		s.mu.Lock()
		why, crashing := s.crash[td]
		s.mu.Unlock()
		running := desired
		failed := 0
		if crashing {
			running, failed = 0, 1
		}
		svc["runningCount"], svc["pendingCount"] = running, 0
		svc["deployments"] = []any{map[string]any{
			"id": "ecs-svc/berth-sim", "status": "PRIMARY", "taskDefinition": td,
			"desiredCount": desired, "runningCount": running, "pendingCount": 0, "failedTasks": failed,
			"rolloutState": "COMPLETED", "rolloutStateReason": "simulated", "launchType": "FARGATE",
		}}
		if crashing {
			svc["deployments"].([]any)[0].(map[string]any)["rolloutState"] = "IN_PROGRESS"
			svc["events"] = []any{map[string]any{"id": "1", "message": why}}
		}
		if lbs, ok := svc["loadBalancers"].([]any); ok {
			for _, lb := range lbs {
				m, _ := lb.(map[string]any)
				if tg, _ := m["targetGroupArn"].(string); tg != "" {
					s.mu.Lock()
					s.tgDesc[tg] = td + "|" + fmt.Sprint(running)
					s.mu.Unlock()
				}
			}
		}
	}
	_ = r.SetJSON(v)
	return r
}

// targetHealth answers as many healthy targets as the service behind the
// target group runs (as DescribeServices last told), or unhealthy ones.
func (s *ECS) targetHealth(c *Call) *Response {
	form, _ := url.ParseQuery(string(c.Body))
	tg := form.Get("TargetGroupArn")
	s.mu.Lock()
	desc := s.tgDesc[tg]
	s.mu.Unlock()
	td, countStr, _ := strings.Cut(desc, "|")
	n := 0
	fmt.Sscan(countStr, &n)
	s.mu.Lock()
	state := "healthy"
	if s.sick[td] {
		state = "unhealthy"
	}
	s.mu.Unlock()
	var b strings.Builder
	b.WriteString(`<DescribeTargetHealthResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><DescribeTargetHealthResult><TargetHealthDescriptions>`)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `<member><Target><Id>10.0.0.%d</Id><Port>8080</Port></Target><HealthCheckPort>8080</HealthCheckPort><TargetHealth><State>%s</State></TargetHealth></member>`, i+1, state)
	}
	b.WriteString(`</TargetHealthDescriptions></DescribeTargetHealthResult><ResponseMetadata><RequestId>berth-sim</RequestId></ResponseMetadata></DescribeTargetHealthResponse>`)
	h := http.Header{}
	h.Set("Content-Type", "text/xml")
	return &Response{StatusCode: http.StatusOK, Header: h, Body: []byte(b.String())}
}

// runTask lets moto start the task, then writes its output to the log
// stream the awslogs driver would, and keeps its exit code.
func (s *ECS) runTask(c *Call) *Response {
	var req struct {
		Cluster        string
		TaskDefinition string
		Overrides      struct {
			ContainerOverrides []struct {
				Name    string
				Command []string
			}
		}
	}
	_ = json.Unmarshal(c.Body, &req)
	r, err := c.Forward()
	if err != nil || r.StatusCode != http.StatusOK {
		return r
	}
	fixTaskShapes(r)
	var out struct {
		Tasks []struct {
			TaskArn string
		}
	}
	_ = json.Unmarshal(r.Body, &out)
	if len(out.Tasks) == 0 || len(req.Overrides.ContainerOverrides) == 0 {
		return r
	}
	co := req.Overrides.ContainerOverrides[0]
	s.mu.Lock()
	run := s.run
	s.mu.Unlock()
	code, lines := run(co.Command)
	arn := out.Tasks[0].TaskArn
	s.mu.Lock()
	s.exits[arn] = code
	s.mu.Unlock()
	td, err := s.ecs.DescribeTaskDefinition(context.Background(), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(req.TaskDefinition)})
	if err != nil {
		return r
	}
	for _, cd := range td.TaskDefinition.ContainerDefinitions {
		if aws.ToString(cd.Name) != co.Name || cd.LogConfiguration == nil {
			continue
		}
		o := cd.LogConfiguration.Options
		group, stream := o["awslogs-group"], o["awslogs-stream-prefix"]+"/"+co.Name+"/"+arn[strings.LastIndex(arn, "/")+1:]
		ctx := context.Background()
		_, _ = s.logs.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream)})
		var evs []cwEvent
		for i, l := range lines {
			evs = append(evs, cwEvent{l, int64(i)})
		}
		s.putLogs(ctx, group, stream, evs)
	}
	return r
}

type cwEvent struct {
	msg string
	seq int64
}

func (s *ECS) putLogs(ctx context.Context, group, stream string, evs []cwEvent) {
	if len(evs) == 0 {
		return
	}
	in := &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream)}
	for _, e := range evs {
		in.LogEvents = append(in.LogEvents, cwtypesEvent(e))
	}
	_, _ = s.logs.PutLogEvents(ctx, in)
}

// describeTasks gives a stopped task's main container the exit code its
// run decided (moto answers 0 for every container).
func (s *ECS) describeTasks(c *Call) *Response {
	r, err := c.Forward()
	if err != nil || r.StatusCode != http.StatusOK {
		return r
	}
	v, err := r.JSON()
	if err != nil {
		return r
	}
	tasks, _ := v["tasks"].([]any)
	fixContainers(tasks)
	for _, x := range tasks {
		t, _ := x.(map[string]any)
		arn, _ := t["taskArn"].(string)
		s.mu.Lock()
		code, ok := s.exits[arn]
		stopped := s.stop[arn]
		s.mu.Unlock()
		if !ok {
			continue
		}
		if stopped {
			t["lastStatus"] = "STOPPED"
		}
		if t["lastStatus"] != "STOPPED" {
			continue
		}
		conts, _ := t["containers"].([]any)
		for _, y := range conts {
			ct, _ := y.(map[string]any)
			ct["exitCode"] = code
			ct["lastStatus"] = "STOPPED"
		}
		if _, ok := t["stoppedReason"]; !ok {
			t["stoppedReason"] = "Essential container in task exited"
		}
	}
	_ = r.SetJSON(v)
	return r
}

// stopTask marks a task stopped at once, with exit code 137 (SIGKILL) as
// a stopped container answers.
func (s *ECS) stopTask(c *Call) *Response {
	var req struct{ Task string }
	_ = json.Unmarshal(c.Body, &req)
	s.mu.Lock()
	for arn := range s.exits {
		if arn == req.Task || strings.HasSuffix(arn, "/"+req.Task) {
			s.exits[arn], s.stop[arn] = 137, true
		}
	}
	s.mu.Unlock()
	return nil
}

func cwtypesEvent(e cwEvent) cwtypes.InputLogEvent {
	return cwtypes.InputLogEvent{Message: aws.String(e.msg), Timestamp: aws.Int64(time.Now().UnixMilli() + e.seq)}
}

// fixTaskShapes makes moto's task answers match ECS's published model:
// moto writes a container's cpu as a number where the model (and so the
// SDK) has a string.
func fixTaskShapes(r *Response) {
	v, err := r.JSON()
	if err != nil {
		return
	}
	tasks, _ := v["tasks"].([]any)
	fixContainers(tasks)
	_ = r.SetJSON(v)
}

func fixContainers(tasks []any) {
	for _, x := range tasks {
		t, _ := x.(map[string]any)
		conts, _ := t["containers"].([]any)
		for _, y := range conts {
			ct, _ := y.(map[string]any)
			// ECS's Container shape has these as strings; moto answers numbers.
			for _, k := range []string{"cpu", "memory", "memoryReservation"} {
				if n, ok := ct[k].(json.Number); ok {
					ct[k] = n.String()
				}
			}
		}
	}
}

// immediateTasks has moto answer a task's final state at the first
// DescribeTasks: by default it moves one state per call, so a one-second
// poll waits three times, while the simulation answers the rest at once.
// It applies to the whole moto_server, for every test sharing it.
func immediateTasks(moto string) error {
	body := `{"model_name": "ecs::task", "transition": {"progression": "immediate"}}`
	resp, err := http.Post(moto+"/moto-api/state-manager/set-transition", "application/json", strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("moto: set the task transition: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("moto: set the task transition: %s", resp.Status)
	}
	return nil
}
