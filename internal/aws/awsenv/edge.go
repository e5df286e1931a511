package awsenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/aws/cdn"
	"github.com/berth-dev/berth/internal/spec"
)

// The app's edge: entrypoints in an AWS environment are CloudFront
// distributions (internal/aws/cdn) whose berth-service origins are the
// app's ALB, reached with the origin secret header. cdn never touches the
// ALB; what the ALB must do is done here.
//
//	deploy   services switched ─▶ the other services' rules locked too
//	         ─▶ cdn.Apply per entrypoint (certificate records, unmapped
//	            keys printed as phases)
//	switch   cdn.Switch (default origin, If-Match, wait Deployed)
//	         ─▶ every edge:SERVICE rule back to its service alone
//	shift    cdn.Shift: ViaStaging is done by cdn; ViaALB rewrites the
//	         edge:FROM rule to FROM (100-p) and TO (p)
//	destroy  staging detached and deleted, created distributions
//	         disabled ─▶ Deployed ─▶ deleted (If-Match), their cache
//	         policies deleted; an adopted one untagged, left serving
//
// The secret condition: when the spec has at least one entrypoint, every
// listener rule berth makes requires the origin secret (rules.go), so
// CloudFront is the app's only public entrypoint; with no entrypoint no
// rule requires it and the ALB answers the public as before. A deploy
// rewrites every HTTP service's rules (ending an ALB shift), so adding or
// removing edge: takes effect on all of them at once.

// Entrypoint is an entrypoint of an AWS environment: the local edge's
// shape, and the CloudFront distribution behind it.
type Entrypoint struct {
	api.Entrypoint
	Distribution *cdn.Entrypoint `json:"distribution,omitempty"`
}

// Shifted is a shift made on AWS: the entrypoint after it and how it was
// carried out (Shift.Via).
type Shifted struct {
	Entrypoint
	Shift *cdn.Shifted `json:"shift"`
}

// cdnManager is the cdn.Manager of sp's entrypoints in this environment.
func (e *Env) cdnManager(sp *spec.Spec, in *infra, w io.Writer) *cdn.Manager {
	return cdn.New(e.c, sp, e.Name, cdn.ALB{DNSName: in.LBDNS}, cdn.Options{Progress: w, Now: e.opts.Now})
}

// edgeSecrets are the origin secret values the ALB's rules require: the
// app's origin secret (made the first time), and the one it replaces while
// a rotation runs, when sp has entrypoints; none otherwise.
func (e *Env) edgeSecrets(ctx context.Context, in *infra, sp *spec.Spec) ([]string, error) {
	if sp == nil || len(sp.Edge) == 0 {
		return nil, nil
	}
	return e.cdnManager(sp, in, nil).AcceptedSecrets(ctx)
}

// RotateEdgeSecret replaces the origin secret CloudFront sends the app's
// load balancer (cdn.RotateOriginSecret): every rule accepts the old and
// the new value until each distribution sends the new one and is
// deployed, then the new one alone. It finishes a rotation that was cut
// off first (finished).
func (e *Env) RotateEdgeSecret(ctx context.Context, sp *spec.Spec, w io.Writer) (finished bool, err error) {
	if len(sp.Edge) == 0 {
		return false, fmt.Errorf("%w: %s has no entrypoints (edge: in berth.yaml), so its load balancer requires no origin secret", ErrRefused, sp.App)
	}
	ctx, _, unlock, err := e.lock(ctx, "edge rotate-secret")
	if err != nil {
		return false, err
	}
	defer unlock()
	in, err := e.findInfra(ctx)
	if err != nil {
		return false, err
	}
	// accept changes only the secret's values on the live rules berth
	// made, whatever berth.yaml says now: a rule the file no longer has, or
	// hosts not deployed yet, are the next deploy's to change.
	accept := func(ctx context.Context, values []string) error {
		live, _, err := e.rules(ctx, in)
		if err != nil || in.Listener == "" {
			return err
		}
		ours := map[string]string{}
		for k, r := range live {
			ours[r.ARN] = k
		}
		var marker *string
		for {
			out, err := e.c.ELB.DescribeRules(ctx, &elb.DescribeRulesInput{ListenerArn: aws.String(in.Listener), Marker: marker})
			if err != nil {
				return fmt.Errorf("read the rules of %s: %w", e.lbName(), err)
			}
			for _, r := range out.Rules {
				key, ok := ours[aws.ToString(r.RuleArn)]
				if !ok {
					continue
				}
				conds, changed := withSecretValues(r.Conditions, values)
				if !changed {
					continue
				}
				if _, err := e.c.ELB.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: r.RuleArn, Conditions: conds}); err != nil {
					return fmt.Errorf("rule %s of %s: %w", key, e.lbName(), err)
				}
			}
			if marker = out.NextMarker; marker == nil {
				return nil
			}
		}
	}
	return e.cdnManager(sp, in, w).RotateOriginSecret(ctx, accept)
}

