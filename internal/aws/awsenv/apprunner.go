package awsenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/aws/apprunner"
	"github.com/berth-dev/berth/internal/aws/awsstate"
	"github.com/berth-dev/berth/internal/aws/fargate"
	"github.com/berth-dev/berth/internal/aws/images"
	"github.com/berth-dev/berth/internal/spec"
)

// A service with apprunner: in an AWS environment runs on that existing App
// Runner service, not in ECS slots. The verbs keep their meaning:
//
//	deploy    push the image (pinned by digest) ─▶ release on the cluster
//	          ─▶ UpdateService, waited on ─▶ revision active (or failed:
//	          App Runner rolled back by itself, the previous image serves)
//	rollback  UpdateService to the previous revision's digest
//	status    the App Runner service's state, URL and image
//	pause     PauseService / ResumeService
//	logs      the service's application log group in CloudWatch
//	task run  RunTask on the environment's cluster with a task definition
//	          registered from what the App Runner service runs (image, env,
//	          secret references): the migration that runs beside App Runner
//
// Its revisions carry no slot ("") and no task definition: what serves is
// App Runner's, and berth records only which image by digest.

// isAppRunner reports whether svc runs on App Runner.
func isAppRunner(svc *spec.Service) bool { return svc != nil && svc.AppRunner != "" }

// onECS is sp without its App Runner services: what the ECS verbs (rules,
// the ALB's idle timeout, slots) act on.
func onECS(sp *spec.Spec) *spec.Spec {
	if sp == nil {
		return nil
	}
	out := *sp
	out.Services = map[string]*spec.Service{}
	out.ServiceOrder = nil
	for _, n := range sp.ServiceOrder {
		if svc := sp.Services[n]; svc != nil && !isAppRunner(svc) {
			out.Services[n] = svc
			out.ServiceOrder = append(out.ServiceOrder, n)
		}
	}
	return &out
}

// runner is the App Runner driver for svc: a spec secret the App Runner
// service does not reference yet is read from berth's own secret of that
// name (berth secret set), when there is one.
func (e *Env) runner(service string) *apprunner.Runner {
	r := apprunner.New(e.c)
	r.Poll = e.opts.AppRunnerPoll
	r.SecretARN = func(name string) (string, error) {
		out, err := e.c.SecretsManager.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(e.secretName(service, name))})
		if apiCode(err) == "ResourceNotFoundException" || (err == nil && out.DeletedDate != nil) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		return aws.ToString(out.ARN), nil
	}
	return r
}

// phaseWriter turns the lines a driver prints (App Runner, CloudFront)
// into a stream's phases, line by line.
type phaseWriter struct {
	p     progress
	phase string
	mu    sync.Mutex
	buf   bytes.Buffer
}

func (w *phaseWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line)
			return len(b), nil
		}
		if s := strings.TrimSpace(line); s != "" {
			w.p.phase(w.phase, "%s", s)
		}
	}
}

// deployAppRunners deploys the App Runner services among names and returns
// what they deployed and the names left for ECS.
func (e *Env) deployAppRunners(ctx context.Context, l *awsstate.Lock, sp *spec.Spec, names []string, imgs map[string]string, p progress) ([]api.Deploy, []string, error) {
	var done []api.Deploy
	var rest []string
	for _, n := range names {
		svc := sp.Services[n]
		if !isAppRunner(svc) {
			rest = append(rest, n)
			continue
		}
		d, err := e.deployAppRunner(ctx, l, sp, svc, imgs[n], p)
		if err != nil {
			return nil, nil, err
		}
		done = append(done, d)
	}
	return done, rest, nil
}

