package awsenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/aws/awsstate"
	"github.com/berth-dev/berth/internal/aws/cdn"
	"github.com/berth-dev/berth/internal/aws/fargate"
	"github.com/berth-dev/berth/internal/spec"
)

// The move carries a service between App Runner and Fargate behind the
// same CloudFront entrypoints, with no DNS change:
//
//	to fargate    deploy on Fargate (the spec without apprunner:, healthy
//	              behind the ALB) ─▶ each entrypoint whose origin is the
//	              App Runner URL (or the service) switched to the service
//	              on the ALB ─▶ guard: the serving target group's health
//	              probed; above the error rate, switched back, the Fargate
//	              slot stopped, App Runner serving ─▶ App Runner paused
//	              (kept for rollback), the records say Fargate
//	to apprunner  App Runner resumed, RUNNING ─▶ entrypoints switched to
//	              its URL ─▶ guard: the App Runner service's state probed
//	              ─▶ the Fargate slots scaled to 0, the records say App
//	              Runner
//
// The guard (guard.go) watches two things for --guard: the new origin's
// health, sampled every GuardPoll (the target group's targets, or App
// Runner's state), and its answers, from CloudWatch (the share of 5XX in
// the requests since the switch). Either above MaxErrorRate switches
// back. berth.yaml (the apprunner: line, the entrypoints' origins) is
// the CLI's to rewrite, from the Moved result.

// Move targets.
const (
	MoveToFargate   = "fargate"
	MoveToAppRunner = "apprunner"
)

// Move defaults.
const (
	DefaultGuard        = 2 * time.Minute
	DefaultMaxErrorRate = 0.1
)

// MoveOptions are a move's choices.
type MoveOptions struct {
	// Guard is how long errors are watched after the switch (0:
	// DefaultGuard).
	Guard time.Duration
	// GuardPoll is how often the guard probes (0: Guard/10, at most 10s).
	GuardPoll time.Duration
	// MaxErrorRate is the share of failed probes (0-1) above which the
	// guard switches back (0: DefaultMaxErrorRate).
	MaxErrorRate float64
	// Images overrides the service's image for the Fargate deploy
	// (--image web=shop-web:1.5).
	Images map[string]string
}

// Moved is what a move changed, for the CLI to carry into berth.yaml.
type Moved struct {
	Service string `json:"service"`
	To      string `json:"to"`
	// AppRunnerARN is the App Runner service (paused after a move to
	// Fargate, serving after one to App Runner).
	AppRunnerARN string `json:"apprunner_arn"`
	// AppRunnerURL is its default domain's URL.
	AppRunnerURL string `json:"apprunner_url"`
	// Entrypoints are the entrypoints switched, each now on Origin.
	Entrypoints []string `json:"entrypoints"`
	// Origin is the entrypoints' origin now: the service or the URL.
	Origin string `json:"origin"`
	// Revision is the service's active revision now.
	Revision int `json:"revision"`
}

// Move moves service to to (MoveToFargate or MoveToAppRunner). The result
// message is the stream's; moved is set when the move completed.
func (e *Env) Move(ctx context.Context, sp *spec.Spec, service, to string, opts MoveOptions, out func(api.Message)) (api.Message, *Moved) {
	p := progress(out)
	if opts.Guard <= 0 {
		opts.Guard = DefaultGuard
	}
	if opts.MaxErrorRate <= 0 {
		opts.MaxErrorRate = DefaultMaxErrorRate
	}
	if opts.GuardPoll <= 0 {
		opts.GuardPoll = min(max(opts.Guard/10, 100*time.Millisecond), 10*time.Second)
	}
	svc := sp.Services[service]
	if svc == nil {
		return failure(fmt.Errorf("%w: %s has no service %q (services: %s)", ErrRefused, sp.File, service, strings.Join(sp.ServiceOrder, ", "))), nil
	}
	if svc.Port == 0 {
		return failure(fmt.Errorf("%w: service %s has no port: only an HTTP service behind an entrypoint moves", ErrRefused, service)), nil
	}
	switch to {
	case MoveToFargate:
		return e.moveToFargate(ctx, sp, svc, opts, p)
	case MoveToAppRunner:
		return e.moveToAppRunner(ctx, sp, svc, opts, p)
	}
	return failure(fmt.Errorf("%w: --to %q: write --to fargate or --to apprunner", ErrRefused, to)), nil
}