// servingSlot is a service's serving slot and its two target groups; ok is
// false while it has no active revision.
func (e *Env) servingSlot(ctx context.Context, in *infra, svc *spec.Service) (Slot, map[Slot]string, bool, error) {
	revs, err := e.state.Revisions(ctx, svc.Name)
	if err != nil {
		return "", nil, false, err
	}
	active := activeOf(revs)
	if active == nil || active.Slot == "" {
		return "", nil, false, nil
	}
	tgs := map[Slot]string{}
	for _, s := range []Slot{SlotA, SlotB} {
		if tgs[s], err = e.targetGroup(ctx, in, svc, s); err != nil {
			return "", nil, false, err
		}
	}
	return Slot(active.Slot), tgs, true, nil
}

// deployEdge runs after a deploy's services switched: the HTTP services
// not deployed now get their rules as the spec wants them (the edge:
// rule, the secret condition or its removal) on their serving slot, and
// each entrypoint's distribution is applied.
func (e *Env) deployEdge(ctx context.Context, in *infra, sp *spec.Spec, deployed []string, p progress) error {
	live, _, err := e.rules(ctx, in)
	if err != nil {
		return err
	}
	had := false
	for k := range live {
		had = had || strings.HasPrefix(k, "edge:")
	}
	if len(sp.Edge) == 0 && !had {
		return nil
	}
	for _, n := range sp.ServiceOrder {
		svc := sp.Services[n]
		if svc == nil || svc.Port == 0 || slices.Contains(deployed, n) {
			continue
		}
		slot, tgs, ok, err := e.servingSlot(ctx, in, svc)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if _, err := e.route(ctx, in, sp, n, tgs, slot); err != nil {
			return err
		}
	}
	if len(sp.Edge) == 0 {
		p.phase("edge", "%s: no entrypoints: the load balancer answers requests without the origin secret again", e.what())
		return nil
	}
	return e.applyEdge(ctx, in, sp, p)
}

// applyEdge applies each entrypoint's distribution of sp, printing what
// CloudFront does not carry and the certificate's validation records.
func (e *Env) applyEdge(ctx context.Context, in *infra, sp *spec.Spec, p progress) error {
	m := e.cdnManager(sp, in, &phaseWriter{p: p, phase: "edge"})
	for _, name := range sp.EdgeOrder {
		if sp.Edge[name] == nil {
			continue
		}
		res, err := m.Apply(ctx, name)
		if err != nil {
			return err
		}
		for _, u := range res.Unmapped {
			p.phase("edge", "%s", u)
		}
		if c := res.Certificate; c != nil && c.Status != cdn.CertIssued {
			for _, r := range c.Records {
				p.phase("edge", "entrypoint %s: certificate %s is %s; create this DNS record to validate it: %s %s %s", name, c.ARN, c.Status, r.Name, r.Type, r.Value)
			}
			p.phase("edge", "entrypoint %s: until the certificate is issued, the distribution answers at https://%s only", name, res.DomainName)
		}
		if !res.Changed {
			p.phase("edge", "entrypoint %s: distribution %s (%s) unchanged", name, res.DistributionID, res.DomainName)
		}
	}
	return nil
}

// EdgeList reads the live distribution of each entrypoint of sp.
func (e *Env) EdgeList(ctx context.Context, sp *spec.Spec) ([]Entrypoint, error) {
	in, err := e.findInfra(ctx)
	if err != nil {
		return nil, err
	}
	ds, err := e.cdnManager(sp, in, nil).List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Entrypoint, 0, len(ds))
	for _, d := range ds {
		ep, err := e.entrypointOf(ctx, in, sp, d)
		if err != nil {
			return nil, err
		}
		out = append(out, ep)
	}
	return out, nil
}

