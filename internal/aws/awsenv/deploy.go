package awsenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/aws/awsstate"
	"github.com/berth-dev/berth/internal/aws/fargate"
	"github.com/berth-dev/berth/internal/aws/images"
	"github.com/berth-dev/berth/internal/spec"
)

// A deploy on AWS keeps the local engine's promise: the new revision's
// tasks run and are healthy before any traffic moves, the switch is one
// call per listener rule, and a failure before it leaves the previous
// revision serving and says why.
//
//	lock ─▶ check secrets ─▶ push images ─▶ register task definition
//	     ─▶ release (RunTask, exit 0) ─▶ idle slot: N tasks, healthy
//	     ─▶ switch (ModifyRule weights) ─▶ records ─▶ unlock
//
// The journal (awsstate.Op) records each step, so a deploy cut off (Ctrl-C,
// lost network, killed process) is settled by the next verb: a slot started
// but never switched to is scaled back to 0 and its revision marked failed.

// progress sends a deploy's phases and output lines to the caller.
type progress func(api.Message)

func (p progress) phase(ph, format string, args ...any) {
	if p != nil {
		p(api.Message{Kind: api.KindPhase, Time: time.Now(), Phase: ph, Text: fmt.Sprintf(format, args...)})
	}
}

// Deploy rolls out the services named (all when none) and answers the
// stream's result message, as the local daemon does. images overrides the
// image of a service (--image web=shop-web:1.5).
func (e *Env) Deploy(ctx context.Context, sp *spec.Spec, names []string, imgs map[string]string, out func(api.Message)) api.Message {
	p := progress(out)
	if len(names) == 0 {
		names = sp.ServiceOrder
	}
	for _, n := range names {
		if sp.Services[n] == nil {
			return failure(fmt.Errorf("%w: %s has no service %q (services: %s)", ErrRefused, sp.File, n, strings.Join(sp.ServiceOrder, ", ")))
		}
	}
	for _, w := range fargate.Warnings(sp) {
		p.phase("prepare", "%s", w)
	}
	ctx, l, unlock, err := e.lock(ctx, "deploy")
	if err != nil {
		return failure(err)
	}
	defer unlock()
	return e.deployLocked(ctx, l, sp, names, imgs, p)
}

// deployLocked is Deploy under the lock l (which a move holds through its
// deploy and its switch).
func (e *Env) deployLocked(ctx context.Context, l *awsstate.Lock, sp *spec.Spec, names []string, imgs map[string]string, p progress) api.Message {
	if err := e.settle(ctx, l, p); err != nil {
		return failure(err)
	}
	// What would refuse the deploy is found before anything is made.
	secrets := map[string]map[string]string{}
	var err error
	for _, n := range names {
		if isAppRunner(sp.Services[n]) {
			continue // App Runner reads its own secret references
		}
		if secrets[n], err = e.secretARNs(ctx, sp, sp.Services[n]); err != nil {
			return failure(err)
		}
	}
	done, names, err := e.deployAppRunners(ctx, l, sp, names, imgs, p)
	if err != nil {
		return failure(err)
	}
	if len(names) == 0 {
		if err := e.syncAppRunnerSchedules(ctx, sp, p); err != nil {
			return failure(err)
		}
		// Entrypoints in front of App Runner alone (URL origins): their
		// distributions, with whatever load balancer there is (none yet).
		if len(sp.Edge) > 0 {
			in, err := e.findInfra(ctx)
			if err != nil {
				return failure(err)
			}
			if err := e.applyEdge(ctx, in, sp, p); err != nil {
				return failure(err)
			}
		}
		return api.Message{Kind: api.KindResult, Time: time.Now(), OK: true, Deployed: done}
	}
	sp = onECS(sp)
	p.phase("prepare", "%s: %s", e.what(), "finding or making the app's resources in "+e.Region)
	in, err := e.ensureInfra(ctx)
	if err != nil {
		return failure(err)
	}
	if err := e.idleTimeout(ctx, in, sp); err != nil {
		return failure(err)
	}
	role, err := e.execRole(ctx)
	if err != nil {
		return failure(err)
	}
	// The tasks' own role (berth exec's channels), which every task
	// definition of this deploy names.
	if e.taskRoleARN, err = e.taskRole(ctx); err != nil {
		return failure(err)
	}
	for _, n := range names {
		num, err := e.deployService(ctx, l, in, role, sp, sp.Services[n], imgs[n], secrets[n], p)
		if err != nil {
			return failure(err)
		}
		done = append(done, api.Deploy{Service: n, Revision: num, URLs: e.urls(ctx, in, sp.Services[n])})
	}
	if err := e.syncSchedules(ctx, in, sp, p); err != nil {
		return failure(err)
	}
	if err := e.deployEdge(ctx, in, sp, names, p); err != nil {
		return failure(err)
	}
	if err := e.pruneRules(ctx, in, sp); err != nil {
		return failure(err)
	}
	return api.Message{Kind: api.KindResult, Time: time.Now(), OK: true, Deployed: done}
}

