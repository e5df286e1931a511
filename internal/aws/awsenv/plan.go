package awsenv

import (
	"context"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/internal/aws/fargate"
	"github.com/berth-dev/berth/internal/spec"
)

// Change is one thing a deploy would do in AWS.
type Change struct {
	Action   string `json:"action"`   // create, update, switch, keep
	Resource string `json:"resource"` // "load balancer berth-shop-prod"
	Detail   string `json:"detail,omitempty"`
}

func (c Change) String() string {
	s := fmt.Sprintf("%-7s %s", c.Action, c.Resource)
	if c.Detail != "" {
		s += ": " + c.Detail
	}
	return s
}

// Plan says what a deploy of the services named (all when none) would
// create or change in AWS, reading only: it takes no lock and changes
// nothing. What the deploy would refuse (a secret never set, what Fargate
// cannot do) is refused here too.
func (e *Env) Plan(ctx context.Context, sp *spec.Spec, names []string) ([]Change, error) {
	if len(names) == 0 {
		names = sp.ServiceOrder
	}
	in, err := e.findInfra(ctx)
	if err != nil {
		return nil, err
	}
	var out []Change
	mk := func(missing bool, what string) {
		if missing {
			out = append(out, Change{Action: "create", Resource: what})
		}
	}
	if hasECS(sp, names) {
		mk(in.Cluster == "", "ECS cluster "+e.clusterName())
		mk(in.ALBGroup == "", "security group "+e.groupName("alb"))
		mk(in.SvcGroup == "", "security group "+e.groupName("svc"))
		mk(in.LB == "", "load balancer "+e.lbName()+" with an HTTP listener")
		if _, err := e.c.IAM.GetRole(ctx, iamGetRole(e.execRoleName())); apiCode(err) == "NoSuchEntity" {
			mk(true, "IAM role "+e.execRoleName())
		}
	}
	for _, n := range names {
		svc := sp.Services[n]
		if svc == nil {
			return nil, fmt.Errorf("%w: %s has no service %q (services: %s)", ErrRefused, sp.File, n, strings.Join(sp.ServiceOrder, ", "))
		}
		revs, err := e.state.Revisions(ctx, n)
		if err != nil {
			return nil, err
		}
		active := activeOf(revs)
		next := 1
		if len(revs) > 0 {
			next = revs[0].Number + 1
		}
		if isAppRunner(svc) {
			out = append(out, e.planAppRunner(svc, next)...)
			continue
		}
		if _, err := e.secretARNs(ctx, sp, svc); err != nil {
			return nil, err
		}
		slot := SlotA
		if active != nil {
			slot = Slot(active.Slot).Other()
		}
		img := svc.Image
		if img == "" && svc.Build != nil {
			img = "built from " + svc.Build.Context
		}
		out = append(out, Change{Action: "push", Resource: "image of " + n, Detail: img + " to ECR repository " + e.repoName(n)})
		out = append(out, Change{Action: "create", Resource: fmt.Sprintf("task definition %s revision %d", n, next)})
		if len(svc.Release) > 0 {
			out = append(out, Change{Action: "run", Resource: "release task of " + n, Detail: strings.Join(svc.Release, " ")})
		}
		act := "update"
		if in.Cluster != "" {
			if cur, err := e.describeSlot(ctx, in.Cluster, n, slot); err == nil && !cur.Exists {
				act = "create"
			}
		} else {
			act = "create"
		}
		out = append(out, Change{Action: act, Resource: "ECS service " + e.ecsServiceName(n, slot), Detail: fmt.Sprintf("%d task(s) of revision %d", svc.DesiredInstances(), next)})
		if svc.Port > 0 {
			detail := "all traffic"
			if active != nil {
				detail = fmt.Sprintf("all traffic from revision %d (slot %s, kept warm %s)", active.Number, active.Slot, e.opts.Warm)
			}
			out = append(out, Change{Action: "switch", Resource: "listener rules of " + n + " to slot " + string(slot), Detail: detail})
		}
		if a := fargate.Scaling(svc); a != nil {
			detail := fmt.Sprintf("%d to %d tasks", a.Min, a.Max)
			if a.RequestsPerTarget > 0 {
				detail += fmt.Sprintf(", tracking %.0f requests per task per minute", a.RequestsPerTarget)
			}
			out = append(out, Change{Action: "set", Resource: "Application Auto Scaling of " + e.ecsServiceName(n, slot), Detail: detail})
		}
		out = append(out, Change{Action: "switch", Resource: "Cloud Map name " + n + "." + e.namespaceName(), Detail: "to slot " + string(slot)})
	}
	if hasECS(sp, names) {
		if ns, err := e.findNamespace(ctx); err == nil && ns == "" {
			out = append(out, Change{Action: "create", Resource: "Cloud Map namespace " + e.namespaceName()})
		}
	}
	for _, tn := range sp.TaskOrder {
		if t := sp.Tasks[tn]; t != nil && t.Schedule != "" {
			expr, err := fargate.ScheduleExpression(t.Schedule)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrRefused, sp.FieldError("tasks."+tn+".schedule", "%s", err.Error()))
			}
			out = append(out, Change{Action: "set", Resource: "EventBridge Scheduler schedule " + taskScheduleName(tn) + " in group " + e.scheduleGroup(), Detail: expr})
		}
	}
	cdnm := e.cdnManager(sp, in, nil)
	for _, en := range sp.EdgeOrder {
		ep := sp.Edge[en]
		act, detail := "create", "default origin "+ep.Origin
		switch {
		case ep.Distribution != "":
			act, detail = "update", "adopted "+ep.Distribution+", "+detail
		default:
			if _, err := cdnm.Show(ctx, en); err == nil {
				act = "update"
			}
		}
		out = append(out, Change{Action: act, Resource: "CloudFront distribution of entrypoint " + en, Detail: detail})
	}
	return out, nil
}