// EdgeShow reads an entrypoint's live distribution.
func (e *Env) EdgeShow(ctx context.Context, sp *spec.Spec, name string) (Entrypoint, error) {
	in, err := e.findInfra(ctx)
	if err != nil {
		return Entrypoint{}, err
	}
	d, err := e.cdnManager(sp, in, nil).Show(ctx, name)
	if err != nil {
		return Entrypoint{}, edgeError(err)
	}
	return e.entrypointOf(ctx, in, sp, d)
}

// EdgeSwitch moves all of an entrypoint's traffic to the origin to: the
// distribution's default origin (cdn.Switch, which waits until it is
// Deployed), and any ALB shift between services ended.
func (e *Env) EdgeSwitch(ctx context.Context, sp *spec.Spec, name, to string, w io.Writer) (Entrypoint, error) {
	ctx, _, unlock, err := e.lock(ctx, "edge switch")
	if err != nil {
		return Entrypoint{}, err
	}
	defer unlock()
	in, err := e.findInfra(ctx)
	if err != nil {
		return Entrypoint{}, err
	}
	if err := e.originReady(ctx, in, sp, to); err != nil {
		return Entrypoint{}, err
	}
	d, err := e.cdnManager(sp, in, w).Switch(ctx, name, to)
	if err != nil {
		return Entrypoint{}, edgeError(err)
	}
	if err := e.endALBShifts(ctx, in, sp); err != nil {
		return Entrypoint{}, err
	}
	return e.entrypointOf(ctx, in, sp, d)
}

// EdgeShift sends percent of an entrypoint's traffic to origin: between
// two berth services by the ALB's weights on the edge:ACTIVE rule, else by
// a CloudFront continuous-deployment staging distribution (at most
// cdn.MaxStagingPercent); the result says which.
func (e *Env) EdgeShift(ctx context.Context, sp *spec.Spec, name, origin string, percent float64, w io.Writer) (Shifted, error) {
	ctx, _, unlock, err := e.lock(ctx, "edge shift")
	if err != nil {
		return Shifted{}, err
	}
	defer unlock()
	in, err := e.findInfra(ctx)
	if err != nil {
		return Shifted{}, err
	}
	if err := e.originReady(ctx, in, sp, origin); err != nil {
		return Shifted{}, err
	}
	m := e.cdnManager(sp, in, w)
	s, err := m.Shift(ctx, name, origin, percent)
	if err != nil {
		return Shifted{}, edgeError(err)
	}
	if s.Via == cdn.ViaALB {
		if err := e.shiftALB(ctx, in, sp, s.ALB); err != nil {
			return Shifted{}, err
		}
	}
	d, err := m.Show(ctx, name)
	if err != nil {
		return Shifted{}, err
	}
	ep, err := e.entrypointOf(ctx, in, sp, d)
	if err != nil {
		return Shifted{}, err
	}
	return Shifted{Entrypoint: ep, Shift: s}, nil
}

// EdgeInvalidate removes paths from an entrypoint's CloudFront caches.
func (e *Env) EdgeInvalidate(ctx context.Context, sp *spec.Spec, name string, paths []string) (*cdn.Invalidation, error) {
	inv, err := e.cdnManager(sp, &infra{}, nil).Invalidate(ctx, name, paths)
	return inv, edgeError(err)
}