// onFargate is sp with service's apprunner: removed.
func onFargate(sp *spec.Spec, service string) *spec.Spec {
	out := *sp
	out.Services = map[string]*spec.Service{}
	for n, s := range sp.Services {
		out.Services[n] = s
	}
	svc := *sp.Services[service]
	svc.AppRunner = ""
	out.Services[service] = &svc
	return &out
}

// sameURL reports whether an origin reference names url.
func sameURL(ref, url string) bool {
	return url != "" && strings.TrimRight(ref, "/") == strings.TrimRight(url, "/")
}

func (e *Env) moveToFargate(ctx context.Context, sp *spec.Spec, svc *spec.Service, opts MoveOptions, p progress) (api.Message, *Moved) {
	if !isAppRunner(svc) {
		return failure(fmt.Errorf("%w: service %s has no apprunner: in %s: it runs on Fargate already", ErrRefused, svc.Name, sp.File)), nil
	}
	// What Fargate cannot run as the spec says is refused before anything.
	if errs := fargate.Check(onFargate(sp, svc.Name), e.Name); len(errs) > 0 {
		return failure(fmt.Errorf("%w: %s cannot run on Fargate as berth.yaml says; fix it, then move again: %w", ErrRefused, svc.Name, errors.Join(errs...))), nil
	}
	// One lock from the deploy to the end: no other berth acts on the app
	// between the Fargate deploy and the switch.
	ctx, l, unlock, err := e.lock(ctx, "move")
	if err != nil {
		return failure(err), nil
	}
	defer unlock()
	arn := svc.AppRunner
	r := e.runner(svc.Name)
	st, err := r.Status(ctx, arn)
	if err != nil {
		return failure(err), nil
	}
	if st.State != "RUNNING" {
		return failure(fmt.Errorf("%w: App Runner service %s is %s; run berth resume --env %s %s first, so the entrypoint can fall back to it", ErrRefused, arn, st.State, e.Name, svc.Name)), nil
	}
	var eps []string
	for _, n := range sp.EdgeOrder {
		if ep := sp.Edge[n]; ep != nil && (sameURL(ep.Origin, st.URL) || ep.Origin == svc.Name) {
			eps = append(eps, n)
		}
	}
	before, err := e.state.Revisions(ctx, svc.Name)
	if err != nil {
		return failure(err), nil
	}
	arRev := activeOf(before)
	if arRev == nil {
		return failure(fmt.Errorf("%w: service %s has no active revision in %s; run berth import apprunner --env %s %s first", ErrRefused, svc.Name, e.Name, e.Name, arn)), nil
	}

	// (a) The service on Fargate, healthy behind the ALB; the entrypoints
	// still send to App Runner.
	p.phase("move", "%s: deploying on Fargate beside App Runner service %s", svc.Name, arn)
	fsp := onFargate(sp, svc.Name)
	for _, w := range fargate.Warnings(fsp) {
		p.phase("prepare", "%s", w)
	}
	res := e.deployLocked(ctx, l, fsp, []string{svc.Name}, opts.Images, p)
	if !res.OK {
		res.Error = fmt.Sprintf("move of %s to Fargate stopped, App Runner keeps serving: %s", svc.Name, res.Error)
		return res, nil
	}
	num := res.Deployed[0].Revision

	in, err := e.findInfra(ctx)
	if err != nil {
		return failure(err), nil
	}
	fsvc := fsp.Services[svc.Name]
	slot, tgs, ok, err := e.servingSlot(ctx, in, fsvc)
	if err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("service %s has no serving slot after its deploy", svc.Name)
		}
		return failure(err), nil
	}
	// undo stops the Fargate slot and makes the App Runner revision active
	// again: what serves is App Runner's.
	undo := func(why string) {
		uctx := context.WithoutCancel(ctx)
		if cur, err := e.describeSlot(uctx, in.Cluster, svc.Name, slot); err == nil && cur.Exists {
			_ = e.runSlot(uctx, in, fsvc, slot, cur.TaskDefinition, "", 0, num)
		}
		_ = e.state.UpdateRevisionStates(uctx,
			awsstate.StateChange{Service: svc.Name, Number: num, From: awsstate.StateActive, To: awsstate.StateFailed, Reason: why},
			awsstate.StateChange{Service: svc.Name, Number: arRev.Number, From: awsstate.StatePrevious, To: awsstate.StateActive, Reason: "App Runner serves again: " + why})
		_, _ = e.state.AddEvent(uctx, eventOf(svc.Name, "move-failed", fmt.Sprintf("move to Fargate (revision %d) undone: %s; App Runner %s serves", num, why, arn)))
	}

	// (b) The entrypoints switched to the service on the ALB (the 5XX
	// count read first: the guard counts those after the switch).
	base, answers := readBaseline(ctx, e.albErrors(in.LB, tgs[slot]), svc.Name, p)
	m := e.cdnManager(fsp, in, &phaseWriter{p: p, phase: "switch"})
	var switched []string
	back := func() error {
		for _, n := range switched {
			if _, err := m.Switch(context.WithoutCancel(ctx), n, st.URL); err != nil {
				return fmt.Errorf("entrypoint %s: %w", n, err)
			}
			p.phase("switch", "entrypoint %s: back on App Runner %s", n, st.URL)
		}
		return nil
	}
	for _, n := range eps {
		if _, err := m.Switch(ctx, n, svc.Name); err != nil {
			berr := back()
			why := fmt.Sprintf("switch of entrypoint %s failed: %v", n, err)
			if berr != nil {
				return failure(fmt.Errorf("%s, and switching back failed too (%v); run berth edge switch --env %s %s --to %s", why, berr, e.Name, n, st.URL)), nil
			}
			undo(why)
			return failure(fmt.Errorf("move of %s to Fargate undone, App Runner serves: %s", svc.Name, why)), nil
		}
		switched = append(switched, n)
		p.phase("switch", "entrypoint %s: default origin is %s on the load balancer (no DNS change)", n, svc.Name)
	}

	// (c) The guard.
	probe := func(ctx context.Context) (bool, string, error) {
		return e.targetsHealthy(ctx, tgs[slot])
	}
	if why, err := e.guard(ctx, svc.Name, "target group "+e.targetGroupName(svc.Name, slot), opts, probe, answers, base, p); err != nil || why != "" {
		if err != nil {
			why = err.Error()
		}
		if berr := back(); berr != nil {
			return failure(fmt.Errorf("guard: %s, and switching back failed (%v); run berth edge switch --env %s ENTRYPOINT --to %s", why, berr, e.Name, st.URL)), nil
		}
		undo("guard: " + why)
		return failure(fmt.Errorf("move of %s to Fargate switched back by its guard, App Runner %s serves: %s", svc.Name, st.URL, why)), nil
	}

	// (d) App Runner paused, kept for rollback; the records.
	p.phase("pause", "%s: pausing App Runner service %s (kept: berth move --env %s %s --to apprunner returns to it)", svc.Name, arn, e.Name, svc.Name)
	if err := r.Pause(ctx, arn, &phaseWriter{p: p, phase: "pause"}); err != nil {
		return failure(fmt.Errorf("%s serves on Fargate, but pausing App Runner service %s failed: %w; run berth move again or pause it in the console", svc.Name, arn, err)), nil
	}
	_, _ = e.state.AddEvent(ctx, eventOf(svc.Name, "move", fmt.Sprintf("moved to Fargate (revision %d) from App Runner %s, now paused; entrypoints switched: %s", num, arn, orNone(switched))))
	p.phase("done", "%s: serves on Fargate (revision %d)", svc.Name, num)
	return api.Message{Kind: api.KindResult, Time: time.Now(), OK: true, Deployed: res.Deployed},
		&Moved{Service: svc.Name, To: MoveToFargate, AppRunnerARN: arn, AppRunnerURL: st.URL, Entrypoints: switched, Origin: svc.Name, Revision: num}
}

