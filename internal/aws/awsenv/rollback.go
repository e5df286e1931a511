package awsenv

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/aws/awsstate"
	"github.com/berth-dev/berth/internal/spec"
)

// Rollback returns a service to an earlier revision (to 0: the previous
// one). Within the warm window the previous revision's slot still runs,
// so the rollback is the switch alone: one ModifyRule per rule, seconds.
// After it, the slot is started again first and waited on, as a deploy.
// The revision rolled back from becomes the previous one, warm.
func (e *Env) Rollback(ctx context.Context, sp *spec.Spec, service string, to int, out func(api.Message)) api.Message {
	p := progress(out)
	ctx, l, unlock, err := e.lock(ctx, "rollback")
	if err != nil {
		return failure(err)
	}
	defer unlock()
	if err := e.settle(ctx, l, p); err != nil {
		return failure(err)
	}
	revs, err := e.state.Revisions(ctx, service)
	if err != nil {
		return failure(err)
	}
	if len(revs) == 0 {
		return failure(fmt.Errorf("%w: %s has no service %s in %s; see \"berth status --env %s\"", awsstate.ErrNotFound, e.App, service, e.Name, e.Name))
	}
	cur := activeOf(revs)
	if cur == nil {
		return failure(fmt.Errorf("%w: %s has no serving revision in %s to roll back from", awsstate.ErrNotFound, service, e.what()))
	}
	if m, ok := e.rollbackAppRunner(ctx, l, sp, revs, service, to, p); ok {
		return m
	}
	var target *awsstate.Revision
	for i := range revs {
		r := &revs[i]
		switch {
		case to != 0 && r.Number == to:
			target = r
		case to == 0 && target == nil && r.State == awsstate.StatePrevious:
			target = r
		}
	}
	if to == 0 && target == nil {
		for i := range revs {
			if r := &revs[i]; r.Number < cur.Number && (r.State == awsstate.StateRetired) {
				target = r
				break
			}
		}
	}
	switch {
	case target == nil && to != 0:
		return failure(fmt.Errorf("%w: %s has no revision %d in %s; see \"berth revisions --env %s %s\"", awsstate.ErrNotFound, service, to, e.what(), e.Name, service))
	case target == nil:
		return failure(fmt.Errorf("%w: %s has no earlier revision to roll back to in %s", awsstate.ErrNotFound, service, e.what()))
	case target.Number == cur.Number:
		return failure(fmt.Errorf("%w: revision %d of %s already serves", ErrRefused, target.Number, service))
	case target.TaskDefinition == "" && appRunnerOf(*target) != "":
		return failure(fmt.Errorf("%w: revision %d of %s ran on App Runner, and %s has moved to Fargate since; to go back to App Runner behind the same entrypoints, run berth move --env %s %s --to apprunner", ErrRefused, target.Number, service, service, e.Name, service))
	case target.State == awsstate.StateFailed || target.TaskDefinition == "":
		return failure(fmt.Errorf("%w: revision %d of %s never deployed successfully (%s); pick another with --to", ErrRefused, target.Number, service, target.Reason))
	}
	var svc spec.Service
	if err := json.Unmarshal(target.Spec, &svc); err != nil {
		return failure(fmt.Errorf("read revision %d of %s: %w", target.Number, service, err))
	}
	in, err := e.findInfra(ctx)
	if err != nil {
		return failure(err)
	}
	start := e.opts.Now()
	slot := Slot(target.Slot)
	if target.State != awsstate.StatePrevious {
		slot = Slot(cur.Slot).Other() // a retired revision runs again in the idle slot
	}
	// The journal, so that a rollback cut off mid-switch is finished by
	// the next verb rather than deployed over.
	op := awsstate.Op{Kind: "rollback", Revisions: map[string]int{service: target.Number}, Started: e.opts.Now()}
	if err := l.PutOp(ctx, op); err != nil {
		return failure(err)
	}
	tgs := map[Slot]string{}
	if svc.Port > 0 {
		for _, s := range []Slot{SlotA, SlotB} {
			if tgs[s], err = e.targetGroup(ctx, in, &svc, s); err != nil {
				return failure(err)
			}
		}
	}
	if slot != Slot(target.Slot) {
		target.Slot = string(slot)
		if err := e.state.PutRevision(ctx, *target); err != nil {
			return failure(err)
		}
	}
	want := int32(svc.DesiredInstances())
	slotNow, err := e.describeSlot(ctx, in.Cluster, service, slot)
	if err != nil {
		return failure(err)
	}
	warm := slotNow.Exists && slotNow.TaskDefinition == target.TaskDefinition && slotNow.Desired >= want && slotNow.Running >= want
	if !warm {
		p.phase("start", "%s: starting %d task(s) of revision %d in slot %s (its warm window passed)", service, want, target.Number, slot)
		if err := e.runSlot(ctx, in, &svc, slot, target.TaskDefinition, tgs[slot], want, target.Number); err != nil {
			return failure(err)
		}
		wctx, cancel := context.WithTimeout(ctx, e.opts.DeployTimeout)
		err := e.waitSlot(wctx, in, &svc, slot, target.TaskDefinition, tgs[slot], want, func(s string) { p.phase("start", "%s: %s", service, s) })
		cancel()
		if err != nil {
			_ = e.runSlot(context.WithoutCancel(ctx), in, &svc, slot, target.TaskDefinition, "", 0, target.Number)
			_ = l.ClearOp(context.WithoutCancel(ctx))
			return failure(fmt.Errorf("rollback of %s to revision %d failed; revision %d keeps serving: %w", service, target.Number, cur.Number, err))
		}
	}
	// The route follows the spec the target revision ran with.
	routeSpec := &spec.Spec{App: e.App, Services: map[string]*spec.Service{service: &svc}, ServiceOrder: []string{service}}
	if sp != nil && sp.Services[service] != nil {
		routeSpec = sp
	}
	if svc.Port > 0 {
		_ = op.Done(stepSwitching, slotStep{Service: service, Slot: slot, Revision: target.Number}, e.opts.Now())
		if err := l.PutOp(ctx, op); err != nil {
			return failure(err)
		}
		if _, err := e.route(ctx, in, routeSpec, service, tgs, slot); err != nil {
			return failure(fmt.Errorf("rollback of %s to revision %d was cut off during its switch (%w); the next berth verb finishes it", service, target.Number, err))
		}
	}
	p.phase("switch", "%s: all traffic on revision %d", service, target.Number)
	changes := []awsstate.StateChange{
		{Service: service, Number: target.Number, From: target.State, To: awsstate.StateActive, Reason: fmt.Sprintf("rolled back to from %d", cur.Number)},
		{Service: service, Number: cur.Number, From: awsstate.StateActive, To: awsstate.StatePrevious,
			WarmUntil: e.opts.Now().Add(e.opts.Warm), Reason: fmt.Sprintf("rolled back to %d", target.Number)},
	}
	for _, r := range revs {
		// A retired revision brought back runs in the slot the previous
		// one held: that one is retired now.
		if r.State == awsstate.StatePrevious && r.Number != target.Number {
			changes = append(changes, awsstate.StateChange{Service: service, Number: r.Number, From: awsstate.StatePrevious, To: awsstate.StateRetired,
				Reason: fmt.Sprintf("its slot runs revision %d", target.Number)})
		}
	}
	if err := e.state.UpdateRevisionStates(ctx, changes...); err != nil {
		return failure(err)
	}
	if err := l.ClearOp(ctx); err != nil {
		return failure(err)
	}
	if svc.Port == 0 {
		_ = e.runSlot(ctx, in, &svc, Slot(cur.Slot), cur.TaskDefinition, "", 0, cur.Number)
	}
	var warmUntil time.Time
	if svc.Port > 0 {
		warmUntil = e.opts.Now().Add(e.opts.Warm)
	}
	if err := e.followSwitch(ctx, in, &svc, slot, tgs[slot], warmUntil); err != nil {
		return failure(fmt.Errorf("revision %d of %s serves again, but %w; run berth rollback --env %s again to finish", target.Number, service, err, e.Name))
	}
	if err := e.syncSchedules(ctx, in, sp, p); err != nil {
		return failure(err)
	}
	how := "warm: a traffic switch"
	if !warm {
		how = "cold: its tasks started again"
	}
	took := e.opts.Now().Sub(start).Round(time.Millisecond)
	_, _ = e.state.AddEvent(ctx, eventOf(service, "rollback", fmt.Sprintf("rolled back from revision %d to %d in %s (%s)", cur.Number, target.Number, took, how)))
	return api.Message{Kind: api.KindResult, Time: time.Now(), OK: true, Deployed: []api.Deploy{{Service: service, Revision: target.Number, URLs: e.urls(ctx, in, &svc)}}}
}