// edgeError marks the errors about what the user asked as refusals.
func edgeError(err error) error {
	if errors.Is(err, cdn.ErrShareRefused) || errors.Is(err, cdn.ErrUnknownEntrypoint) || errors.Is(err, cdn.ErrOrigin) {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return err
}

// originReady refuses a berth service the ALB cannot send to: not in the
// spec, without a port, or never deployed in this environment.
func (e *Env) originReady(ctx context.Context, in *infra, sp *spec.Spec, ref string) error {
	if !cdn.IsService(ref) {
		return nil
	}
	svc := sp.Services[ref]
	if svc == nil || svc.Port == 0 {
		return fmt.Errorf("%w: %s is not an HTTP service of %s; name a service with a port, or a URL (https://...)", ErrRefused, ref, sp.App)
	}
	if _, _, ok, err := e.servingSlot(ctx, in, svc); err != nil || !ok {
		if err != nil {
			return err
		}
		return fmt.Errorf("%w: service %s has never been deployed to %s; run berth deploy --env %s %s first", ErrRefused, ref, e.Name, e.Name, ref)
	}
	return nil
}

// shiftALB rewrites the rule s.Rule (edge:FROM) to forward to FROM's and
// TO's serving target groups, weighted 100-p and p.
func (e *Env) shiftALB(ctx context.Context, in *infra, sp *spec.Spec, s *cdn.ALBShift) error {
	live, _, err := e.rules(ctx, in)
	if err != nil {
		return err
	}
	r, ok := live[s.Rule]
	if !ok {
		return fmt.Errorf("the load balancer has no rule %s yet; run berth deploy --env %s first", s.Rule, e.Name)
	}
	var groups []elbtypes.TargetGroupTuple
	pct := int32(math.Round(s.Percent))
	for _, x := range []struct {
		svc    string
		weight int32
	}{{s.From, 100 - pct}, {s.To, pct}} {
		svc := sp.Services[x.svc]
		slot, tgs, ok, err := e.servingSlot(ctx, in, svc)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: service %s has never been deployed to %s", ErrRefused, x.svc, e.Name)
		}
		groups = append(groups, elbtypes.TargetGroupTuple{TargetGroupArn: aws.String(tgs[slot]), Weight: aws.Int32(x.weight)})
	}
	_, err = e.c.ELB.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: aws.String(r.ARN), Actions: []elbtypes.Action{{
		Type: elbtypes.ActionTypeEnumForward, ForwardConfig: &elbtypes.ForwardActionConfig{TargetGroups: groups},
	}}})
	if err != nil {
		return fmt.Errorf("shift rule %s of %s: %w", s.Rule, e.lbName(), err)
	}
	return nil
}

// endALBShifts points every edge:SERVICE rule at its service's serving
// slot alone.
func (e *Env) endALBShifts(ctx context.Context, in *infra, sp *spec.Spec) error {
	live, _, err := e.rules(ctx, in)
	if err != nil {
		return err
	}
	for _, n := range sp.ServiceOrder {
		r, ok := live["edge:"+n]
		if !ok {
			continue
		}
		slot, tgs, ok, err := e.servingSlot(ctx, in, sp.Services[n])
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if _, err := e.c.ELB.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: aws.String(r.ARN), Actions: forward(tgs, slot)}); err != nil {
			return fmt.Errorf("end the shift on rule edge:%s of %s: %w", n, e.lbName(), err)
		}
	}
	return nil
}

// entrypointOf is d in the local edge's shape: its shares are the staging
// distribution's, or the ALB's weights on the active service's rule.
func (e *Env) entrypointOf(ctx context.Context, in *infra, sp *spec.Spec, d *cdn.Entrypoint) (Entrypoint, error) {
	out := Entrypoint{Entrypoint: api.Entrypoint{Name: d.Name, App: e.App, Hosts: []string{}, Origin: d.Active, Sticky: "none"}}
	if d.DistributionID != "" {
		out.Distribution = d
	}
	ep := sp.Edge[d.Name]
	if ep != nil {
		out.Hosts, out.SpecOrigin = slices.Clone(ep.Hosts), ep.Origin
	}
	if d.DomainName != "" {
		out.URLs = append(out.URLs, "https://"+d.DomainName)
		for _, h := range d.Aliases {
			out.URLs = append(out.URLs, "https://"+h)
		}
	}
	if d.Staging != nil && d.Staging.Enabled && d.Staging.Percent > 0 && ep != nil {
		o, err := e.stagingOrigin(ctx, ep, d.Staging.DomainName)
		if err != nil {
			return out, err
		}
		out.Shares = append(out.Shares, api.Share{Origin: o, Percent: d.Staging.Percent})
	}
	if cdn.IsService(d.Active) && in.Listener != "" {
		shares, err := e.albShares(ctx, in, sp, d.Active)
		if err != nil {
			return out, err
		}
		out.Shares = append(out.Shares, shares...)
	}
	return out, nil
}

