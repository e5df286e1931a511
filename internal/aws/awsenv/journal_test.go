package awsenv

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/aws/awstest"
	"github.com/berth-dev/berth/internal/aws/clients"
)

// killable is a second berth process on the same AWS, reached through a
// proxy of its own, whose network the test cuts at a chosen call: every
// AWS call after it fails, so the berth neither finishes nor undoes
// anything, its lock is not released and its journal stays, as after a
// kill -9 or a laptop closed mid-deploy.
// killedLease is the lease of a berth a test kills: what the next verb
// waits out. Not shorter: under a loaded CI a renewal (every third of it)
// comes late, the lease is lost, and the "dead" berth undoes its own work
// in-process before the kill.
const killedLease = 4 * time.Second

type killable struct {
	env   *Env
	proxy *awstest.Proxy
	dead  atomic.Bool
}

func (a *awsApp) killable(opts Options) *killable {
	a.t.Helper()
	k := &killable{proxy: awstest.StartProxy(a.t, awstest.MotoEndpoint(a.t), a.proxy.Registry())}
	awstest.SimulateECS(a.t, k.proxy)
	k.proxy.Intercept(func(c *awstest.Call) *awstest.Response {
		if k.dead.Load() {
			return c.Error(400, "BerthKilled", "this berth process is dead")
		}
		return nil
	})
	awstest.UseEndpoint(a.t, k.proxy.URL)
	c, err := clients.Load(context.Background(), "")
	awstest.UseEndpoint(a.t, a.proxy.URL)
	require.NoError(a.t, err)
	ec, err := a.sp.Environment("prod")
	require.NoError(a.t, err)
	if opts.DeployTimeout == 0 {
		opts.DeployTimeout = 90 * time.Second // long: a loaded machine is slow, and a deploy that succeeds never waits it out
	}
	k.env, err = OpenWith(context.Background(), c, a.sp.App, ec, opts)
	require.NoError(a.t, err)
	return k
}

// dieAfter kills the berth right after AWS answers the first call of op.
func (k *killable) dieAfter(op string) {
	k.proxy.Handle(op, func(c *awstest.Call) *awstest.Response {
		r, err := c.Forward()
		if err != nil {
			return nil
		}
		k.dead.Store(true)
		return r
	})
}

// ruleWeights reads every listener rule that sends to service: rule key →
// the slot with weight 100 ("" when none has).
func (a *awsApp) ruleWeights(e *Env, service string) map[string]string {
	a.t.Helper()
	ctx := context.Background()
	in, err := e.findInfra(ctx)
	require.NoError(a.t, err)
	live, _, err := e.rules(ctx, in)
	require.NoError(a.t, err)
	out := map[string]string{}
	for k, r := range live {
		if r.Service != service {
			continue
		}
		got, err := a.c.ELB.DescribeRules(ctx, &elb.DescribeRulesInput{RuleArns: []string{r.ARN}})
		require.NoError(a.t, err)
		out[k] = ""
		for _, g := range got.Rules[0].Actions[0].ForwardConfig.TargetGroups {
			if aws.ToInt32(g.Weight) == 100 {
				arn := aws.ToString(g.TargetGroupArn)
				out[k] = arn[strings.LastIndex(arn, "/")-1 : strings.LastIndex(arn, "/")]
			}
		}
	}
	return out
}

// ruleFields are the condition fields of the rule berth keyed key.
func (a *awsApp) ruleFields(e *Env, key string) []string {
	a.t.Helper()
	ctx := context.Background()
	in, err := e.findInfra(ctx)
	require.NoError(a.t, err)
	live, _, err := e.rules(ctx, in)
	require.NoError(a.t, err)
	got, err := a.c.ELB.DescribeRules(ctx, &elb.DescribeRulesInput{RuleArns: []string{live[key].ARN}})
	require.NoError(a.t, err)
	var out []string
	for _, c := range got.Rules[0].Conditions {
		out = append(out, aws.ToString(c.Field))
	}
	return out
}

func (a *awsApp) states(e *Env, service string) map[int]string {
	a.t.Helper()
	revs, err := e.Revisions(context.Background(), service)
	require.NoError(a.t, err)
	out := map[int]string{}
	for _, r := range revs {
		out[r.Number] = r.Status
	}
	return out
}