// settleRollback settles a rollback cut off: one whose switch began is
// finished (every rule on the revision rolled back to, which becomes
// active, the one it left previous and warm); one cut off before it
// changed no traffic and leaves nothing to undo but the journal (a slot it
// started again is scaled down when its revision's window ends).
func (e *Env) settleRollback(ctx context.Context, l *awsstate.Lock, in *infra, op *awsstate.Op, p progress) error {
	st, switching := op.Step(stepSwitching)
	if switching {
		var to slotStep
		if err := json.Unmarshal(st.Detail, &to); err != nil {
			return fmt.Errorf("read the journal of an interrupted rollback: %w", err)
		}
		rev, err := e.state.Revision(ctx, to.Service, to.Revision)
		if err != nil {
			return err
		}
		var svc spec.Service
		if err := json.Unmarshal(rev.Spec, &svc); err != nil {
			return fmt.Errorf("read revision %d of %s: %w", rev.Number, to.Service, err)
		}
		p.phase("prepare", "%s: finishing an interrupted rollback by %s to revision %d", to.Service, op.Holder, rev.Number)
		if err := e.switchRules(ctx, in, &svc, to.Slot); err != nil {
			return err
		}
		if rev.State != awsstate.StateActive {
			revs, err := e.state.Revisions(ctx, to.Service)
			if err != nil {
				return err
			}
			if rev.Slot != string(to.Slot) {
				rev.Slot = string(to.Slot)
				if err := e.state.PutRevision(ctx, rev); err != nil {
					return err
				}
			}
			ch := []awsstate.StateChange{{Service: to.Service, Number: rev.Number, From: rev.State, To: awsstate.StateActive, Reason: "rolled back to (finished by the next verb)"}}
			for _, r := range revs {
				if r.State == awsstate.StateActive {
					ch = append(ch, awsstate.StateChange{Service: to.Service, Number: r.Number, From: awsstate.StateActive, To: awsstate.StatePrevious,
						WarmUntil: e.opts.Now().Add(e.opts.Warm), Reason: fmt.Sprintf("rolled back to %d", rev.Number)})
				}
			}
			if err := e.state.UpdateRevisionStates(ctx, ch...); err != nil {
				return err
			}
			// What follows the serving slot (scaling, name, cool-down) follows.
			tg := ""
			if svc.Port > 0 {
				if tg, err = e.targetGroup(ctx, in, &svc, to.Slot); err != nil {
					return err
				}
			}
			var warmUntil time.Time
			if len(ch) > 1 && svc.Port > 0 {
				warmUntil = ch[1].WarmUntil
			}
			if err := e.followSwitch(ctx, in, &svc, to.Slot, tg, warmUntil); err != nil {
				return err
			}
			_, _ = e.state.AddEvent(ctx, eventOf(to.Service, "rollback", fmt.Sprintf("rolled back to revision %d (an interrupted rollback by %s, finished by the next verb)", rev.Number, op.Holder)))
		}
	}
	return l.ClearOp(ctx)
}

// appRunnerOf is the App Runner service revision r ran on (its spec's
// apprunner:), or "" for a revision on Fargate.
func appRunnerOf(r awsstate.Revision) string {
	var s spec.Service
	if json.Unmarshal(r.Spec, &s) != nil {
		return ""
	}
	return s.AppRunner
}

// lastAppRunner is the newest of revs that ran on App Runner, and its
// service's ARN; nil when none did.
func lastAppRunner(revs []awsstate.Revision) (*awsstate.Revision, string) {
	var last *awsstate.Revision
	arn := ""
	for i := range revs {
		if a := appRunnerOf(revs[i]); a != "" && (last == nil || revs[i].Number > last.Number) {
			last, arn = &revs[i], a
		}
	}
	return last, arn
}
