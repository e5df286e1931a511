package awsenv

import (
	"context"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/berth-dev/berth/internal/aws/cdn"
	"github.com/berth-dev/berth/internal/aws/fargate"
	"github.com/berth-dev/berth/internal/spec"
)

// How a service's routes become listener rules on the app's ALB, in the
// order the ALB tries them (lowest priority number first):
//
//	10+    edge:    requests a CloudFront distribution of the app sends
//	                for SERVICE (X-Berth-Service) → SERVICE (edge.go)
//	100+   routes:  (SERVICE's hosts, PATH*) → the route's service
//	1000+  hosts:   SERVICE.APP.* and the service's domains → SERVICE
//	50000  the app's first HTTP service also takes everything else (/*)
//
// Every rule forwards to both slots' target groups of the service it
// sends to, with weights 100 and 0; a switch rewrites the weights of each
// rule that sends to the service. A rule is found again by its tag
// berth.rule (its key) and berth.service (where it sends).
//
// When the spec has edge: entrypoints, CloudFront is the app's public
// entrypoint: every rule also requires the origin secret header
// (cdn.SecretCondition), so a request that did not come through one of the
// app's distributions gets the listener's 404. Without entrypoints no rule
// requires it and the ALB stays the public entrypoint, as before.
const tagRule = "berth.rule"

type ruleSpec struct {
	Key        string // stable identity: "host:web", "route:web:/api", "default"
	Service    string // where it sends
	Conditions []elbtypes.RuleCondition
	Priority   int32 // preferred; the next free one is taken when used
}

// ALB quotas (Elastic Load Balancing, "Quotas for your Application Load
// Balancers"): a rule's conditions hold at most 5 values in all.
const maxRuleValues = 5

// secretValues is what the origin secret condition may need: two values
// while a rotation runs. The budget does not depend on how many it has
// now, so a rule's keys stay the same through a rotation.
const secretValues = 2

// wantRules are the listener rules a spec's HTTP services ask for; secrets
// are the origin secret values the ALB accepts when sp has entrypoints
// (edgeSecrets), nil otherwise. A service with more hosts than one rule
// may hold gets one rule per share of them ("host:web", "host:web+1", ...).
func (e *Env) wantRules(sp *spec.Spec, secrets []string) []ruleSpec {
	var out []ruleSpec
	for i, r := range cdn.ALBRules(sp, secrets) {
		out = append(out, ruleSpec{Key: r.Key, Service: r.Service, Priority: int32(10 + i), Conditions: r.Conditions})
	}
	locked := len(sp.Edge) > 0
	budget := maxRuleValues
	if locked {
		budget -= secretValues
	}
	lock := func(conds ...elbtypes.RuleCondition) []elbtypes.RuleCondition {
		if locked {
			conds = append(conds, cdn.SecretCondition(secrets...))
		}
		return conds
	}
	first := ""
	for i, n := range sp.ServiceOrder {
		svc := sp.Services[n]
		if svc.Port == 0 {
			continue
		}
		if first == "" {
			first = n
		}
		hosts := append([]string{n + "." + e.App + ".*"}, svc.Domains...)
		prio := int32(100 + 10*i)
		for _, r := range svc.Routes {
			paths := fargate.PathPatterns(r.Path)
			for k, share := range shares(hosts, budget-len(paths)) {
				out = append(out, ruleSpec{
					Key: shareKey("route:"+n+":"+r.Path, k), Service: r.Service, Priority: prio,
					Conditions: lock(hostCond(share), pathCond(r.Path)),
				})
				prio++
			}
		}
		for k, share := range shares(hosts, budget) {
			out = append(out, ruleSpec{Key: shareKey("host:"+n, k), Service: n, Priority: int32(1000+10*i) + int32(k), Conditions: lock(hostCond(share))})
		}
	}
	if first != "" {
		out = append(out, ruleSpec{Key: "default", Service: first, Priority: 50000, Conditions: lock(pathCond("/"))})
	}
	return out
}

// shares cuts hosts into runs of at most n (at least 1).
func shares(hosts []string, n int) [][]string {
	n = max(n, 1)
	var out [][]string
	for len(hosts) > n {
		out = append(out, hosts[:n:n])
		hosts = hosts[n:]
	}
	return append(out, hosts)
}

// shareKey is the key of a rule's k-th share of hosts: the first keeps
// the rule's own key.
func shareKey(key string, k int) string {
	if k == 0 {
		return key
	}
	return fmt.Sprintf("%s+%d", key, k)
}

func hostCond(hosts []string) elbtypes.RuleCondition {
	return elbtypes.RuleCondition{Field: aws.String("host-header"), HostHeaderConfig: &elbtypes.HostHeaderConditionConfig{Values: hosts}}
}

func pathCond(prefix string) elbtypes.RuleCondition {
	return elbtypes.RuleCondition{Field: aws.String("path-pattern"), PathPatternConfig: &elbtypes.PathPatternConditionConfig{Values: fargate.PathPatterns(prefix)}}
}

// forward is the weighted forward action to a service's two slots.
func forward(tgs map[Slot]string, active Slot) []elbtypes.Action {
	var groups []elbtypes.TargetGroupTuple
	for _, s := range []Slot{SlotA, SlotB} {
		if tgs[s] == "" {
			continue
		}
		w := int32(0)
		if s == active {
			w = 100
		}
		groups = append(groups, elbtypes.TargetGroupTuple{TargetGroupArn: aws.String(tgs[s]), Weight: aws.Int32(w)})
	}
	return []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, ForwardConfig: &elbtypes.ForwardActionConfig{TargetGroups: groups}}}
}