// failure is a stream's result for err.
func failure(err error) api.Message {
	m := api.Message{Kind: api.KindResult, Time: time.Now(), Error: err.Error()}
	var held *awsstate.HeldError
	switch {
	case errors.Is(err, ErrRefused):
		m.Code, m.Error = "invalid", strings.TrimPrefix(err.Error(), ErrRefused.Error()+": ")
	case errors.As(err, &held):
		m.Code = "busy"
	case errors.Is(err, awsstate.ErrNotFound):
		m.Code = "not_found"
	}
	return m
}

// urls are where a service answers: its domains, and the ALB's own
// address for the service its catch-all rule sends to (the app's first
// HTTP service). Every HTTP service also answers at SERVICE.APP.* on the
// ALB, once a DNS name of that shape points at it.
func (e *Env) urls(ctx context.Context, in *infra, svc *spec.Service) []string {
	if svc.Port == 0 {
		return nil
	}
	var out []string
	for _, d := range svc.Domains {
		out = append(out, "http://"+d)
	}
	if in.LBDNS != "" {
		if live, _, err := e.rules(ctx, in); err == nil && live["default"].Service == svc.Name {
			out = append(out, "http://"+in.LBDNS)
		}
	}
	return out
}

// journal steps of a deploy.
const (
	stepRegistered = "registered" // detail: the task definition ARN
	stepSlot       = "slot"       // detail: the slot started for the revision
	stepSwitching  = "switching"  // the rules began to move to the slot
	stepSwitched   = "switched"   // traffic moved to it
)

type slotStep struct {
	Service  string `json:"service"`
	Slot     Slot   `json:"slot"`
	Revision int    `json:"revision"`
}

