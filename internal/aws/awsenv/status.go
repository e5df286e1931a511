package awsenv

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/aws/awsstate"
	"github.com/berth-dev/berth/internal/spec"
)

// Status reads the app's services from AWS: the records in the state and
// what ECS runs. It takes no lock and changes nothing.
func (e *Env) Status(ctx context.Context) (api.Status, error) {
	revs, err := e.state.Revisions(ctx, "")
	if err != nil {
		return api.Status{}, err
	}
	if len(revs) == 0 {
		return api.Status{Apps: []api.AppStatus{}}, nil
	}
	// Services on App Runner need none of the app's ECS resources (nor a
	// VPC to find them in).
	in := &infra{}
	if !allAppRunner(revs) {
		if in, err = e.findInfra(ctx); err != nil {
			return api.Status{}, err
		}
	}
	byService := map[string][]awsstate.Revision{}
	var order []string
	for _, r := range revs {
		if _, ok := byService[r.Service]; !ok {
			order = append(order, r.Service)
		}
		byService[r.Service] = append(byService[r.Service], r)
	}
	sort.Strings(order)
	app := api.AppStatus{Name: e.App}
	for _, n := range order {
		st, err := e.serviceStatus(ctx, in, n, byService[n])
		if err != nil {
			return api.Status{}, err
		}
		app.Services = append(app.Services, st)
	}
	return api.Status{Apps: []api.AppStatus{app}}, nil
}

func (e *Env) serviceStatus(ctx context.Context, in *infra, name string, revs []awsstate.Revision) (api.ServiceStatus, error) {
	st := api.ServiceStatus{App: e.App, Name: name, State: "stopped", Instances: []api.InstanceStatus{}}
	cur := activeOf(revs)
	if cur == nil {
		if revs[0].State == awsstate.StateDeploying {
			st.State, st.Revision = "deploying", revs[0].Number
		} else if revs[0].State == awsstate.StateFailed {
			st.State, st.Message = "failed", revs[0].Reason
		}
		return st, nil
	}
	var svc spec.Service
	_ = json.Unmarshal(cur.Spec, &svc)
	st.Revision, st.Image, st.URLs = cur.Number, cur.Image, e.urls(ctx, in, &svc)
	st.Hosts = svc.Domains
	if isAppRunner(&svc) {
		err := e.appRunnerStatus(ctx, &st, &svc)
		if revs[0].State == awsstate.StateDeploying {
			st.State = "deploying"
		}
		return st, err
	}
	if in.Cluster == "" {
		return st, nil
	}
	slot, err := e.describeSlot(ctx, in.Cluster, name, Slot(cur.Slot))
	if err != nil {
		return st, err
	}
	st.Desired, st.Running = int(slot.Desired), int(slot.Running)
	switch {
	case slot.Desired == 0:
		st.State = "paused"
	case slot.Running >= slot.Desired:
		st.State = "running"
	default:
		st.State = "deploying"
	}
	if revs[0].State == awsstate.StateDeploying {
		st.State = "deploying"
	}
	tasks, err := e.c.ECS.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(in.Cluster), ServiceName: aws.String(e.ecsServiceName(name, Slot(cur.Slot)))})
	if err != nil || len(tasks.TaskArns) == 0 {
		return st, nil
	}
	d, err := e.c.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(in.Cluster), Tasks: tasks.TaskArns})
	if err != nil {
		return st, nil
	}
	for _, t := range d.Tasks {
		state := strings.ToLower(aws.ToString(t.LastStatus))
		if state == "running" {
			state = "healthy"
		}
		st.Instances = append(st.Instances, api.InstanceStatus{
			ID: ecsTaskID(aws.ToString(t.TaskArn)), Revision: cur.Number, State: state,
			ContainerID: aws.ToString(t.TaskArn), StartedAt: aws.ToTime(t.StartedAt),
		})
	}
	return st, nil
}

// Revisions lists a service's revisions, newest first.
func (e *Env) Revisions(ctx context.Context, service string) ([]api.Revision, error) {
	revs, err := e.state.Revisions(ctx, service)
	if err != nil {
		return nil, err
	}
	if len(revs) == 0 {
		return nil, fmt.Errorf("%w: %s has no service %s in %s; see \"berth status --env %s\"", awsstate.ErrNotFound, e.App, service, e.Name, e.Name)
	}
	out := make([]api.Revision, 0, len(revs))
	for _, r := range revs {
		out = append(out, api.Revision{Number: r.Number, Image: r.Image, ImageID: r.TaskDefinition, Status: string(r.State), CreatedAt: r.Created, Message: r.Reason, By: r.By})
	}
	return out, nil
}

// Events lists the app's events since a time, oldest first.
func (e *Env) Events(ctx context.Context, since time.Time, limit int) ([]api.Event, error) {
	evs, err := e.state.Events(ctx, since, limit)
	if err != nil {
		return nil, err
	}
	out := make([]api.Event, 0, len(evs))
	for i, ev := range evs {
		out = append(out, api.Event{ID: int64(i + 1), Time: ev.Time, App: e.App, Service: ev.Service, Kind: ev.Kind, Message: ev.Message})
	}
	return out, nil
}
