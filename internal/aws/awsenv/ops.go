package awsenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/aws/awsstate"
	"github.com/berth-dev/berth/internal/spec"
)

// serving is a service's active revision and its spec, or an error
// naming what exists.
func (e *Env) serving(ctx context.Context, service string) (*awsstate.Revision, *spec.Service, error) {
	revs, err := e.state.Revisions(ctx, service)
	if err != nil {
		return nil, nil, err
	}
	cur := activeOf(revs)
	if cur == nil {
		return nil, nil, fmt.Errorf("%w: %s has no serving revision of %s in %s; see \"berth status --env %s\"", awsstate.ErrNotFound, e.App, service, e.Name, e.Name)
	}
	var svc spec.Service
	if err := json.Unmarshal(cur.Spec, &svc); err != nil {
		return nil, nil, fmt.Errorf("read revision %d of %s: %w", cur.Number, service, err)
	}
	return cur, &svc, nil
}

// Scale sets the task count of services' serving slots (service → N).
// It lasts until the next deploy, which starts the spec's count.
func (e *Env) Scale(ctx context.Context, counts map[string]int) (api.Status, error) {
	ctx, l, unlock, err := e.lock(ctx, "scale")
	if err != nil {
		return api.Status{}, err
	}
	defer unlock()
	if err := e.settle(ctx, l, nil); err != nil {
		return api.Status{}, err
	}
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		cur, svc, err := e.serving(ctx, n)
		if err != nil {
			return api.Status{}, err
		}
		if isAppRunner(svc) {
			return api.Status{}, fmt.Errorf("%w: %s runs on App Runner, which scales by itself between scale.min and scale.max; change scale: in berth.yaml and deploy", ErrRefused, n)
		}
		if err := e.setCount(ctx, n, Slot(cur.Slot), int32(counts[n])); err != nil {
			return api.Status{}, err
		}
		if _, err := e.state.AddEvent(ctx, eventOf(n, "scale", fmt.Sprintf("scaled to %d", counts[n]))); err != nil {
			return api.Status{}, err
		}
	}
	return e.Status(ctx)
}

func (e *Env) setCount(ctx context.Context, service string, s Slot, n int32) error {
	name := e.ecsServiceName(service, s)
	if _, err := e.c.ECS.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(e.clusterName()), Service: aws.String(name), DesiredCount: aws.Int32(n)}); err != nil {
		return fmt.Errorf("set the task count of %s to %d: %w", name, n, err)
	}
	return nil
}

// Pause stops a service's tasks (ECS desired count 0) and keeps its
// revision, for Resume. The ALB answers 503 for it meanwhile.
func (e *Env) Pause(ctx context.Context, service string) (api.ServiceStatus, error) {
	ctx, l, unlock, err := e.lock(ctx, "pause")
	if err != nil {
		return api.ServiceStatus{}, err
	}
	defer unlock()
	if err := e.settle(ctx, l, nil); err != nil {
		return api.ServiceStatus{}, err
	}
	cur, svc, err := e.serving(ctx, service)
	if err != nil {
		return api.ServiceStatus{}, err
	}
	if isAppRunner(svc) {
		if err := e.pauseAppRunner(ctx, cur, svc, true, io.Discard); err != nil {
			return api.ServiceStatus{}, err
		}
		return e.oneStatus(ctx, service)
	}
	// Autoscaling would start the paused tasks again (scaling.go).
	if err := e.unscale(ctx, service, Slot(cur.Slot)); err != nil {
		return api.ServiceStatus{}, err
	}
	if err := e.setCount(ctx, service, Slot(cur.Slot), 0); err != nil {
		return api.ServiceStatus{}, err
	}
	if _, err := e.state.AddEvent(ctx, eventOf(service, "pause", fmt.Sprintf("paused revision %d", cur.Number))); err != nil {
		return api.ServiceStatus{}, err
	}
	return e.oneStatus(ctx, service)
}