// deployService rolls out one service: a new revision in its idle slot,
// switched to when healthy.
func (e *Env) deployService(ctx context.Context, l *awsstate.Lock, in *infra, role string, sp *spec.Spec, svc *spec.Service, image string, secrets map[string]string, p progress) (int, error) {
	revs, err := e.state.Revisions(ctx, svc.Name)
	if err != nil {
		return 0, err
	}
	active := activeOf(revs)
	num, err := e.state.NextRevision(ctx, svc.Name)
	if err != nil {
		return 0, err
	}
	specJSON, _ := json.Marshal(svc)
	rev := awsstate.Revision{Number: num, Service: svc.Name, State: awsstate.StateDeploying, Created: e.opts.Now(),
		By: l.Holder().String(), Spec: specJSON}
	rev.Slot = string(SlotA)
	if active != nil {
		rev.Slot = string(Slot(active.Slot).Other())
	}
	op := awsstate.Op{Kind: "deploy", Revisions: map[string]int{svc.Name: num}, Started: e.opts.Now()}
	// The journal first: a berth cut off between the two writes leaves a
	// journal naming a revision not written (skipped when settled), never
	// a revision "deploying" that no journal will settle.
	if err := l.PutOp(ctx, op); err != nil {
		return 0, err
	}
	if err := e.state.PutRevision(ctx, rev); err != nil {
		return 0, err
	}
	fail := func(err error) (int, error) {
		e.abandon(context.WithoutCancel(ctx), l, in, svc, rev, err, p)
		serving := "nothing served before it"
		if active != nil {
			serving = fmt.Sprintf("revision %d keeps serving", active.Number)
		}
		return 0, fmt.Errorf("deploy of %s revision %d failed; %s: %w", svc.Name, num, serving, err)
	}

	// Images: the service's and its sidecars', pushed and pinned by digest.
	td, err := e.taskDefinition(ctx, in, role, sp, svc, num, image, secrets, p)
	if err != nil {
		return fail(err)
	}
	rev.TaskDefinition, rev.Image = td.arn, td.image
	if err := e.state.PutRevision(ctx, rev); err != nil {
		return fail(err)
	}
	_ = op.Done(stepRegistered, td.arn, e.opts.Now())
	if err := l.PutOp(ctx, op); err != nil {
		return fail(err)
	}

	// The release command runs before any new task serves.
	if len(svc.Release) > 0 {
		p.phase("release", "%s: running release %s", svc.Name, strings.Join(svc.Release, " "))
		r := taskRun{Service: svc.Name, Kind: "release", Command: svc.Release, TaskDef: td.arn, Revision: num}
		t, err := e.startTask(ctx, in, r)
		if err != nil {
			return fail(err)
		}
		t, err = e.waitTask(ctx, in, t, r, p)
		if err != nil {
			return fail(err)
		}
		if t.State != api.TaskSucceeded {
			return fail(fmt.Errorf("release %s %s", strings.Join(svc.Release, " "), t.Message))
		}
	}

	// The idle slot runs the new revision; nothing routes to it yet.
	slot := Slot(rev.Slot)
	want := e.startCount(ctx, in.Cluster, svc, active)
	tgs := map[Slot]string{}
	if svc.Port > 0 {
		for _, s := range []Slot{SlotA, SlotB} {
			if tgs[s], err = e.targetGroup(ctx, in, svc, s); err != nil {
				return fail(err)
			}
		}
	}
	_ = op.Done(stepSlot, slotStep{Service: svc.Name, Slot: slot, Revision: num}, e.opts.Now())
	if err := l.PutOp(ctx, op); err != nil {
		return fail(err)
	}
	p.phase("start", "%s: starting %d task(s) of revision %d in slot %s", svc.Name, want, num, slot)
	if err := e.keepWarm(ctx, svc.Name, slot); err != nil {
		return fail(err)
	}
	if err := e.runSlot(ctx, in, svc, slot, td.arn, tgs[slot], want, num); err != nil {
		return fail(err)
	}
	wctx, cancel := context.WithTimeout(ctx, e.opts.DeployTimeout)
	err = e.waitSlot(wctx, in, svc, slot, td.arn, tgs[slot], want, func(s string) { p.phase("start", "%s: %s", svc.Name, s) })
	timedOut := wctx.Err() != nil && ctx.Err() == nil
	cancel()
	if err != nil {
		if timedOut {
			err = fmt.Errorf("not running and healthy within %s (%w)", e.opts.DeployTimeout, err)
		}
		return fail(err)
	}
	p.phase("healthy", "%s: revision %d healthy (%d/%d tasks)", svc.Name, num, want, want)

	// The switch: one ModifyRule per rule that sends to the service. From
	// the first one on, the new revision may take traffic: a berth cut off
	// from here is finished by the next verb, not undone.
	if svc.Port > 0 {
		_ = op.Done(stepSwitching, slotStep{Service: svc.Name, Slot: slot, Revision: num}, e.opts.Now())
		if err := l.PutOp(ctx, op); err != nil {
			return fail(err)
		}
		if _, err := e.route(ctx, in, sp, svc.Name, tgs, slot); err != nil {
			if active == nil {
				return fail(err)
			}
			// Some rules may send to the new slot already: send them back
			// before it stops. If that fails too, the next verb finishes
			// the switch (the journal says it began).
			if _, berr := e.route(context.WithoutCancel(ctx), in, sp, svc.Name, tgs, Slot(active.Slot)); berr != nil {
				return 0, fmt.Errorf("deploy of %s revision %d was cut off during its switch (%w); the next berth verb finishes it", svc.Name, num, err)
			}
			return fail(err)
		}
		p.phase("switch", "%s: all traffic on revision %d", svc.Name, num)
	} else {
		p.phase("switch", "%s: revision %d runs", svc.Name, num)
	}
	_ = op.Done(stepSwitched, nil, e.opts.Now())
	if err := l.PutOp(ctx, op); err != nil {
		return 0, err
	}

	// The records: new active, old previous and warm; the one before in
	// the same slot (replaced by the new revision) retired.
	ch := []awsstate.StateChange{{Service: svc.Name, Number: num, From: awsstate.StateDeploying, To: awsstate.StateActive, Reason: "deployed"}}
	for _, r := range revs {
		switch {
		case active != nil && r.Number == active.Number:
			ch = append(ch, awsstate.StateChange{Service: svc.Name, Number: r.Number, From: awsstate.StateActive, To: awsstate.StatePrevious,
				WarmUntil: e.opts.Now().Add(e.opts.Warm), Reason: fmt.Sprintf("replaced by revision %d", num)})
		case r.State == awsstate.StatePrevious:
			ch = append(ch, awsstate.StateChange{Service: svc.Name, Number: r.Number, From: awsstate.StatePrevious, To: awsstate.StateRetired,
				Reason: fmt.Sprintf("its slot runs revision %d", num)})
		}
	}
	if err := e.state.UpdateRevisionStates(ctx, ch...); err != nil {
		return 0, err
	}
	if active != nil && svc.Port == 0 {
		// A worker has no traffic to switch: the old slot stops now.
		p.phase("drain", "%s: stopping revision %d", svc.Name, active.Number)
		if err := e.runSlot(ctx, in, svc, Slot(active.Slot), active.TaskDefinition, "", 0, active.Number); err != nil {
			return 0, err
		}
	} else if active != nil {
		p.phase("drain", "%s: revision %d drains and stays warm for %s (instant rollback)", svc.Name, active.Number, e.opts.Warm)
	}
	var warmUntil time.Time
	if active != nil && svc.Port > 0 {
		warmUntil = e.opts.Now().Add(e.opts.Warm)
	}
	if err := e.followSwitch(ctx, in, svc, slot, tgs[slot], warmUntil); err != nil {
		return 0, fmt.Errorf("revision %d of %s serves, but %w; run berth deploy --env %s again to finish", num, svc.Name, err, e.Name)
	}
	msg := fmt.Sprintf("revision %d deployed", num)
	if active != nil {
		msg = fmt.Sprintf("revision %d replaced %d", num, active.Number)
	}
	if _, err := e.state.AddEvent(ctx, eventOf(svc.Name, "deploy", msg)); err != nil {
		return 0, err
	}
	if err := l.ClearOp(ctx); err != nil {
		return 0, err
	}
	p.phase("done", "%s: revision %d serves", svc.Name, num)
	return num, nil
}