// stagingOrigin is the origin the staging distribution at domain sends to.
func (e *Env) stagingOrigin(ctx context.Context, ep *spec.Entrypoint, domain string) (string, error) {
	id, err := cdn.DistributionByDomain(ctx, e.c.CloudFront, domain)
	if err != nil {
		return "", err
	}
	if id == "" {
		return "staging " + domain, nil
	}
	got, err := e.c.CloudFront.GetDistributionConfig(ctx, &cloudfront.GetDistributionConfigInput{Id: aws.String(id)})
	if err != nil {
		return "", fmt.Errorf("read staging distribution %s: %w", id, err)
	}
	dc := got.DistributionConfig
	if dc.DefaultCacheBehavior == nil || dc.Origins == nil {
		return "staging " + domain, nil
	}
	target := aws.ToString(dc.DefaultCacheBehavior.TargetOriginId)
	for _, ref := range cdn.OriginRefs(ep) {
		if cdn.OriginID(ref) == target {
			return ref, nil
		}
	}
	for _, o := range dc.Origins.Items {
		if aws.ToString(o.Id) != target {
			continue
		}
		if o.CustomHeaders != nil {
			for _, h := range o.CustomHeaders.Items {
				if aws.ToString(h.HeaderName) == cdn.HeaderService {
					return aws.ToString(h.HeaderValue), nil
				}
			}
		}
		return "https://" + aws.ToString(o.DomainName) + aws.ToString(o.OriginPath), nil
	}
	return target, nil
}

// albShares are the other services the rule edge:ACTIVE forwards a share
// to (an ALB shift).
func (e *Env) albShares(ctx context.Context, in *infra, sp *spec.Spec, active string) ([]api.Share, error) {
	live, _, err := e.rules(ctx, in)
	if err != nil {
		return nil, err
	}
	r, ok := live["edge:"+active]
	if !ok {
		return nil, nil
	}
	got, err := e.c.ELB.DescribeRules(ctx, &elb.DescribeRulesInput{RuleArns: []string{r.ARN}})
	if err != nil {
		return nil, fmt.Errorf("read rule edge:%s of %s: %w", active, e.lbName(), err)
	}
	byName := map[string]string{}
	for _, n := range sp.ServiceOrder {
		for _, s := range []Slot{SlotA, SlotB} {
			byName[e.targetGroupName(n, s)] = n
		}
	}
	var out []api.Share
	for _, rule := range got.Rules {
		for _, a := range rule.Actions {
			if a.ForwardConfig == nil {
				continue
			}
			var arns []string
			weights := map[string]int32{}
			for _, g := range a.ForwardConfig.TargetGroups {
				if w := aws.ToInt32(g.Weight); w > 0 {
					arns = append(arns, aws.ToString(g.TargetGroupArn))
					weights[aws.ToString(g.TargetGroupArn)] = w
				}
			}
			if len(arns) < 2 {
				continue
			}
			tgs, err := e.c.ELB.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{TargetGroupArns: arns})
			if err != nil {
				return nil, fmt.Errorf("read the target groups of rule edge:%s: %w", active, err)
			}
			total := int32(0)
			for _, w := range weights {
				total += w
			}
			for _, tg := range tgs.TargetGroups {
				svc := byName[aws.ToString(tg.TargetGroupName)]
				if svc == "" || svc == active {
					continue
				}
				out = append(out, api.Share{Origin: svc, Percent: math.Round(float64(weights[aws.ToString(tg.TargetGroupArn)])*10000/float64(total)) / 100})
			}
		}
	}
	return out, nil
}