// Resume starts a paused service's tasks again and waits until they run
// and are healthy.
func (e *Env) Resume(ctx context.Context, service string, out func(api.Message)) api.Message {
	p := progress(out)
	ctx, l, unlock, err := e.lock(ctx, "resume")
	if err != nil {
		return failure(err)
	}
	defer unlock()
	if err := e.settle(ctx, l, p); err != nil {
		return failure(err)
	}
	cur, svc, err := e.serving(ctx, service)
	if err != nil {
		return failure(err)
	}
	if isAppRunner(svc) {
		if err := e.pauseAppRunner(ctx, cur, svc, false, &phaseWriter{p: p, phase: "start"}); err != nil {
			return failure(fmt.Errorf("resume of %s: %w", service, err))
		}
		p.phase("done", "%s: revision %d serves on App Runner", service, cur.Number)
		return api.Message{Kind: api.KindResult, Time: time.Now(), OK: true, Deployed: []api.Deploy{{Service: service, Revision: cur.Number}}}
	}
	in, err := e.findInfra(ctx)
	if err != nil {
		return failure(err)
	}
	want := int32(svc.DesiredInstances())
	tg := ""
	if svc.Port > 0 {
		if tg, err = e.targetGroup(ctx, in, svc, Slot(cur.Slot)); err != nil {
			return failure(err)
		}
	}
	p.phase("start", "%s: starting %d task(s) of revision %d", service, want, cur.Number)
	if err := e.setCount(ctx, service, Slot(cur.Slot), want); err != nil {
		return failure(err)
	}
	wctx, cancel := context.WithTimeout(ctx, e.opts.DeployTimeout)
	defer cancel()
	if err := e.waitSlot(wctx, in, svc, Slot(cur.Slot), cur.TaskDefinition, tg, want, func(s string) { p.phase("start", "%s: %s", service, s) }); err != nil {
		return failure(fmt.Errorf("resume of %s: %w", service, err))
	}
	if err := e.followScaling(ctx, in, svc, Slot(cur.Slot), tg); err != nil {
		return failure(fmt.Errorf("resume of %s: its tasks run, but %w; run berth resume --env %s %s again", service, err, e.Name, service))
	}
	_, _ = e.state.AddEvent(ctx, eventOf(service, "resume", fmt.Sprintf("resumed revision %d", cur.Number)))
	p.phase("done", "%s: revision %d serves", service, cur.Number)
	return api.Message{Kind: api.KindResult, Time: time.Now(), OK: true, Deployed: []api.Deploy{{Service: service, Revision: cur.Number, URLs: e.urls(ctx, in, svc)}}}
}

func (e *Env) oneStatus(ctx context.Context, service string) (api.ServiceStatus, error) {
	st, err := e.Status(ctx)
	if err != nil {
		return api.ServiceStatus{}, err
	}
	for _, a := range st.Apps {
		for _, s := range a.Services {
			if s.Name == service {
				return s, nil
			}
		}
	}
	return api.ServiceStatus{}, fmt.Errorf("%w: %s has no service %s in %s", awsstate.ErrNotFound, e.App, service, e.Name)
}

// LogsOptions choose the lines Logs sends.
type LogsOptions struct {
	Follow    bool
	Since     time.Duration // 0: all kept
	Container string        // "" all containers; the service's name or a sidecar's
	Tail      int           // past lines to send, 0: all
	Instance  string        // "" all tasks; else a task ID or its prefix
}

// Logs sends a service's log lines from CloudWatch Logs (the awslogs
// streams SERVICE/CONTAINER/TASK), merged by time, following new ones
// until ctx ends when Follow is set.
func (e *Env) Logs(ctx context.Context, service string, o LogsOptions, out func(api.Message)) error {
	group, prefix, err := e.logSource(ctx, service, o.Container)
	if err != nil {
		return err
	}
	start := int64(0)
	if o.Since > 0 {
		start = e.opts.Now().Add(-o.Since).UnixMilli()
	}
	seen := map[string]bool{}
	first := true
	for {
		var lines []api.Message
		in := &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group)}
		if prefix != "" {
			in.LogStreamNamePrefix = aws.String(prefix)
		}
		if start > 0 {
			in.StartTime = aws.Int64(start)
		}
		pg := cloudwatchlogs.NewFilterLogEventsPaginator(e.c.Logs, in)
		for pg.HasMorePages() {
			page, err := pg.NextPage(ctx)
			if err != nil {
				if apiCode(err) == "ResourceNotFoundException" {
					break
				}
				return fmt.Errorf("read the logs of %s in %s: %w", service, e.what(), err)
			}
			for _, ev := range page.Events {
				id := aws.ToString(ev.EventId)
				if seen[id] {
					continue
				}
				seen[id] = true
				stream := aws.ToString(ev.LogStreamName)
				src := stream[strings.LastIndex(stream, "/")+1:]
				if o.Instance != "" && !strings.HasPrefix(src, o.Instance) {
					continue
				}
				if len(src) > 12 {
					src = src[:12]
				}
				lines = append(lines, api.Message{Kind: api.KindLog, Time: time.UnixMilli(aws.ToInt64(ev.Timestamp)), Source: src, Stream: "stdout", Text: aws.ToString(ev.Message)})
				start = max(start, aws.ToInt64(ev.Timestamp))
			}
		}
		// CloudWatch answers stream by stream; berth prints by time.
		sort.SliceStable(lines, func(i, j int) bool { return lines[i].Time.Before(lines[j].Time) })
		if first && o.Tail > 0 && len(lines) > o.Tail {
			lines = lines[len(lines)-o.Tail:]
		}
		first = false
		for _, m := range lines {
			out(m)
		}
		if !o.Follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(2 * time.Second):
		}
	}
}