func (e *Env) moveToAppRunner(ctx context.Context, sp *spec.Spec, svc *spec.Service, opts MoveOptions, p progress) (api.Message, *Moved) {
	if isAppRunner(svc) {
		return failure(fmt.Errorf("%w: service %s runs on App Runner already (apprunner: in %s)", ErrRefused, svc.Name, sp.File)), nil
	}
	ctx, l, unlock, err := e.lock(ctx, "move")
	if err != nil {
		return failure(err), nil
	}
	defer unlock()
	if err := e.settle(ctx, l, p); err != nil {
		return failure(err), nil
	}
	revs, err := e.state.Revisions(ctx, svc.Name)
	if err != nil {
		return failure(err), nil
	}
	cur := activeOf(revs)
	// The App Runner service: the latest revision that ran on one.
	arRev, arn := lastAppRunner(revs)
	if arRev == nil || cur == nil || cur.Slot == "" {
		return failure(fmt.Errorf("%w: service %s never ran on App Runner in %s before Fargate; import one with berth import apprunner --env %s ARN", ErrRefused, svc.Name, e.Name, e.Name)), nil
	}
	r := e.runner(svc.Name)
	st, err := r.Status(ctx, arn)
	if err != nil {
		return failure(err), nil
	}
	if st.State == "PAUSED" {
		p.phase("resume", "%s: resuming App Runner service %s", svc.Name, arn)
		if err := r.Resume(ctx, arn, &phaseWriter{p: p, phase: "resume"}); err != nil {
			return failure(fmt.Errorf("resume App Runner service %s: %w; Fargate keeps serving", arn, err)), nil
		}
		if st, err = r.Status(ctx, arn); err != nil {
			return failure(err), nil
		}
	}
	if st.State != "RUNNING" {
		return failure(fmt.Errorf("App Runner service %s is %s, not RUNNING; Fargate keeps serving", arn, st.State)), nil
	}
	in, err := e.findInfra(ctx)
	if err != nil {
		return failure(err), nil
	}
	base, answers := readBaseline(ctx, e.appRunnerErrors(arn), svc.Name, p)
	m := e.cdnManager(sp, in, &phaseWriter{p: p, phase: "switch"})
	var eps []string
	for _, n := range sp.EdgeOrder {
		if ep := sp.Edge[n]; ep != nil && (ep.Origin == svc.Name || sameURL(ep.Origin, st.URL)) {
			eps = append(eps, n)
		}
	}
	var switched []string
	back := func() error {
		for _, n := range switched {
			if _, err := m.Switch(context.WithoutCancel(ctx), n, svc.Name); err != nil {
				return fmt.Errorf("entrypoint %s: %w", n, err)
			}
			p.phase("switch", "entrypoint %s: back on %s on the load balancer", n, svc.Name)
		}
		return nil
	}
	for _, n := range eps {
		if _, err := m.Switch(ctx, n, st.URL); err != nil {
			if berr := back(); berr != nil {
				return failure(fmt.Errorf("switch of entrypoint %s failed (%v), and switching back failed too (%v)", n, err, berr)), nil
			}
			return failure(fmt.Errorf("move of %s to App Runner undone, Fargate serves: switch of entrypoint %s: %w", svc.Name, n, err)), nil
		}
		switched = append(switched, n)
		p.phase("switch", "entrypoint %s: default origin is App Runner %s (no DNS change)", n, st.URL)
	}
	probe := func(ctx context.Context) (bool, string, error) {
		s, err := r.Status(ctx, arn)
		if err != nil {
			return false, "", err
		}
		return s.State == "RUNNING", "App Runner service is " + s.State, nil
	}
	if why, err := e.guard(ctx, svc.Name, "App Runner service "+arn, opts, probe, answers, base, p); err != nil || why != "" {
		if err != nil {
			why = err.Error()
		}
		if berr := back(); berr != nil {
			return failure(fmt.Errorf("guard: %s, and switching back failed (%v)", why, berr)), nil
		}
		return failure(fmt.Errorf("move of %s to App Runner switched back by its guard, Fargate serves: %s", svc.Name, why)), nil
	}

	// The Fargate slots scaled to 0; the App Runner revision active again.
	for _, s := range []Slot{SlotA, SlotB} {
		ss, err := e.describeSlot(ctx, in.Cluster, svc.Name, s)
		if err != nil {
			return failure(err), nil
		}
		if ss.Exists && ss.Desired > 0 {
			p.phase("drain", "%s: stopping the Fargate tasks of slot %s", svc.Name, s)
			if err := e.runSlot(ctx, in, svc, s, ss.TaskDefinition, "", 0, cur.Number); err != nil {
				return failure(err), nil
			}
		}
	}
	ch := []awsstate.StateChange{{Service: svc.Name, Number: cur.Number, From: awsstate.StateActive, To: awsstate.StateRetired, Reason: "moved to App Runner"}}
	if arRev.State != awsstate.StateActive {
		ch = append(ch, awsstate.StateChange{Service: svc.Name, Number: arRev.Number, From: arRev.State, To: awsstate.StateActive, Reason: "moved back from Fargate"})
	}
	for _, x := range revs {
		if x.State == awsstate.StatePrevious && x.Number != arRev.Number {
			ch = append(ch, awsstate.StateChange{Service: svc.Name, Number: x.Number, From: awsstate.StatePrevious, To: awsstate.StateRetired, Reason: "moved to App Runner"})
		}
	}
	if err := e.state.UpdateRevisionStates(ctx, ch...); err != nil {
		return failure(err), nil
	}
	_, _ = e.state.AddEvent(ctx, eventOf(svc.Name, "move", fmt.Sprintf("moved back to App Runner %s (revision %d) from Fargate (revision %d, stopped); entrypoints switched: %s", arn, arRev.Number, cur.Number, orNone(switched))))
	p.phase("done", "%s: serves on App Runner (revision %d)", svc.Name, arRev.Number)
	return api.Message{Kind: api.KindResult, Time: time.Now(), OK: true, Deployed: []api.Deploy{{Service: svc.Name, Revision: arRev.Number, URLs: []string{st.URL}}}},
		&Moved{Service: svc.Name, To: MoveToAppRunner, AppRunnerARN: arn, AppRunnerURL: st.URL, Entrypoints: switched, Origin: st.URL, Revision: arRev.Number}
}