// deployAppRunner deploys one service on its App Runner service, as a
// revision: deploying, then active, or failed with App Runner's reason
// while the previous image keeps serving.
func (e *Env) deployAppRunner(ctx context.Context, l *awsstate.Lock, sp *spec.Spec, svc *spec.Service, image string, p progress) (api.Deploy, error) {
	revs, err := e.state.Revisions(ctx, svc.Name)
	if err != nil {
		return api.Deploy{}, err
	}
	active := activeOf(revs)
	ref, err := e.appRunnerImage(ctx, sp, svc, image, p)
	if err != nil {
		return api.Deploy{}, err
	}
	num, err := e.state.NextRevision(ctx, svc.Name)
	if err != nil {
		return api.Deploy{}, err
	}
	specJSON, _ := json.Marshal(svc)
	rev := awsstate.Revision{Number: num, Service: svc.Name, State: awsstate.StateDeploying, Image: ref, Created: e.opts.Now(),
		By: l.Holder().String(), Spec: specJSON}
	// The journal first, as deployService does: a berth cut off during the
	// update leaves its revision to the next verb, which marks it failed
	// (berth status reads what App Runner serves either way).
	op := awsstate.Op{Kind: "deploy", Revisions: map[string]int{svc.Name: num}, Started: e.opts.Now()}
	if err := l.PutOp(ctx, op); err != nil {
		return api.Deploy{}, err
	}
	if err := e.state.PutRevision(ctx, rev); err != nil {
		return api.Deploy{}, err
	}
	serving := "nothing served before it"
	if active != nil {
		serving = fmt.Sprintf("revision %d (%s) keeps serving", active.Number, active.Image)
	}
	fail := func(err error) (api.Deploy, error) {
		bg := context.WithoutCancel(ctx)
		_ = e.state.UpdateRevisionStates(bg, awsstate.StateChange{Service: svc.Name, Number: num, From: awsstate.StateDeploying, To: awsstate.StateFailed, Reason: err.Error()})
		_, _ = e.state.AddEvent(bg, eventOf(svc.Name, "deploy-failed", fmt.Sprintf("revision %d failed: %v", num, err)))
		_ = l.ClearOp(bg)
		p.phase("rolled back", "%s: revision %d failed; %s", svc.Name, num, serving)
		return api.Deploy{}, fmt.Errorf("deploy of %s revision %d failed; %s: %w", svc.Name, num, serving, err)
	}
	if len(svc.Release) > 0 {
		if err := e.appRunnerRelease(ctx, svc, num, ref, p); err != nil {
			return fail(err)
		}
	}
	p.phase("deploy", "%s: updating App Runner service to revision %d", svc.Name, num)
	res, err := e.runner(svc.Name).Deploy(ctx, svc, ref, &phaseWriter{p: p, phase: "deploy"})
	if err != nil {
		// A failed operation (apprunner.ErrDeployFailed): App Runner put
		// the previous configuration back by itself.
		return fail(err)
	}
	if scheduled(sp, svc.Name) {
		// Its scheduled tasks run like the revision now serving.
		rt, err := e.runner(svc.Name).Runtime(ctx, svc.AppRunner)
		if err == nil {
			_, rev.TaskDefinition, err = e.appRunnerTaskDef(ctx, svc, num, rt)
		}
		if err != nil {
			p.phase("schedule", "%s: revision %d serves on App Runner, but its scheduled tasks stay as they were: %v", svc.Name, num, err)
		} else if err := e.state.PutRevision(ctx, rev); err != nil {
			return api.Deploy{}, err
		}
	}
	if err := e.activateAppRunner(ctx, svc.Name, num, revs, "deployed on App Runner"); err != nil {
		return api.Deploy{}, err
	}
	msg := fmt.Sprintf("revision %d deployed on App Runner (%s)", num, ref)
	if active != nil {
		msg = fmt.Sprintf("revision %d replaced %d on App Runner (%s)", num, active.Number, ref)
	}
	if _, err := e.state.AddEvent(ctx, eventOf(svc.Name, "deploy", msg)); err != nil {
		return api.Deploy{}, err
	}
	if err := l.ClearOp(ctx); err != nil {
		return api.Deploy{}, err
	}
	p.phase("done", "%s: revision %d serves on App Runner", svc.Name, num)
	var urls []string
	if res.URL != "" {
		urls = []string{res.URL}
	}
	return api.Deploy{Service: svc.Name, Revision: num, URLs: urls}, nil
}