func phases(msgs []api.Message) string {
	var b strings.Builder
	for _, m := range msgs {
		if m.Kind == api.KindPhase {
			b.WriteString(m.Text + "\n")
		}
	}
	return b.String()
}

// Ctrl-C after the new slot's ECS service was made, before the switch:
// the deploy undoes itself in-process under its lock, so nothing is left
// for the next verb. The new slot is back at 0, the revision failed, the
// previous one serves, and the lock is free at once.
func TestInterruptedDeployUndoesItself(t *testing.T) {
	a := newAWSApp(t, webYAML)
	res, _ := a.deploy(a.env(Options{}))
	require.True(t, res.OK, res.Error)

	e := a.env(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a.proxy.Handle("ecs:CreateService", func(c *awstest.Call) *awstest.Response {
		r, err := c.Forward()
		if err != nil {
			return nil
		}
		cancel() // Ctrl-C, as the answer comes back
		return r
	})
	res = e.Deploy(ctx, a.sp, nil, nil, nil)
	a.proxy.Handle("ecs:CreateService", nil)
	require.False(t, res.OK, "a cancelled deploy succeeded")
	assert.Contains(t, res.Error, "revision 1 keeps serving")

	assert.Equal(t, map[string]string{"host:web": "a", "default": "a"}, a.ruleWeights(e, "web"))
	assert.Equal(t, int32(0), a.desired(e, "web", SlotB), "the interrupted revision's slot still runs")
	assert.Equal(t, int32(2), a.desired(e, "web", SlotA))
	assert.Equal(t, map[int]string{1: "active", 2: "failed"}, a.states(e, "web"))
	_, pending, err := e.state.Op(context.Background())
	require.NoError(t, err)
	assert.False(t, pending, "the journal of an undone deploy is left")

	// The lock was released: the next deploy goes at once and serves.
	res, _ = a.deploy(a.env(Options{}))
	require.True(t, res.OK, res.Error)
	assert.Equal(t, 3, res.Deployed[0].Revision)
	assert.Equal(t, "b", a.serving(e, "web"))
}

// A berth killed hard after starting the new slot, before the switch:
// no undo ran, its lock and journal are still in AWS. The next deploy
// waits out the dead berth's lease, takes the lock over, undoes the
// unfinished deploy (slot to 0, revision failed, an event saying it was
// cut off), then does its own.
func TestKilledDeployUndoneByNextDeploy(t *testing.T) {
	a := killedMidDeploy(t)

	// What the dead berth left: its slot started, its revision deploying,
	// its journal, its lock.
	e := a.env(Options{})
	assert.Equal(t, int32(2), a.desired(e, "web", SlotB))
	assert.Equal(t, map[int]string{1: "active", 2: "deploying"}, a.states(e, "web"))
	op, pending, err := e.state.Op(context.Background())
	require.NoError(t, err)
	require.True(t, pending, "the dead berth's journal is gone")
	_, started := op.Step(stepSlot)
	assert.True(t, started)
	busy := a.env(Options{}).Deploy(context.Background(), a.sp, nil, nil, nil)
	require.Equal(t, "busy", busy.Code, "the dead berth's lock was not held while its lease ran: %+v", busy)

	next := a.env(Options{LockWait: 15 * time.Second})
	res, msgs := a.deploy(next)
	require.True(t, res.OK, "%s\n%s", res.Error, phases(msgs))
	assert.Contains(t, phases(msgs), "undoing an interrupted deploy")
	assert.Equal(t, 3, res.Deployed[0].Revision)
	assert.Equal(t, map[int]string{1: "previous", 2: "failed", 3: "active"}, a.states(next, "web"))
	assert.Equal(t, map[string]string{"host:web": "b", "default": "b"}, a.ruleWeights(next, "web"))
	assert.Equal(t, int32(2), a.desired(next, "web", SlotB))
	assert.Equal(t, int32(2), a.desired(next, "web", SlotA), "the previous revision is not warm")
	revs, err := next.Revisions(context.Background(), "web")
	require.NoError(t, err)
	for _, r := range revs {
		if r.Number == 2 {
			assert.Contains(t, r.Message, "cut off before its switch")
		}
	}
	evs, err := next.Events(context.Background(), time.Time{}, 0)
	require.NoError(t, err)
	var cut bool
	for _, ev := range evs {
		cut = cut || (ev.Kind == "deploy-failed" && strings.Contains(ev.Message, "revision 2") && strings.Contains(ev.Message, "cut off"))
	}
	assert.True(t, cut, "no event says revision 2 was cut off: %+v", evs)
	_, pending, err = next.state.Op(context.Background())
	require.NoError(t, err)
	assert.False(t, pending)
}

// A berth killed right after its switch began (the first rule already
// sends to the new slot, the journal does not say "switched" yet): the
// new revision's tasks were healthy and took traffic, so the next verb
// finishes the deploy (every rule on the new slot, revision active, the
// old one previous and warm) instead of scaling a serving slot to 0. The
// next verb here is a rollback, which then returns to the old revision
// with a warm switch.
func TestKilledAfterSwitchFinishedByNextVerb(t *testing.T) {
	a := newAWSApp(t, webYAML)
	res, _ := a.deploy(a.env(Options{}))
	require.True(t, res.OK, res.Error)

	dead := a.killable(Options{Lease: killedLease})
	dead.dieAfter("elasticloadbalancing:ModifyRule")
	res = dead.env.Deploy(context.Background(), a.sp, nil, nil, nil)
	require.False(t, res.OK)
	e := a.env(Options{})
	assert.Equal(t, map[int]string{1: "active", 2: "deploying"}, a.states(e, "web"))
	assert.Equal(t, map[string]string{"host:web": "b", "default": "a"}, a.ruleWeights(e, "web"), "the kill was not mid-switch")

	// Finishing, seen through a verb that only settles: scale.
	next := a.env(Options{LockWait: 15 * time.Second})
	_, err := next.Scale(context.Background(), map[string]int{"web": 2})
	require.NoError(t, err)
	assert.Equal(t, map[int]string{1: "previous", 2: "active"}, a.states(next, "web"))
	assert.Equal(t, map[string]string{"host:web": "b", "default": "b"}, a.ruleWeights(next, "web"))
	assert.Equal(t, int32(2), a.desired(next, "web", SlotB), "the serving slot was scaled down")
	assert.Equal(t, []string{"path-pattern"}, a.ruleFields(next, "default"), "finishing the switch changed the rule's conditions")
	assert.Equal(t, int32(2), a.desired(next, "web", SlotA), "the previous revision is not warm")

	var msgs []api.Message
	rb := a.env(Options{}).Rollback(context.Background(), a.sp, "web", 0, func(m api.Message) { msgs = append(msgs, m) })
	require.True(t, rb.OK, rb.Error)
	assert.Equal(t, 1, rb.Deployed[0].Revision)
	assert.Equal(t, map[int]string{1: "active", 2: "previous"}, a.states(next, "web"))
	assert.Equal(t, map[string]string{"host:web": "a", "default": "a"}, a.ruleWeights(next, "web"))
}

// Ctrl-C in the middle of the switch (the first rule already sends to
// the new slot): the deploy sends that rule back to the serving slot
// before it stops the new one, so no rule is left pointing at a slot
// with no tasks.
func TestInterruptedSwitchSendsTrafficBack(t *testing.T) {
	a := newAWSApp(t, webYAML)
	res, _ := a.deploy(a.env(Options{}))
	require.True(t, res.OK, res.Error)

	e := a.env(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a.proxy.Handle("elasticloadbalancing:ModifyRule", awstest.Times(1, func(c *awstest.Call) *awstest.Response {
		r, err := c.Forward()
		if err != nil {
			return nil
		}
		cancel()
		return r
	}))
	res = e.Deploy(ctx, a.sp, nil, nil, nil)
	require.False(t, res.OK, "a deploy cancelled mid-switch succeeded")
	assert.Contains(t, res.Error, "revision 1 keeps serving")
	assert.Equal(t, map[string]string{"host:web": "a", "default": "a"}, a.ruleWeights(e, "web"))
	assert.Equal(t, int32(0), a.desired(e, "web", SlotB))
	assert.Equal(t, int32(2), a.desired(e, "web", SlotA))
	assert.Equal(t, map[int]string{1: "active", 2: "failed"}, a.states(e, "web"))
}

// A rollback killed after its first rule moved, before it recorded
// anything: the next verb finishes it (every rule on the revision rolled
// back to, which is active again), so the deploy after it starts its
// revision in the idle slot, not in the one taking traffic.
func TestKilledRollbackFinishedByNextDeploy(t *testing.T) {
	a := newAWSApp(t, webYAML)
	for range 2 {
		res, _ := a.deploy(a.env(Options{}))
		require.True(t, res.OK, res.Error)
	}
	dead := a.killable(Options{Lease: killedLease})
	dead.dieAfter("elasticloadbalancing:ModifyRule")
	rb := dead.env.Rollback(context.Background(), a.sp, "web", 0, nil)
	require.False(t, rb.OK)
	e := a.env(Options{})
	require.Equal(t, map[string]string{"host:web": "a", "default": "b"}, a.ruleWeights(e, "web"), "the kill was not mid-switch")

	next := a.env(Options{LockWait: 15 * time.Second})
	res, msgs := a.deploy(next)
	require.True(t, res.OK, "%s\n%s", res.Error, phases(msgs))
	assert.Contains(t, phases(msgs), "finishing an interrupted rollback")
	assert.Equal(t, 3, res.Deployed[0].Revision)
	assert.Equal(t, map[int]string{1: "previous", 2: "retired", 3: "active"}, a.states(next, "web"))
	assert.Equal(t, map[string]string{"host:web": "b", "default": "b"}, a.ruleWeights(next, "web"))
	assert.Equal(t, int32(2), a.desired(next, "web", SlotA), "the revision rolled back to is not warm")
}

// A berth killed right after it recorded its new revision, before any
// other step: the revision does not stay "deploying" for ever; the next
// deploy finds it in the journal and marks it failed.
func TestKilledAfterRecordingRevision(t *testing.T) {
	a := newAWSApp(t, webYAML)
	res, _ := a.deploy(a.env(Options{}))
	require.True(t, res.OK, res.Error)

	dead := a.killable(Options{Lease: killedLease})
	dead.proxy.Handle("dynamodb:PutItem", func(c *awstest.Call) *awstest.Response {
		r, err := c.Forward()
		if err != nil {
			return nil
		}
		if strings.Contains(string(c.Body), `"deploying"`) {
			dead.dead.Store(true)
		}
		return r
	})
	res = dead.env.Deploy(context.Background(), a.sp, nil, nil, nil)
	require.False(t, res.OK)
	e := a.env(Options{})
	require.Equal(t, map[int]string{1: "active", 2: "deploying"}, a.states(e, "web"))

	next := a.env(Options{LockWait: 15 * time.Second})
	res, msgs := a.deploy(next)
	require.True(t, res.OK, "%s\n%s", res.Error, phases(msgs))
	assert.Equal(t, map[int]string{1: "previous", 2: "failed", 3: "active"}, a.states(next, "web"))
}

// Pause and resume settle what a berth killed mid-deploy left before they
// act, as deploy, rollback and scale do: the unfinished revision is
// undone (not paused as if it served), and the one that served is paused.
func TestKilledDeploySettledByPause(t *testing.T) {
	a := killedMidDeploy(t)

	e := a.env(Options{LockWait: 15 * time.Second})
	_, err := e.Pause(context.Background(), "web")
	require.NoError(t, err)
	assert.Equal(t, map[int]string{1: "active", 2: "failed"}, a.states(e, "web"))
	assert.Equal(t, int32(0), a.desired(e, "web", SlotB), "the cut-off revision's slot still runs")
	assert.Equal(t, int32(0), a.desired(e, "web", SlotA), "the serving revision is not paused")
	_, pending, err := e.state.Op(context.Background())
	require.NoError(t, err)
	assert.False(t, pending, "the journal is left")

	res := e.Resume(context.Background(), "web", nil)
	require.True(t, res.OK, res.Error)
	assert.Equal(t, int32(2), a.desired(e, "web", SlotA))
	assert.Equal(t, "a", a.serving(e, "web"))
}

// killedMidDeploy is an app whose revision 1 serves and whose deploy of
// revision 2 died hard once its new slot was made: its lock (with its
// killedLease) and journal left in AWS.
func killedMidDeploy(t *testing.T) *awsApp {
	t.Helper()
	a := newAWSApp(t, webYAML)
	res, _ := a.deploy(a.env(Options{}))
	require.True(t, res.OK, res.Error)
	dead := a.killable(Options{Lease: killedLease})
	dead.dieAfter("ecs:CreateService")
	res = dead.env.Deploy(context.Background(), a.sp, nil, nil, nil)
	require.False(t, res.OK)
	return a
}