// destroyEdge removes the app's distributions in this environment: each
// staging distribution and continuous-deployment policy; each
// distribution berth created, disabled, waited for until Deployed and
// deleted with its ETag, then its cache policy. A distribution the spec
// adopts (distribution:) keeps serving: only berth's tags are removed, and
// its origins stay (its default behavior may target one of them).
func (e *Env) destroyEdge(ctx context.Context, sp *spec.Spec, step func(string, error) error) error {
	adopted := map[string]bool{}
	if sp != nil {
		for _, ep := range sp.Edge {
			if ep != nil && ep.Distribution != "" {
				adopted[ep.Distribution] = true
			}
		}
	}
	type found struct{ id, arn, comment string }
	var mine, staging []found
	p := cloudfront.NewListDistributionsPaginator(e.c.CloudFront, &cloudfront.ListDistributionsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return step("CloudFront distributions", fmt.Errorf("list them: %w", err))
		}
		if page.DistributionList == nil {
			break
		}
		for _, d := range page.DistributionList.Items {
			if aws.ToBool(d.Staging) {
				// A staging copy carries its primary's comment, not its tags.
				staging = append(staging, found{aws.ToString(d.Id), aws.ToString(d.ARN), aws.ToString(d.Comment)})
				continue
			}
			// Only berth's own and the spec's adopted ones are candidates:
			// no tag read per distribution of the account.
			if !strings.HasPrefix(aws.ToString(d.Comment), cdn.CommentPrefix) && !adopted[aws.ToString(d.Id)] {
				continue
			}
			tags, err := e.c.CloudFront.ListTagsForResource(ctx, &cloudfront.ListTagsForResourceInput{Resource: d.ARN})
			if c := apiCode(err); c == "NoSuchResource" || c == "NoSuchDistribution" {
				continue
			}
			if err != nil {
				return step("CloudFront distribution "+aws.ToString(d.Id), fmt.Errorf("read its tags: %w", err))
			}
			got := map[string]string{}
			if tags.Tags != nil {
				for _, t := range tags.Tags.Items {
					got[aws.ToString(t.Key)] = aws.ToString(t.Value)
				}
			}
			if got[cdn.TagApp] == e.App && got[cdn.TagEnv] == e.Name {
				mine = append(mine, found{aws.ToString(d.Id), aws.ToString(d.ARN), aws.ToString(d.Comment)})
			}
		}
	}
	for _, d := range mine {
		if err := e.detachStaging(ctx, d.id, step); err != nil {
			return err
		}
		if adopted[d.id] || !strings.HasPrefix(d.comment, cdn.CommentPrefix) {
			_, err := e.c.CloudFront.UntagResource(ctx, &cloudfront.UntagResourceInput{Resource: aws.String(d.arn),
				TagKeys: &cftypes.TagKeys{Items: []string{cdn.TagApp, cdn.TagEnv, cdn.TagEntrypoint}}})
			if err := step("berth's tags from adopted CloudFront distribution "+d.id+" (it keeps serving)", err); err != nil {
				return err
			}
			continue
		}
		policy, err := e.deleteDistribution(ctx, d.id)
		if err := step("CloudFront distribution "+d.id, err); err != nil {
			return err
		}
		// A staging copy left by a shift that a switch ended.
		for _, sd := range staging {
			if sd.comment != d.comment {
				continue
			}
			_, err := e.deleteDistribution(ctx, sd.id)
			if err := step("staging distribution "+sd.id, err); err != nil {
				return err
			}
		}
		if policy != "" {
			err := e.deleteCachePolicy(ctx, policy)
			if err := step("cache policy "+policy, err); err != nil {
				return err
			}
		}
	}
	return nil
}

// detachStaging ends a continuous deployment on distribution id: the
// policy detached and deleted, the staging distribution deleted.
func (e *Env) detachStaging(ctx context.Context, id string, step func(string, error) error) error {
	got, err := e.c.CloudFront.GetDistributionConfig(ctx, &cloudfront.GetDistributionConfigInput{Id: aws.String(id)})
	if err != nil {
		return step("CloudFront distribution "+id, fmt.Errorf("read it: %w", err))
	}
	pid := aws.ToString(got.DistributionConfig.ContinuousDeploymentPolicyId)
	if pid == "" {
		return nil
	}
	pol, err := e.c.CloudFront.GetContinuousDeploymentPolicy(ctx, &cloudfront.GetContinuousDeploymentPolicyInput{Id: aws.String(pid)})
	if err != nil && apiCode(err) != "NoSuchContinuousDeploymentPolicy" {
		return step("continuous deployment policy "+pid, err)
	}
	if err := e.updateDistribution(ctx, id, func(dc *cftypes.DistributionConfig) bool {
		dc.ContinuousDeploymentPolicyId = aws.String("")
		return true
	}); err != nil {
		return step("continuous deployment policy "+pid+" from "+id, err)
	}
	if pol == nil {
		return nil
	}
	_, err = e.c.CloudFront.DeleteContinuousDeploymentPolicy(ctx, &cloudfront.DeleteContinuousDeploymentPolicyInput{Id: aws.String(pid), IfMatch: pol.ETag})
	if err := step("continuous deployment policy "+pid, ignore(err, apiCode(err) == "NoSuchContinuousDeploymentPolicy")); err != nil {
		return err
	}
	cfg := pol.ContinuousDeploymentPolicy.ContinuousDeploymentPolicyConfig
	if cfg == nil || cfg.StagingDistributionDnsNames == nil {
		return nil
	}
	for _, domain := range cfg.StagingDistributionDnsNames.Items {
		sid, err := cdn.DistributionByDomain(ctx, e.c.CloudFront, domain)
		if err != nil || sid == "" {
			if err := step("staging distribution "+domain, err); err != nil {
				return err
			}
			continue
		}
		_, err = e.deleteDistribution(ctx, sid)
		if err := step("staging distribution "+sid, err); err != nil {
			return err
		}
	}
	return nil
}