// activateAppRunner records revision num of service as serving on App
// Runner: the active one before it previous (App Runner keeps no warm
// slot: a rollback is another update), the previous one retired.
func (e *Env) activateAppRunner(ctx context.Context, service string, num int, revs []awsstate.Revision, reason string) error {
	ch := []awsstate.StateChange{{Service: service, Number: num, From: awsstate.StateDeploying, To: awsstate.StateActive, Reason: reason}}
	for _, r := range revs {
		switch {
		case r.Number == num:
		case r.State == awsstate.StateActive:
			ch = append(ch, awsstate.StateChange{Service: service, Number: r.Number, From: awsstate.StateActive, To: awsstate.StatePrevious, Reason: fmt.Sprintf("replaced by revision %d", num)})
		case r.State == awsstate.StatePrevious:
			ch = append(ch, awsstate.StateChange{Service: service, Number: r.Number, From: awsstate.StatePrevious, To: awsstate.StateRetired, Reason: fmt.Sprintf("revision %d replaced the one after it", num)})
		}
	}
	return e.state.UpdateRevisionStates(ctx, ch...)
}

// settleAppRunner settles a deploy on App Runner cut off while its update
// ran: App Runner finished it or rolled it back without berth, and what
// the service serves now says which.
func (e *Env) settleAppRunner(ctx context.Context, rev awsstate.Revision, svc *spec.Service, p progress) error {
	s, err := e.runner(svc.Name).Status(ctx, svc.AppRunner)
	if err != nil {
		return err
	}
	if s.State == "OPERATION_IN_PROGRESS" {
		return fmt.Errorf("an interrupted deploy of %s revision %d is still running on App Runner service %s; wait until it ends (berth status --env %s) and run this again", svc.Name, rev.Number, s.Name, e.Name)
	}
	if s.Image == rev.Image {
		revs, err := e.state.Revisions(ctx, svc.Name)
		if err != nil {
			return err
		}
		p.phase("prepare", "%s: App Runner finished the interrupted deploy of revision %d", svc.Name, rev.Number)
		if err := e.activateAppRunner(ctx, svc.Name, rev.Number, revs, "deployed on App Runner (finished by the next verb)"); err != nil {
			return err
		}
		_, _ = e.state.AddEvent(ctx, eventOf(svc.Name, "deploy", fmt.Sprintf("revision %d deployed on App Runner (an interrupted deploy, settled by the next verb)", rev.Number)))
		return nil
	}
	p.phase("prepare", "%s: the interrupted deploy of revision %d did not take; App Runner serves %s", svc.Name, rev.Number, s.Image)
	why := fmt.Sprintf("deploy cut off; App Runner serves %s", s.Image)
	_ = e.state.UpdateRevisionStates(ctx, awsstate.StateChange{Service: svc.Name, Number: rev.Number, From: awsstate.StateDeploying, To: awsstate.StateFailed, Reason: why})
	_, _ = e.state.AddEvent(ctx, eventOf(svc.Name, "deploy-failed", fmt.Sprintf("revision %d failed: %s", rev.Number, why)))
	return nil
}

// planAppRunner is what a deploy of svc on App Runner would do.
func (e *Env) planAppRunner(svc *spec.Service, next int) []Change {
	var out []Change
	img := svc.Image
	switch {
	case img == "" && svc.Build != nil:
		out = append(out, Change{Action: "push", Resource: "image of " + svc.Name, Detail: "built from " + svc.Build.Context + " to ECR repository " + e.repoName(svc.Name)})
	case !(strings.Contains(img, ".dkr.ecr.") && strings.Contains(img, "@sha256:")):
		out = append(out, Change{Action: "push", Resource: "image of " + svc.Name, Detail: img + " to ECR repository " + e.repoName(svc.Name)})
	}
	if len(svc.Release) > 0 {
		out = append(out, Change{Action: "run", Resource: "release task of " + svc.Name + " on ECS cluster " + e.clusterName(), Detail: strings.Join(svc.Release, " ")})
	}
	out = append(out, Change{Action: "update", Resource: "App Runner service " + svc.AppRunner, Detail: fmt.Sprintf("revision %d (image, port, command, env, secrets, size, health, scale)", next)})
	return out
}