// activeOf is the active revision among revs, or nil.
func activeOf(revs []awsstate.Revision) *awsstate.Revision {
	for i := range revs {
		if revs[i].State == awsstate.StateActive {
			return &revs[i]
		}
	}
	return nil
}

// abandon undoes a deploy that failed before its switch: its slot back to
// 0 tasks, its revision failed with why, the journal cleared.
func (e *Env) abandon(ctx context.Context, l *awsstate.Lock, in *infra, svc *spec.Service, rev awsstate.Revision, why error, p progress) {
	if cur, err := e.describeSlot(ctx, in.Cluster, svc.Name, Slot(rev.Slot)); err == nil && cur.Exists && cur.Desired > 0 {
		_ = e.runSlot(ctx, in, svc, Slot(rev.Slot), cur.TaskDefinition, "", 0, rev.Number)
	}
	_ = e.state.UpdateRevisionStates(ctx, awsstate.StateChange{Service: svc.Name, Number: rev.Number, From: awsstate.StateDeploying, To: awsstate.StateFailed, Reason: why.Error()})
	_, _ = e.state.AddEvent(ctx, eventOf(svc.Name, "deploy-failed", fmt.Sprintf("revision %d failed: %v", rev.Number, why)))
	_ = l.ClearOp(ctx)
	p.phase("rolled back", "%s: revision %d abandoned", svc.Name, rev.Number)
}

