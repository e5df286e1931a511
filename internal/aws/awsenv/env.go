// Package awsenv runs berth's verbs on an AWS environment: the same
// berth.yaml and the same verbs as on the local engine, carried out by
// direct AWS API calls from the CLI's own process (no berth server), with
// the state kept in AWS (internal/aws/awsstate). docs/aws-design.md draws
// the resources and the deploy; this package's files follow it:
//
//	env.go      opening an environment: clients, state, the spec's checks
//	infra.go    the app's shared resources: network, security groups,
//	            cluster, log group, load balancer and listener
//	role.go     the task execution role; secrets.go the app's secrets
//	deploy.go   a deploy, top-down: lock, image, task definition, release,
//	            the idle slot started and healthy, the switch, the records
//	slots.go    a service's two slots (ECS service + target group each)
//	rules.go    the listener rules that send traffic to a slot
//	rollback.go the switch back, warm (weights) or cold (slot started first)
//	tasks.go    one-off and release tasks: RunTask, logs, exit codes
//	scaling.go  Application Auto Scaling on the serving slot, and what
//	            follows a switch (scaling, name, cool-down)
//	schedule.go EventBridge Scheduler: scheduled tasks, warm slots' cool-down
//	schedrole.go the role EventBridge Scheduler assumes
//	discovery.go Cloud Map: SERVICE.APP.berth.internal names the serving slot
//	status.go   status, revisions, events, read from AWS
//	apprunner.go services with apprunner: run on that App Runner service:
//	            deploy, rollback, status, pause, logs through it; their
//	            tasks and release: on the cluster, like it
//	move.go     berth move: a service carried between App Runner and
//	            Fargate behind its CloudFront entrypoints, guarded
package awsenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/berth-dev/berth/internal/aws/awsstate"
	"github.com/berth-dev/berth/internal/aws/clients"
	"github.com/berth-dev/berth/internal/aws/fargate"
	"github.com/berth-dev/berth/internal/spec"
)

// Env is one app in one AWS environment of its berth.yaml.
type Env struct {
	Name    string   // the environment's name in berth.yaml ("prod")
	App     string   // the app
	Region  string   // its region
	Cluster string   // an adopted ECS cluster, or "" for berth-APP
	Subnets []string // the environment's subnets, or none for the default VPC's

	opts  Options
	c     *clients.Clients
	state *awsstate.AppState
	store *awsstate.Store
	// taskRoleARN is the tasks' role, found or made by the verb that
	// registers task definitions (deploy).
	taskRoleARN string
}

// Options are the choices of the caller (the CLI) that are not in the spec.
type Options struct {
	// Build builds a service's (or sidecar's) build: on the local engine
	// and returns the local image's ID; nil refuses specs with build:.
	Build func(ctx context.Context, b *spec.Build, dir, platform string, progress io.Writer) (string, error)
	// LockWait is how long a verb waits for another berth's lock on the
	// app (0: fail at once, naming the holder).
	LockWait time.Duration
	// Lease is the lock's lease (0: awsstate.DefaultLease): how long after
	// a berth dies its lock is free for the next.
	Lease time.Duration
	// Warm is how long a previous revision's slot keeps running after a
	// deploy, so a rollback is a traffic switch (0: DefaultWarm).
	Warm time.Duration
	// DeployTimeout bounds the wait for a slot's tasks to run and be
	// healthy (0: DefaultDeployTimeout).
	DeployTimeout time.Duration
	// Table is the DynamoDB table of berth's state (""; awsstate's default).
	Table string
	// AppRunnerPoll is how often an App Runner operation is polled (0:
	// apprunner.DefaultPoll).
	AppRunnerPoll time.Duration
	// Now is the clock (nil: time.Now); tests move it.
	Now func() time.Time
}

// Defaults of an AWS environment.
const (
	// DefaultWarm is how long the previous revision stays warm: the
	// local engine's frozen window.
	DefaultWarm = 10 * time.Minute
	// DefaultDeployTimeout is longer than the local engine's minute:
	// Fargate takes tens of seconds to place a task and pull its image.
	DefaultDeployTimeout = 10 * time.Minute
)

// ErrRefused marks an error about what the spec asks that AWS cannot do,
// found before any change; the CLI prints it as is and exits 1.
var ErrRefused = errors.New("refused")

// Open opens the environment named env of sp: it checks what Fargate cannot
// do before any AWS call, then connects with the standard configuration
// chain and opens the state.
func Open(ctx context.Context, sp *spec.Spec, env string, opts Options) (*Env, error) {
	ec, err := sp.Environment(env)
	if err != nil {
		return nil, err
	}
	if ec == nil {
		return nil, fmt.Errorf("environment %q is the local engine; run without --env", env)
	}
	if ec.Engine != spec.EngineAWS {
		return nil, fmt.Errorf("environment %s: engine %q is not one berth drives; use engine: aws", env, ec.Engine)
	}
	if errs := fargate.Check(sp, env); len(errs) > 0 {
		return nil, refusal(errs)
	}
	c, err := clients.Load(ctx, ec.Region)
	if err != nil {
		return nil, err
	}
	return OpenWith(ctx, c, sp.App, ec, opts)
}

// OpenWith opens an app's environment with clients already made.
func OpenWith(ctx context.Context, c *clients.Clients, app string, ec *spec.Environment, opts Options) (*Env, error) {
	st, err := awsstate.Open(ctx, c.DynamoDB, opts.Table)
	if err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Warm == 0 {
		opts.Warm = DefaultWarm
	}
	if opts.DeployTimeout == 0 {
		opts.DeployTimeout = DefaultDeployTimeout
	}
	return &Env{
		Name: ec.Name, App: app, Region: c.Region(), Cluster: ec.Cluster, Subnets: ec.Subnets,
		opts: opts, c: c, store: st, state: st.App(ec.Name, app),
	}, nil
}

// refusal joins the spec's refusals into one error, one per line.
func refusal(errs []error) error {
	return fmt.Errorf("%w: %w", ErrRefused, errors.Join(errs...))
}

// what names the app and environment in messages: "shop (prod)".
func (e *Env) what() string { return e.App + " (" + e.Name + ")" }

// lock takes the app's lock for op, settles what an interrupted verb left,
// and returns a context that ends if the lock is lost.
func (e *Env) lock(ctx context.Context, op string) (context.Context, *awsstate.Lock, func(), error) {
	l, err := e.state.Acquire(ctx, awsstate.CurrentHolder(op), e.opts.Lease, e.opts.LockWait)
	if err != nil {
		return nil, nil, nil, err
	}
	lctx, cancel := l.Context(ctx)
	done := func() {
		cancel()
		rctx, c := context.WithTimeout(context.Background(), 30*time.Second)
		defer c()
		_ = l.Release(rctx)
	}
	return lctx, l, done, nil
}