// appRunnerARNs maps the services that run on App Runner, in sp or in any
// of their revisions, to their App Runner service's ARN: a destroy leaves
// that service, which berth did not make, and the images it runs.
func appRunnerARNs(sp *spec.Spec, revs []awsstate.Revision) map[string]string {
	out := map[string]string{}
	for _, r := range revs {
		var svc spec.Service
		if json.Unmarshal(r.Spec, &svc) == nil && isAppRunner(&svc) && out[r.Service] == "" {
			out[r.Service] = svc.AppRunner
		}
	}
	if sp != nil {
		for n, svc := range sp.Services {
			if isAppRunner(svc) {
				out[n] = svc.AppRunner
			}
		}
	}
	return out
}

// scheduled reports whether a scheduled task of sp runs on service.
func scheduled(sp *spec.Spec, service string) bool {
	for _, n := range sp.TaskOrder {
		t := sp.Tasks[n]
		if t == nil || t.Schedule == "" {
			continue
		}
		svc := t.Service
		if svc == "" && len(sp.ServiceOrder) > 0 {
			svc = sp.ServiceOrder[0]
		}
		if svc == service {
			return true
		}
	}
	return false
}

// syncAppRunnerSchedules writes the schedules of sp's scheduled tasks
// after a deploy of App Runner services alone, on the cluster (made for
// them if need be), and removes those no longer scheduled.
func (e *Env) syncAppRunnerSchedules(ctx context.Context, sp *spec.Spec, p progress) error {
	in := &infra{}
	for _, n := range sp.ServiceOrder {
		if scheduled(sp, n) {
			var err error
			if in, err = e.taskInfra(ctx); err != nil {
				return err
			}
			break
		}
	}
	return e.syncSchedules(ctx, in, sp, p)
}

// allAppRunner reports whether every service of revs runs on App Runner
// (by the spec of its newest revision).
func allAppRunner(revs []awsstate.Revision) bool {
	seen := map[string]bool{}
	for _, r := range revs { // newest first per service
		if seen[r.Service] {
			continue
		}
		seen[r.Service] = true
		var svc spec.Service
		if json.Unmarshal(r.Spec, &svc) != nil || !isAppRunner(&svc) {
			return false
		}
	}
	return true
}

// hasECS reports whether any of the services named runs on ECS.
func hasECS(sp *spec.Spec, names []string) bool {
	for _, n := range names {
		if !isAppRunner(sp.Services[n]) {
			return true
		}
	}
	return false
}

// appRunnerImage is the image a deploy gives App Runner, pinned by digest:
// an ECR image already pinned goes as it is; anything else (a local image,
// a build:) is pushed to the service's ECR repository, as for Fargate.
func (e *Env) appRunnerImage(ctx context.Context, sp *spec.Spec, svc *spec.Service, image string, p progress) (string, error) {
	if image == "" {
		image = svc.Image
	}
	if image == "" && svc.Build != nil {
		if e.opts.Build == nil {
			return "", fmt.Errorf("%w: %s builds from %s, and this berth cannot build; set image:", ErrRefused, svc.Name, svc.Build.Context)
		}
		dir := filepath.Join(filepath.Dir(sp.File), svc.Build.Context)
		p.phase("build", "%s: building from %s", svc.Name, dir)
		var log bytes.Buffer
		id, err := e.opts.Build(ctx, svc.Build, dir, svc.Platform, &log)
		if err != nil {
			return "", fmt.Errorf("build %s: %w", svc.Name, err)
		}
		image = id
	}
	if strings.Contains(image, ".dkr.ecr.") && strings.Contains(image, "@sha256:") {
		return image, nil
	}
	p.phase("build", "%s: pushing %s to ECR", svc.Name, image)
	return images.Push(ctx, e.c, image, e.repoName(svc.Name), e.tagMap(map[string]string{TagService: svc.Name}))
}