// registered is a task definition berth registered for a revision.
type registered struct {
	arn   string
	image string // the main container's pinned image
}

// taskDefinition pushes a revision's images (building those with build:)
// and registers its task definition.
func (e *Env) taskDefinition(ctx context.Context, in *infra, role string, sp *spec.Spec, svc *spec.Service, num int, image string, secrets map[string]string, p progress) (registered, error) {
	tags := e.tagMap(map[string]string{TagService: svc.Name})
	repo := e.repoName(svc.Name)
	push := func(who, img string, b *spec.Build) (string, error) {
		if b != nil && img == "" {
			if e.opts.Build == nil {
				return "", fmt.Errorf("%w: %s builds from %s, and this berth cannot build; set image:", ErrRefused, who, b.Context)
			}
			dir := filepath.Join(filepath.Dir(sp.File), b.Context)
			p.phase("build", "%s: building from %s", who, dir)
			var log bytes.Buffer
			id, err := e.opts.Build(ctx, b, dir, svc.Platform, &log)
			if err != nil {
				return "", fmt.Errorf("build %s: %w", who, err)
			}
			img = id
		}
		p.phase("build", "%s: pushing %s to ECR", who, img)
		return images.Push(ctx, e.c, img, repo, tags)
	}
	if image == "" {
		image = svc.Image
	}
	main, err := push(svc.Name, image, svc.Build)
	if err != nil {
		return registered{}, err
	}
	sidecars := map[string]string{}
	for _, n := range svc.SidecarOrder {
		sc := svc.Sidecars[n]
		if sidecars[n], err = push(svc.Name+"/"+n, sc.Image, sc.Build); err != nil {
			return registered{}, err
		}
	}
	in2, err := fargate.TaskDefinition(fargate.Input{
		App: e.App, Env: e.Name, Service: svc, Revision: num, Image: main, SidecarImages: sidecars,
		SecretARNs: secrets, LogGroup: in.LogGroup, Region: e.Region, ExecutionRoleARN: role, TaskRoleARN: e.taskRoleARN, Platform: svc.Platform,
	})
	if err != nil {
		return registered{}, err
	}
	out, err := e.c.ECS.RegisterTaskDefinition(ctx, in2)
	if err != nil {
		return registered{}, fmt.Errorf("register the task definition of %s revision %d: %w", svc.Name, num, err)
	}
	return registered{arn: aws.ToString(out.TaskDefinition.TaskDefinitionArn), image: main}, nil
}

// settle finishes or undoes what a verb cut off left (its journal), and
// scales to 0 the warm slots whose window has passed. It runs under the
// lock, first thing in every verb that changes something.
func (e *Env) settle(ctx context.Context, l *awsstate.Lock, p progress) error {
	op, ok, err := e.state.Op(ctx)
	if err != nil {
		return err
	}
	if ok {
		if err := e.settleOp(ctx, l, op, p); err != nil {
			return err
		}
	}
	return e.coolWarmSlots(ctx)
}