// liveRule is a listener rule berth made, as found.
type liveRule struct {
	ARN      string
	Key      string
	Service  string
	Priority string
}

// rules lists the listener's rules that berth made, by key.
func (e *Env) rules(ctx context.Context, in *infra) (map[string]liveRule, []string, error) {
	out := map[string]liveRule{}
	var used []string
	if in.Listener == "" {
		return out, nil, nil
	}
	var arns []string
	prios := map[string]string{}
	var marker *string
	for {
		page, err := e.c.ELB.DescribeRules(ctx, &elb.DescribeRulesInput{ListenerArn: aws.String(in.Listener), Marker: marker})
		if err != nil {
			return nil, nil, fmt.Errorf("read the listener rules of %s: %w", e.lbName(), err)
		}
		for _, r := range page.Rules {
			used = append(used, aws.ToString(r.Priority))
			if aws.ToBool(r.IsDefault) {
				continue
			}
			arns = append(arns, aws.ToString(r.RuleArn))
			prios[aws.ToString(r.RuleArn)] = aws.ToString(r.Priority)
		}
		if page.NextMarker == nil {
			break
		}
		marker = page.NextMarker
	}
	for i := 0; i < len(arns); i += 20 {
		tags, err := e.c.ELB.DescribeTags(ctx, &elb.DescribeTagsInput{ResourceArns: arns[i:min(i+20, len(arns))]})
		if err != nil {
			return nil, nil, fmt.Errorf("read the tags of the listener rules of %s: %w", e.lbName(), err)
		}
		for _, td := range tags.TagDescriptions {
			r := liveRule{ARN: aws.ToString(td.ResourceArn), Priority: prios[aws.ToString(td.ResourceArn)]}
			for _, t := range td.Tags {
				switch aws.ToString(t.Key) {
				case tagRule:
					r.Key = aws.ToString(t.Value)
				case TagService:
					r.Service = aws.ToString(t.Value)
				}
			}
			if r.Key != "" {
				out[r.Key] = r
			}
		}
	}
	return out, used, nil
}

// route points every rule that sends to service at its active slot,
// making the spec's rules for it that do not exist yet. It changes the
// weights of each rule in one call; both slots serve while it runs.
func (e *Env) route(ctx context.Context, in *infra, sp *spec.Spec, service string, tgs map[Slot]string, active Slot) (calls int, err error) {
	live, used, err := e.rules(ctx, in)
	if err != nil {
		return 0, err
	}
	taken := map[int32]bool{}
	for _, p := range used {
		var n int32
		if _, err := fmt.Sscan(p, &n); err == nil {
			taken[n] = true
		}
	}
	secrets, err := e.edgeSecrets(ctx, in, sp)
	if err != nil {
		return 0, err
	}
	want := e.wantRules(sp, secrets)
	sort.SliceStable(want, func(i, j int) bool { return want[i].Priority < want[j].Priority })
	for _, w := range want {
		if w.Service != service {
			continue
		}
		if r, ok := live[w.Key]; ok {
			_, err := e.c.ELB.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: aws.String(r.ARN), Conditions: w.Conditions, Actions: forward(tgs, active)})
			if err != nil {
				return calls, fmt.Errorf("switch rule %s of %s to slot %s: %w", w.Key, e.lbName(), active, err)
			}
			calls++
			continue
		}
		p := w.Priority
		for taken[p] {
			p++
		}
		taken[p] = true
		_, err := e.c.ELB.CreateRule(ctx, &elb.CreateRuleInput{
			ListenerArn: aws.String(in.Listener), Priority: aws.Int32(p), Conditions: w.Conditions, Actions: forward(tgs, active),
			Tags: e.elbTags(map[string]string{tagRule: w.Key, TagService: service}),
		})
		if err != nil {
			return calls, fmt.Errorf("add rule %s to %s: %w", w.Key, e.lbName(), err)
		}
		calls++
	}
	return calls, nil
}

// pruneRules removes the rules berth made that the spec no longer asks
// for (a service or a route removed).
func (e *Env) pruneRules(ctx context.Context, in *infra, sp *spec.Spec) error {
	live, _, err := e.rules(ctx, in)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	if sp != nil {
		for _, w := range e.wantRules(sp, nil) {
			want[w.Key] = true
		}
	}
	for k, r := range live {
		if want[k] {
			continue
		}
		if _, err := e.c.ELB.DeleteRule(ctx, &elb.DeleteRuleInput{RuleArn: aws.String(r.ARN)}); err != nil && apiCode(err) != "RuleNotFound" {
			return fmt.Errorf("remove rule %s from %s: %w", k, e.lbName(), err)
		}
	}
	return nil
}

// switchRules points every rule that sends to a service at slot s, as
// found in the listener (no spec needed): it finishes a switch a berth
// began and was cut off in.
func (e *Env) switchRules(ctx context.Context, in *infra, svc *spec.Service, s Slot) error {
	if svc.Port == 0 || in.Listener == "" {
		return nil
	}
	tgs := map[Slot]string{}
	for _, x := range []Slot{SlotA, SlotB} {
		arn, err := e.targetGroup(ctx, in, svc, x)
		if err != nil {
			return err
		}
		tgs[x] = arn
	}
	live, _, err := e.rules(ctx, in)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(live))
	for k, r := range live {
		if r.Service == svc.Name {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, err := e.c.ELB.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: aws.String(live[k].ARN), Actions: forward(tgs, s)}); err != nil {
			return fmt.Errorf("switch rule %s of %s to slot %s: %w", k, e.lbName(), s, err)
		}
	}
	return nil
}