// appRunnerRelease runs a service's release: command on the cluster with
// what App Runner runs, the new image and the spec's env and command: the
// migration runs before App Runner serves the revision.
func (e *Env) appRunnerRelease(ctx context.Context, svc *spec.Service, num int, image string, p progress) error {
	rt, err := e.runner(svc.Name).Runtime(ctx, svc.AppRunner)
	if err != nil {
		return err
	}
	rt.Image = image
	rt.Env = maps.Clone(svc.Env)
	rt.Command = svc.Command
	in, td, err := e.appRunnerTaskDef(ctx, svc, num, rt)
	if err != nil {
		return err
	}
	p.phase("release", "%s: running release %s on cluster %s", svc.Name, strings.Join(svc.Release, " "), in.Cluster)
	r := taskRun{Service: svc.Name, Kind: "release", Command: svc.Release, TaskDef: td, Revision: num}
	t, err := e.startTask(ctx, in, r)
	if err != nil {
		return err
	}
	if t, err = e.waitTask(ctx, in, t, r, p); err != nil {
		return err
	}
	if t.State != api.TaskSucceeded {
		return fmt.Errorf("release %s %s", strings.Join(svc.Release, " "), t.Message)
	}
	return nil
}

// taskInfra finds or makes what a task beside App Runner needs: the
// network, the services' security group, the cluster and the log group
// (no load balancer: App Runner serves the traffic).
func (e *Env) taskInfra(ctx context.Context) (*infra, error) {
	in := &infra{}
	if err := e.network(ctx, in); err != nil {
		return nil, err
	}
	if err := e.securityGroups(ctx, in); err != nil {
		return nil, err
	}
	if err := e.cluster(ctx, in, true); err != nil {
		return nil, err
	}
	if err := e.logGroup(ctx, in); err != nil {
		return nil, err
	}
	return in, nil
}

// appRunnerTaskDef registers a task definition that runs like the App
// Runner service (rt: its image, command, env and secret references), for
// a task on the environment's cluster, and lets the execution role read
// those secrets.
func (e *Env) appRunnerTaskDef(ctx context.Context, svc *spec.Service, num int, rt *apprunner.Runtime) (*infra, string, error) {
	in, err := e.taskInfra(ctx)
	if err != nil {
		return nil, "", err
	}
	role, err := e.execRole(ctx)
	if err != nil {
		return nil, "", err
	}
	if err := e.allowSecrets(ctx, rt.Secrets); err != nil {
		return nil, "", err
	}
	run := *svc
	run.Image, run.Command, run.Env = rt.Image, rt.Command, rt.Env
	run.Secrets = slices.Sorted(maps.Keys(rt.Secrets))
	run.Sidecars, run.SidecarOrder, run.DependsOn = nil, nil, nil
	if rt.CPU > 0 {
		run.CPU = rt.CPU
	}
	if rt.Memory > 0 {
		run.Memory = rt.Memory
	}
	if rt.Port > 0 {
		run.Port = rt.Port
	}
	reg, err := fargate.TaskDefinition(fargate.Input{
		App: e.App, Env: e.Name, Service: &run, Revision: num, Image: rt.Image,
		SecretARNs: rt.Secrets, LogGroup: in.LogGroup, Region: e.Region, ExecutionRoleARN: role, Platform: svc.Platform,
	})
	if err != nil {
		return nil, "", err
	}
	out, err := e.c.ECS.RegisterTaskDefinition(ctx, reg)
	if err != nil {
		return nil, "", fmt.Errorf("register a task definition of %s from its App Runner service: %w", svc.Name, err)
	}
	return in, aws.ToString(out.TaskDefinition.TaskDefinitionArn), nil
}