// settleOp settles an interrupted operation. A deploy that switched is
// finished (its records written); one that did not is undone.
func (e *Env) settleOp(ctx context.Context, l *awsstate.Lock, op *awsstate.Op, p progress) error {
	in, err := e.findInfra(ctx)
	if err != nil {
		return err
	}
	if op.Kind == "rollback" {
		return e.settleRollback(ctx, l, in, op, p)
	}
	for svcName, num := range op.Revisions {
		rev, err := e.state.Revision(ctx, svcName, num)
		if err != nil {
			if errors.Is(err, awsstate.ErrNotFound) {
				continue
			}
			return err
		}
		if rev.State != awsstate.StateDeploying {
			continue
		}
		var svc spec.Service
		if err := json.Unmarshal(rev.Spec, &svc); err != nil {
			return fmt.Errorf("read revision %d of %s: %w", num, svcName, err)
		}
		if isAppRunner(&svc) {
			if err := e.settleAppRunner(ctx, rev, &svc, p); err != nil {
				return err
			}
			continue
		}
		_, switched := op.Step(stepSwitched)
		_, switching := op.Step(stepSwitching)
		who := "an interrupted " + op.Kind + " by " + op.Holder.String()
		if switching && !switched {
			// Cut off mid-switch: some rules may send to the new slot,
			// whose tasks were healthy. Finish moving the others.
			if err := e.switchRules(ctx, in, &svc, Slot(rev.Slot)); err != nil {
				return err
			}
			switched = true
		}
		if !switched {
			p.phase("prepare", "%s: undoing %s (revision %d never took traffic)", svcName, who, num)
			e.abandon(ctx, l, in, &svc, rev, fmt.Errorf("%s was cut off before its switch", op.Kind), p)
			continue
		}
		p.phase("prepare", "%s: finishing %s (revision %d took traffic)", svcName, who, num)
		revs, err := e.state.Revisions(ctx, svcName)
		if err != nil {
			return err
		}
		ch := []awsstate.StateChange{{Service: svcName, Number: num, From: awsstate.StateDeploying, To: awsstate.StateActive, Reason: "deployed (finished by the next verb)"}}
		for _, r := range revs {
			switch r.State {
			case awsstate.StateActive:
				ch = append(ch, awsstate.StateChange{Service: svcName, Number: r.Number, From: awsstate.StateActive, To: awsstate.StatePrevious,
					WarmUntil: e.opts.Now().Add(e.opts.Warm), Reason: fmt.Sprintf("replaced by revision %d", num)})
			case awsstate.StatePrevious: // its slot runs the new revision
				ch = append(ch, awsstate.StateChange{Service: svcName, Number: r.Number, From: awsstate.StatePrevious, To: awsstate.StateRetired,
					Reason: fmt.Sprintf("its slot runs revision %d", num)})
			}
		}
		if err := e.state.UpdateRevisionStates(ctx, ch...); err != nil {
			return err
		}
		// What follows the serving slot (scaling, name, cool-down) follows.
		tg := ""
		if svc.Port > 0 {
			if tg, err = e.targetGroup(ctx, in, &svc, Slot(rev.Slot)); err != nil {
				return err
			}
		}
		var warmUntil time.Time
		if len(ch) > 1 && svc.Port > 0 {
			warmUntil = ch[1].WarmUntil
		}
		if err := e.followSwitch(ctx, in, &svc, Slot(rev.Slot), tg, warmUntil); err != nil {
			return err
		}
		_, _ = e.state.AddEvent(ctx, eventOf(svcName, "deploy", fmt.Sprintf("revision %d deployed (%s finished by the next verb)", num, who)))
	}
	return l.ClearOp(ctx)
}

// coolWarmSlots scales to 0 the slots of previous revisions whose warm
// window has passed.
func (e *Env) coolWarmSlots(ctx context.Context) error {
	revs, err := e.state.Revisions(ctx, "")
	if err != nil {
		return err
	}
	cluster := e.clusterName()
	for _, r := range revs {
		if r.State != awsstate.StatePrevious || r.WarmUntil.IsZero() || e.opts.Now().Before(r.WarmUntil) || r.Slot == "" {
			continue
		}
		n := e.ecsServiceName(r.Service, Slot(r.Slot))
		cur, err := e.describeSlot(ctx, cluster, r.Service, Slot(r.Slot))
		if err != nil || !cur.Exists || cur.Desired == 0 {
			continue
		}
		if _, err := e.c.ECS.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(cluster), Service: aws.String(n), DesiredCount: aws.Int32(0)}); err != nil {
			return fmt.Errorf("scale the warm slot %s to 0: %w", n, err)
		}
		_, _ = e.state.AddEvent(ctx, eventOf(r.Service, "scale", fmt.Sprintf("revision %d's warm window ended; its slot %s scaled to 0", r.Number, r.Slot)))
	}
	return nil
}