// targetsHealthy probes a target group: ok when it has targets and all
// are healthy; detail counts them.
func (e *Env) targetsHealthy(ctx context.Context, tg string) (bool, string, error) {
	th, err := e.c.ELB.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})
	if err != nil {
		return false, "", fmt.Errorf("read the health of target group %s: %w", tg, err)
	}
	healthy := 0
	for _, t := range th.TargetHealthDescriptions {
		if t.TargetHealth != nil && t.TargetHealth.State == elbtypes.TargetHealthStateEnumHealthy {
			healthy++
		}
	}
	n := len(th.TargetHealthDescriptions)
	return n > 0 && healthy == n, fmt.Sprintf("%d of %d targets healthy", healthy, n), nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// DeleteAppRunner deletes the App Runner service a service moved to
// Fargate from (paused by the move, kept for the way back), once nothing
// of the spec sends to it: the service must serve on Fargate and no
// entrypoint may name the App Runner URL. It returns the ARN deleted.
func (e *Env) DeleteAppRunner(ctx context.Context, sp *spec.Spec, service string, w io.Writer) (string, error) {
	svc := sp.Services[service]
	if svc == nil {
		return "", fmt.Errorf("%w: %s has no service %q (services: %s)", ErrRefused, sp.File, service, strings.Join(sp.ServiceOrder, ", "))
	}
	if isAppRunner(svc) {
		return "", fmt.Errorf("%w: service %s runs on App Runner (apprunner: in %s); move it first: berth move --env %s %s --to fargate --delete-apprunner", ErrRefused, service, sp.File, e.Name, service)
	}
	ctx, _, unlock, err := e.lock(ctx, "delete apprunner")
	if err != nil {
		return "", err
	}
	defer unlock()
	revs, err := e.state.Revisions(ctx, service)
	if err != nil {
		return "", err
	}
	cur := activeOf(revs)
	_, arn := lastAppRunner(revs) // the service a move left
	if cur == nil || cur.Slot == "" || arn == "" {
		return "", fmt.Errorf("%w: service %s has no App Runner service to delete in %s: it never moved from App Runner to Fargate", ErrRefused, service, e.what())
	}
	r := e.runner(service)
	st, err := r.Status(ctx, arn)
	if err != nil {
		return "", err
	}
	for _, n := range sp.EdgeOrder {
		if ep := sp.Edge[n]; ep != nil && (sameURL(ep.Origin, st.URL) || slices.ContainsFunc(cdn.OriginRefs(ep), func(ref string) bool { return sameURL(ref, st.URL) })) {
			return "", fmt.Errorf("%w: entrypoint %s still names App Runner's URL %s; switch it and remove the URL from berth.yaml first", ErrRefused, n, st.URL)
		}
	}
	// And what CloudFront does now, whatever the file says: no live
	// distribution may still send to it, nor a shift be under way.
	in, err := e.findInfra(ctx)
	if err != nil {
		return "", err
	}
	m := e.cdnManager(sp, in, nil)
	for _, n := range sp.EdgeOrder {
		live, err := m.Show(ctx, n)
		if err != nil {
			continue // no distribution yet
		}
		if sameURL(live.Active, st.URL) || live.Staging != nil {
			return "", fmt.Errorf("%w: entrypoint %s's distribution %s still sends to App Runner or has a shift under way; berth edge switch --env %s %s --to %s first", ErrRefused, n, live.DistributionID, e.Name, n, service)
		}
	}
	fmt.Fprintf(w, "deleting App Runner service %s (the way back to it goes with it)\n", arn)
	if err := r.Delete(ctx, arn, w); err != nil {
		return "", err
	}
	_, _ = e.state.AddEvent(ctx, eventOf(service, "apprunner-deleted", fmt.Sprintf("App Runner service %s deleted; %s serves on Fargate (revision %d)", arn, service, cur.Number)))
	return arn, nil
}