// appRunnerSecretsPolicy is the execution role's inline policy that reads
// the secrets App Runner services reference.
const appRunnerSecretsPolicy = "berth-apprunner-secrets"

// allowSecrets lets the execution role read the secrets App Runner reads
// (Secrets Manager secrets and SSM parameters outside berth's prefix).
func (e *Env) allowSecrets(ctx context.Context, arns map[string]string) error {
	if len(arns) == 0 {
		return nil
	}
	var sm, ssm []string
	for _, a := range slices.Sorted(maps.Values(arns)) {
		if strings.Contains(a, ":ssm:") {
			ssm = append(ssm, a)
		} else {
			sm = append(sm, a)
		}
	}
	var st []map[string]any
	if len(sm) > 0 {
		st = append(st, map[string]any{"Effect": "Allow", "Action": []string{"secretsmanager:GetSecretValue"}, "Resource": sm})
	}
	if len(ssm) > 0 {
		st = append(st, map[string]any{"Effect": "Allow", "Action": []string{"ssm:GetParameters"}, "Resource": ssm})
	}
	doc, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": st})
	if _, err := e.c.IAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(e.execRoleName()), PolicyName: aws.String(appRunnerSecretsPolicy), PolicyDocument: aws.String(string(doc))}); err != nil {
		return fmt.Errorf("let IAM role %s read the App Runner service's secrets: %w", e.execRoleName(), err)
	}
	return nil
}

// appRunnerTask is the task definition and infrastructure of a task run on
// the service of cur, when that service runs on App Runner (ok false
// otherwise): registered from what the App Runner service runs now.
func (e *Env) appRunnerTask(ctx context.Context, cur *awsstate.Revision) (in *infra, taskDef string, ok bool, err error) {
	var svc spec.Service
	if json.Unmarshal(cur.Spec, &svc) != nil || !isAppRunner(&svc) {
		return nil, "", false, nil
	}
	rt, err := e.runner(svc.Name).Runtime(ctx, svc.AppRunner)
	if err != nil {
		return nil, "", true, err
	}
	in, td, err := e.appRunnerTaskDef(ctx, &svc, cur.Number, rt)
	return in, td, true, err
}