// updateDistribution is UpdateDistribution with the ETag just read,
// read again and retried when someone changed it meanwhile.
func (e *Env) updateDistribution(ctx context.Context, id string, mutate func(*cftypes.DistributionConfig) bool) error {
	for attempt := 1; ; attempt++ {
		got, err := e.c.CloudFront.GetDistributionConfig(ctx, &cloudfront.GetDistributionConfigInput{Id: aws.String(id)})
		if err != nil {
			return err
		}
		if !mutate(got.DistributionConfig) {
			return nil
		}
		_, err = e.c.CloudFront.UpdateDistribution(ctx, &cloudfront.UpdateDistributionInput{Id: aws.String(id), IfMatch: got.ETag, DistributionConfig: got.DistributionConfig})
		var stale *cftypes.PreconditionFailed
		if errors.As(err, &stale) && attempt < cdn.DefaultUpdateAttempts {
			continue
		}
		return err
	}
}

// deleteDistribution disables a distribution, waits until that is
// Deployed, and deletes it with its ETag (CloudFront deletes only a
// disabled, deployed distribution). It returns its cache policy's ID when
// berth named it.
func (e *Env) deleteDistribution(ctx context.Context, id string) (string, error) {
	policy := ""
	err := e.updateDistribution(ctx, id, func(dc *cftypes.DistributionConfig) bool {
		if b := dc.DefaultCacheBehavior; b != nil {
			policy = aws.ToString(b.CachePolicyId)
		}
		if !aws.ToBool(dc.Enabled) {
			return false
		}
		dc.Enabled = aws.Bool(false)
		return true
	})
	if apiCode(err) == "NoSuchDistribution" {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("disable it: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, cdn.DefaultDeployTimeout)
	defer cancel()
	var etag *string
	err = poll(wctx, cdn.DefaultPollInterval, func() error {
		out, err := e.c.CloudFront.GetDistribution(wctx, &cloudfront.GetDistributionInput{Id: aws.String(id)})
		if err != nil {
			return err
		}
		if aws.ToString(out.Distribution.Status) != "Deployed" {
			return errNotReady
		}
		etag = out.ETag
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("wait until it is disabled (Deployed): %w", err)
	}
	_, err = e.c.CloudFront.DeleteDistribution(ctx, &cloudfront.DeleteDistributionInput{Id: aws.String(id), IfMatch: etag})
	if err != nil && apiCode(err) != "NoSuchDistribution" {
		return "", fmt.Errorf("delete it: %w", err)
	}
	return policy, nil
}

// deleteCachePolicy deletes a cache policy berth made (its name begins
// with berth-APP-ENV-); a managed or foreign one is left.
func (e *Env) deleteCachePolicy(ctx context.Context, id string) error {
	got, err := e.c.CloudFront.GetCachePolicy(ctx, &cloudfront.GetCachePolicyInput{Id: aws.String(id)})
	if apiCode(err) == "NoSuchCachePolicy" {
		return nil
	}
	if err != nil {
		return err
	}
	cfg := got.CachePolicy.CachePolicyConfig
	if cfg == nil || !strings.HasPrefix(aws.ToString(cfg.Name), "berth-"+e.App+"-"+e.Name+"-") {
		return nil
	}
	_, err = e.c.CloudFront.DeleteCachePolicy(ctx, &cloudfront.DeleteCachePolicyInput{Id: aws.String(id), IfMatch: got.ETag})
	return ignore(err, apiCode(err) == "NoSuchCachePolicy")
}

// withSecretValues is a rule's conditions as read, with the origin
// secret's condition requiring values instead; changed is false when the
// rule has no such condition. The legacy Values of a condition with a
// typed config are dropped, as ModifyRule takes one or the other.
func withSecretValues(conds []elbtypes.RuleCondition, values []string) (out []elbtypes.RuleCondition, changed bool) {
	for _, c := range conds {
		if h := c.HttpHeaderConfig; h != nil && aws.ToString(h.HttpHeaderName) == cdn.HeaderOriginSecret {
			out = append(out, cdn.SecretCondition(values...))
			changed = true
			continue
		}
		if c.HostHeaderConfig != nil || c.PathPatternConfig != nil || c.HttpHeaderConfig != nil ||
			c.QueryStringConfig != nil || c.HttpRequestMethodConfig != nil || c.SourceIpConfig != nil {
			c.Values = nil
		}
		out = append(out, c)
	}
	return out, changed
}