// rollbackAppRunner returns an App Runner service to an earlier revision's
// image by digest (to 0: the previous one). ok is false when service does
// not run on App Runner.
func (e *Env) rollbackAppRunner(ctx context.Context, l *awsstate.Lock, sp *spec.Spec, revs []awsstate.Revision, service string, to int, p progress) (api.Message, bool) {
	cur := activeOf(revs)
	if cur == nil {
		return api.Message{}, false
	}
	var curSvc spec.Service
	if json.Unmarshal(cur.Spec, &curSvc) != nil || !isAppRunner(&curSvc) {
		return api.Message{}, false
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
		for i := range revs { // newest first
			if r := &revs[i]; r.Number < cur.Number && r.State == awsstate.StateRetired {
				target = r
				break
			}
		}
	}
	switch {
	case target == nil && to != 0:
		return failure(fmt.Errorf("%w: %s has no revision %d in %s; see \"berth revisions --env %s %s\"", awsstate.ErrNotFound, service, to, e.what(), e.Name, service)), true
	case target == nil:
		return failure(fmt.Errorf("%w: %s has no earlier revision to roll back to in %s", awsstate.ErrNotFound, service, e.what())), true
	case target.Number == cur.Number:
		return failure(fmt.Errorf("%w: revision %d of %s already serves", ErrRefused, target.Number, service)), true
	case target.State == awsstate.StateFailed || target.State == awsstate.StateDeploying:
		return failure(fmt.Errorf("%w: revision %d of %s never deployed successfully (%s); pick another with --to", ErrRefused, target.Number, service, target.Reason)), true
	}
	var svc spec.Service
	if err := json.Unmarshal(target.Spec, &svc); err != nil {
		return failure(fmt.Errorf("read revision %d of %s: %w", target.Number, service, err)), true
	}
	svc.AppRunner = curSvc.AppRunner
	start := e.opts.Now()
	p.phase("switch", "%s: App Runner service back to revision %d (%s)", service, target.Number, target.Image)
	res, err := e.runner(service).Rollback(ctx, &svc, target.Image, &phaseWriter{p: p, phase: "switch"})
	if err != nil {
		return failure(fmt.Errorf("rollback of %s to revision %d failed; revision %d keeps serving: %w", service, target.Number, cur.Number, err)), true
	}
	changes := []awsstate.StateChange{
		{Service: service, Number: target.Number, From: target.State, To: awsstate.StateActive, Reason: fmt.Sprintf("rolled back to from %d", cur.Number)},
		{Service: service, Number: cur.Number, From: awsstate.StateActive, To: awsstate.StatePrevious, Reason: fmt.Sprintf("rolled back to %d", target.Number)},
	}
	for _, r := range revs {
		if r.State == awsstate.StatePrevious && r.Number != target.Number {
			changes = append(changes, awsstate.StateChange{Service: service, Number: r.Number, From: awsstate.StatePrevious, To: awsstate.StateRetired,
				Reason: fmt.Sprintf("revision %d was rolled back to", target.Number)})
		}
	}
	if err := e.state.UpdateRevisionStates(ctx, changes...); err != nil {
		return failure(err), true
	}
	if sp != nil && target.TaskDefinition != "" {
		// Scheduled tasks run like the revision serving again.
		if err := e.syncAppRunnerSchedules(ctx, sp, p); err != nil {
			return failure(fmt.Errorf("revision %d of %s serves again on App Runner, but %w; run berth rollback --env %s again to finish", target.Number, service, err, e.Name)), true
		}
	}
	took := e.opts.Now().Sub(start).Round(time.Millisecond)
	_, _ = e.state.AddEvent(ctx, eventOf(service, "rollback", fmt.Sprintf("rolled back from revision %d to %d on App Runner in %s (%s)", cur.Number, target.Number, took, target.Image)))
	p.phase("done", "%s: revision %d serves on App Runner", service, target.Number)
	var urls []string
	if res.URL != "" {
		urls = []string{res.URL}
	}
	return api.Message{Kind: api.KindResult, Time: time.Now(), OK: true, Deployed: []api.Deploy{{Service: service, Revision: target.Number, URLs: urls}}}, true
}

// appRunnerStatus fills st from the App Runner service svc runs on.
func (e *Env) appRunnerStatus(ctx context.Context, st *api.ServiceStatus, svc *spec.Service) error {
	s, err := e.runner(svc.Name).Status(ctx, svc.AppRunner)
	if err != nil {
		return err
	}
	switch s.State {
	case "RUNNING":
		st.State = "running"
	case "PAUSED":
		st.State = "paused"
	case "OPERATION_IN_PROGRESS":
		st.State = "deploying"
	default:
		st.State = strings.ToLower(s.State)
	}
	st.Image = s.Image
	st.URLs = nil
	if s.URL != "" {
		st.URLs = []string{s.URL}
	}
	st.Message = "on App Runner " + s.ARN
	if s.Last != nil && s.Last.Status != "SUCCEEDED" {
		st.Message += fmt.Sprintf("; last operation %s %s", s.Last.Type, s.Last.Status)
	}
	return nil
}

// pauseAppRunner pauses or resumes the App Runner service svc runs on and
// records it.
func (e *Env) pauseAppRunner(ctx context.Context, cur *awsstate.Revision, svc *spec.Service, pause bool, w io.Writer) error {
	r := e.runner(svc.Name)
	kind := "pause"
	if pause {
		if err := r.Pause(ctx, svc.AppRunner, w); err != nil {
			return err
		}
	} else {
		kind = "resume"
		if err := r.Resume(ctx, svc.AppRunner, w); err != nil {
			return err
		}
	}
	_, err := e.state.AddEvent(ctx, eventOf(svc.Name, kind, fmt.Sprintf("%sd revision %d on App Runner", kind, cur.Number)))
	return err
}

// logSource is where a service's log lines are: the app's log group and
// the service's stream prefix, or for a service on App Runner its
// application log group (streams instance/ID).
func (e *Env) logSource(ctx context.Context, service, container string) (group, prefix string, err error) {
	revs, err := e.state.Revisions(ctx, service)
	if err != nil {
		return "", "", err
	}
	if cur := activeOf(revs); cur != nil {
		var svc spec.Service
		if json.Unmarshal(cur.Spec, &svc) == nil && isAppRunner(&svc) {
			app, _, err := apprunner.LogGroups(svc.AppRunner)
			return app, "", err
		}
	}
	prefix = service + "/"
	if container != "" {
		prefix += container + "/"
	}
	return e.logGroupName(), prefix, nil
}

// AdoptAppRunner records an imported App Runner service as revision 1 of
// its berth service (active, with the image it runs) and tags it as
// berth's, so status, revisions and rollback know it. A service that
// already has revisions in the environment is refused.
func (e *Env) AdoptAppRunner(ctx context.Context, imp *apprunner.Imported) (int, error) {
	svc := imp.Service
	ctx, _, unlock, err := e.lock(ctx, "import")
	if err != nil {
		return 0, err
	}
	defer unlock()
	revs, err := e.state.Revisions(ctx, svc.Name)
	if err != nil {
		return 0, err
	}
	if len(revs) > 0 {
		return 0, fmt.Errorf("%w: %s already has revisions of service %s in %s; import it under another name (--name)", ErrRefused, e.App, svc.Name, e.Name)
	}
	if err := apprunner.New(e.c).Adopt(ctx, svc.AppRunner, e.App, e.Name, svc.Name); err != nil {
		return 0, err
	}
	num, err := e.state.NextRevision(ctx, svc.Name)
	if err != nil {
		return 0, err
	}
	specJSON, _ := json.Marshal(svc)
	// A rollback to this revision names its image by digest: a tag App
	// Runner runs is resolved now, while it still names this image.
	image := e.pinECR(ctx, svc.Image)
	rev := awsstate.Revision{Number: num, Service: svc.Name, State: awsstate.StateActive, Image: image, Created: e.opts.Now(),
		By: awsstate.CurrentHolder("import").String(), Reason: "imported from App Runner", Spec: specJSON}
	if err := e.state.PutRevision(ctx, rev); err != nil {
		return 0, err
	}
	_, _ = e.state.AddEvent(ctx, eventOf(svc.Name, "import", fmt.Sprintf("App Runner service %s imported as revision %d (%s)", svc.AppRunner, num, image)))
	return num, nil
}

// pinECR is a private ECR image reference (ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG)
// pinned by digest (REPO@sha256:...), read with BatchGetImage; anything
// else, or a tag ECR does not answer for, is returned as it is.
func (e *Env) pinECR(ctx context.Context, ref string) string {
	if strings.Contains(ref, "@sha256:") || !strings.Contains(ref, ".dkr.ecr.") {
		return ref
	}
	host, path, ok := strings.Cut(ref, "/")
	if !ok {
		return ref
	}
	repo, tag := path, "latest"
	if i := strings.LastIndex(path, ":"); i >= 0 {
		repo, tag = path[:i], path[i+1:]
	}
	account, _, _ := strings.Cut(host, ".")
	out, err := e.c.ECR.BatchGetImage(ctx, &ecr.BatchGetImageInput{
		RegistryId: aws.String(account), RepositoryName: aws.String(repo),
		ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String(tag)}},
	})
	if err != nil || len(out.Images) == 0 || out.Images[0].ImageId == nil || aws.ToString(out.Images[0].ImageId.ImageDigest) == "" {
		return ref
	}
	return host + "/" + repo + "@" + aws.ToString(out.Images[0].ImageId.ImageDigest)
}
