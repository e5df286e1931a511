package controlplane

// A deploy (and a rollback, and a resume) moves a service through these
// phases. Any failure before the switch removes what it started and leaves
// the serving revision untouched:
//
//	prepare ──▶ build ──▶ release ──▶ start ──▶ healthy ──▶ switch ──▶ drain ──▶ done
//	   │          │          │          │          │
//	   └──────────┴──────────┴──────────┴──────────┴──▶ rolled back (previous keeps serving)
//
// After the switch nothing can fail the deploy: the new revision serves, and
// draining only decides when the old containers stop.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/apierr"
	"github.com/berth-dev/berth/internal/controlplane/tasks"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/store"
)

// phase is a step of a deploy (see the diagram).
type phase int

const (
	phasePrepare phase = iota
	phaseBuild
	phaseRelease
	phaseStart
	phaseHealthy
	phaseSwitch
	phaseDrain
	phaseDone
	phaseRolledBack
)

func (p phase) String() string {
	return [...]string{"prepare", "build", "release", "start", "healthy", "switch", "drain", "done", "rolled back"}[p]
}

// Errors of the deploy lifecycle, for errors.Is and API codes: those of
// every subsystem (internal/controlplane/apierr).
var (
	ErrBusy       = apierr.ErrBusy
	ErrInvalid    = apierr.ErrInvalid
	ErrNotFound   = apierr.ErrNotFound
	ErrNoRevision = apierr.ErrNoRevision
)

// refuse makes err bad input whose message stands alone as the CLI's
// one-line reason (a spec's "FILE:LINE: FIELD: what is wrong", "web is
// paused: ..."), without ErrInvalid's words in front; it is ErrInvalid for
// errors.Is and the API's code.
func refuse(err error) error { return apierr.Refuse(err) }

// progress receives what a deploy reports as it goes.
type progress func(api.Message)

func (p progress) phase(ph phase, format string, args ...any) {
	p(api.Message{Kind: api.KindPhase, Time: time.Now(), Phase: ph.String(), Text: fmt.Sprintf(format, args...)})
}

func (p progress) log(source, text string) {
	p(api.Message{Kind: api.KindLog, Time: time.Now(), Source: source, Text: text})
}

// deploy validates req, then rolls out each named service. It returns the
// final result message.
func (d *Daemon) deploy(ctx context.Context, req api.DeployRequest, out progress) api.Message {
	sp, err := spec.Parse(req.File, []byte(req.YAML))
	if err != nil {
		return failure(refuse(err), nil)
	}
	if req.Promote {
		return d.promoteDeploy(ctx, sp, req, out) // canary.go
	}
	names, err := d.checkDeploy(ctx, sp, req)
	if err != nil {
		return failure(err, nil)
	}
	edgePlan, err := d.entrypoints.Plan(ctx, sp, req) // internal/controlplane/traffic
	if err != nil {
		return failure(err, nil)
	}
	ss := make([]*service, len(names))
	for i, n := range names {
		ss[i] = d.service(sp.App, n)
	}
	if err := acquire("deploy", ss...); err != nil {
		return failure(err, nil)
	}
	defer release(ss...)
	if err := refuseDuringCanary(ss); err != nil {
		return failure(err, nil)
	}
	if err := d.checkCanary(ss, req.Canary); err != nil {
		return failure(err, nil)
	}
	// The last checks, with the services held: they read what a pause or
	// a secret change could otherwise alter in between.
	if err := checkPaused(ss); err != nil {
		return failure(err, nil)
	}
	if err := d.checkSecrets(ctx, sp, names); err != nil {
		return failure(err, nil)
	}
	unclaim, err := d.claimHosts(ctx, sp, names) // hosts.go
	if err != nil {
		return failure(err, nil)
	}
	defer unclaim()

	now := time.Now().UTC()
	app, err := d.store.GetApp(ctx, sp.App)
	if errors.Is(err, store.ErrNotFound) {
		app = store.App{Name: sp.App, CreatedAt: now}
	} else if err != nil {
		return failure(err, nil)
	}
	app.SpecYAML, app.SpecFile, app.UpdatedAt = req.YAML, req.File, now
	if err := d.store.PutApp(ctx, app); err != nil {
		return failure(err, nil)
	}
	// The stored spec is the app's spec from now on, for `berth task run
	// NAME` and for the schedules (installed again on a daemon start).
	d.tasks.InstallSchedules(sp)
	for _, s := range ss {
		if _, err := d.store.GetService(ctx, s.app, s.name); errors.Is(err, store.ErrNotFound) {
			if err := d.store.PutService(ctx, store.Service{App: s.app, Name: s.name, UpdatedAt: now}); err != nil {
				return failure(err, nil)
			}
		}
	}
	if err := d.ensureNetwork(ctx, sp.App); err != nil {
		return failure(fmt.Errorf("create the app network: %w", err), nil)
	}
	d.internal.Ensure(ctx, sp) // internal/controlplane/traffic
	// Once the deploy is over, the engine prepares for the app's next task
	// (internal/controlplane/tasks).
	d.openApp(sp.App)
	defer d.tasks.Warm(sp.App)

	// Services roll out side by side; each one switches, or fails and
	// leaves its previous revision serving, on its own.
	results := make([]api.Deploy, len(ss))
	errs := make([]error, len(ss))
	var wg sync.WaitGroup
	for i, s := range ss {
		svc := *sp.Services[s.name]
		if ref, ok := req.Images[s.name]; ok {
			svc.Image, svc.Build = ref, nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer d.containErr(&errs[i], "deploy", "app", s.app, "service", s.name)
			rev, err := d.deployService(ctx, s, &svc, req.BaseDir, req.Canary, out)
			errs[i] = err
			results[i] = api.Deploy{Service: s.name, Revision: rev, URLs: d.urls(sp.App, &svc)}
		}()
	}
	wg.Wait()
	var deployed []api.Deploy
	for i, err := range errs {
		if err == nil {
			deployed = append(deployed, results[i])
		}
	}
	for i, err := range errs {
		if err != nil {
			var f *instanceFailure
			var lines []string
			if errors.As(err, &f) {
				lines = f.lastLogs
			}
			res := failure(fmt.Errorf("deploy of %s failed: %w", ss[i].name, err), lines)
			res.Deployed = deployed
			return res
		}
	}
	if err := d.entrypoints.Apply(ctx, edgePlan); err != nil {
		res := failure(fmt.Errorf("entrypoints: %w", err), nil)
		res.Deployed = deployed
		return res
	}
	return api.Message{Kind: api.KindResult, Time: time.Now(), OK: true, Deployed: deployed}
}

// checkDeploy rejects a deploy before anything changes: unknown services,
// image overrides for unknown services, missing images, memory limits above
// the machine's. (Hosts are claimed later, atomically: claimHosts.)
func (d *Daemon) checkDeploy(ctx context.Context, sp *spec.Spec, req api.DeployRequest) ([]string, error) {
	names := req.Services
	if len(names) == 0 {
		names = sp.ServiceOrder
	}
	for _, n := range names {
		if _, ok := sp.Services[n]; !ok {
			return nil, fmt.Errorf("%w: unknown service %q: %s defines %s", ErrNotFound, n, req.File, strings.Join(sp.ServiceOrder, ", "))
		}
	}
	for n := range req.Images {
		if _, ok := sp.Services[n]; !ok {
			return nil, fmt.Errorf("%w: --image names unknown service %q: %s defines %s", ErrNotFound, n, req.File, strings.Join(sp.ServiceOrder, ", "))
		}
	}
	// A missing image is bad input: refuse before anything is recorded.
	for _, n := range names {
		sv := sp.Services[n]
		ref, build := sv.Image, sv.Build != nil
		if o, ok := req.Images[n]; ok {
			ref, build = o, false
		}
		if !build {
			if _, err := d.pods.ImageID(ctx, ref); err != nil {
				return nil, fmt.Errorf("service %s: %w", n, err)
			}
		}
		// Sidecars' images, and platforms (sidecar.go).
		if err := d.checkImages(ctx, sv, ref, build); err != nil {
			return nil, fmt.Errorf("service %s: %w", n, err)
		}
	}
	if err := d.checkMemory(ctx, sp, names); err != nil {
		return nil, err
	}
	if err := d.checkNetworkHeld(ctx, sp.App); err != nil { // owner.go
		return nil, err
	}
	return names, nil
}

// checkMemory refuses a memory limit above the machine's memory: the
// engine would take it, and the limit would mean nothing. The spec cannot
// know the machine, so the daemon checks, at the spec's line.
func (d *Daemon) checkMemory(ctx context.Context, sp *spec.Spec, names []string) error {
	hm, ok := d.pods.(runtime.HostMemory)
	if !ok {
		return nil
	}
	var total int64
	check := func(field string, limit int64) error {
		if limit == 0 {
			return nil
		}
		if total == 0 {
			var err error
			if total, err = hm.MemTotal(ctx); err != nil || total <= 0 {
				d.log.Warn("the machine's memory is unknown; memory limits not checked against it", "err", err)
				total = -1
			}
		}
		if total > 0 && limit > total {
			return refuse(sp.FieldError(field, "%s is more than this machine's %s", spec.FormatSize(limit), spec.FormatSize(total)))
		}
		return nil
	}
	for _, n := range names {
		sv := sp.Services[n]
		if err := check("services."+n+".memory", sv.Memory); err != nil {
			return err
		}
		for _, sc := range sidecarNames(sv) {
			if err := check("services."+n+".sidecars."+sc+".memory", sv.Sidecars[sc].Memory); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkPaused refuses to deploy a paused service: a deploy that switched
// it would report success while the edge answers 503 (paused), and
// silently resuming it would undo a pause someone chose. The caller holds
// the services busy, so no pause or resume runs in between.
func checkPaused(ss []*service) error {
	for _, s := range ss {
		s.mu.Lock()
		paused := s.paused
		s.mu.Unlock()
		if paused {
			return refuse(fmt.Errorf("%s is paused: run `berth resume %s` first", s.name, s.name))
		}
	}
	return nil
}

// checkSecrets refuses a deploy whose services (or their sidecars) list a
// secret that was never set: the containers would start without the
// variable, and the app fail later, far from the cause.
func (d *Daemon) checkSecrets(ctx context.Context, sp *spec.Spec, names []string) error {
	for _, n := range names {
		sv := sp.Services[n]
		have, err := d.store.SecretValues(ctx, sp.App, n)
		if err != nil {
			return err
		}
		field, missing := missingSecrets(sv, have)
		if len(missing) > 0 {
			return refuse(sp.FieldError(field, "%s", apierr.MissingSecrets(n, missing)))
		}
	}
	return nil
}

// missingSecrets returns the secrets the service and its sidecars list
// that have no value in have, and the field of the first one.
func missingSecrets(sv *spec.Service, have map[string]string) (field string, missing []string) {
	note := func(f, k string) {
		if _, ok := have[k]; ok || slices.Contains(missing, k) {
			return
		}
		if field == "" {
			field = f
		}
		missing = append(missing, k)
	}
	for i, k := range sv.Secrets {
		note(fmt.Sprintf("services.%s.secrets[%d]", sv.Name, i), k)
	}
	for _, name := range sidecarNames(sv) {
		for i, k := range sv.Sidecars[name].Secrets {
			note(fmt.Sprintf("services.%s.sidecars.%s.secrets[%d]", sv.Name, name, i), k)
		}
	}
	return field, missing
}

func failure(err error, lastLogs []string) api.Message {
	return api.Message{Kind: api.KindResult, Time: time.Now(), Error: err.Error(), Code: errorCode(err), LastLogs: lastLogs}
}

// deployService resolves the image (building it if needed), records a new
// revision and rolls it out, or, with a canary percentage, starts it as a
// canary (canary.go).
func (d *Daemon) deployService(ctx context.Context, s *service, sp *spec.Service, baseDir string, canaryPercent float64, out progress) (int, error) {
	num, err := d.store.NextRevisionNumber(ctx, s.app, s.name)
	if err != nil {
		return 0, err
	}
	rec := store.Revision{App: s.app, Service: s.name, Number: num, Status: store.RevisionStatus("deploying"), CreatedAt: time.Now().UTC()}
	fail := func(err error) (int, error) {
		rec.Status, rec.Message = store.RevisionStatus("failed"), err.Error()
		_ = d.store.PutRevision(context.WithoutCancel(ctx), rec)
		d.event(s.app, s.name, "deploy-failed", fmt.Sprintf("revision %d failed: %v", num, err))
		s.mu.Lock()
		s.lastFailure = err.Error()
		s.mu.Unlock()
		out.phase(phaseRolledBack, "%s: revision %d abandoned; %s", s.name, num, servingNote(s))
		return 0, err
	}

	// build: resolve the image to an ID the revision pins.
	image := sp.Image
	if sp.Build != nil {
		image = fmt.Sprintf("berth/%s-%s:%d", s.app, s.name, num)
		dir := sp.Build.Context
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(baseDir, dir)
		}
		if _, err := os.Stat(dir); err != nil {
			return fail(fmt.Errorf("%w: build context %s not found on the server (berth builds on the daemon's machine)", ErrInvalid, dir))
		}
		out.phase(phaseBuild, "%s: building %s from %s", s.name, image, dir)
		w := &lineWriter{fn: func(line string) { out.log("build", line) }}
		id, err := d.build(ctx, dir, sp.Build.Dockerfile, image, sp.Platform, sp.Build.Args, w)
		w.Flush()
		if err != nil {
			return fail(fmt.Errorf("build failed: %w", err))
		}
		rec.ImageID = id
	} else {
		id, err := d.pods.ImageID(ctx, image)
		if err != nil {
			return fail(err)
		}
		rec.ImageID = id
	}
	rec.Image = sp.Image
	if sp.Build != nil {
		rec.Image = image
	}
	// Pin the image by ID so a retagged image never changes a revision.
	pinned := *sp
	pinned.Image, pinned.Build = rec.Image, nil
	if pinned.Sidecars, err = d.pinSidecars(ctx, s, sp, num, baseDir, out); err != nil {
		return fail(err)
	}
	rec.Spec, err = json.Marshal(pinned)
	if err != nil {
		return fail(err)
	}
	if err := d.store.PutRevision(ctx, rec); err != nil {
		return fail(err)
	}
	rev := revision{number: num, spec: &pinned, image: rec.ImageID}

	// release: the new revision's release command, before any of its
	// instances exists.
	if len(pinned.Release) > 0 {
		if err := d.tasks.Release(ctx, s.app, s.name, rev.task(), tasks.ReleaseOutput{
			Phase: func(msg string) { out.phase(phaseRelease, "%s", msg) },
			Line:  func(line string) { out.log("release", line) },
		}); err != nil {
			var rf *tasks.ReleaseError
			if errors.As(err, &rf) {
				err = &instanceFailure{err: err, lastLogs: rf.LastLines}
			}
			return fail(err)
		}
	}

	if canaryPercent > 0 {
		if err := d.startCanary(ctx, s, rev, canaryPercent, out); err != nil {
			return fail(err)
		}
		return num, nil
	}
	// A deploy applies the spec's count: a `berth scale` override lasts
	// until the next deploy.
	if err := d.rollout(ctx, s, rev, true, out); err != nil {
		return fail(err)
	}
	return num, nil
}

func servingNote(s *service) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rev == 0 {
		return "nothing was serving before"
	}
	return fmt.Sprintf("revision %d keeps serving", s.rev)
}

// rollout brings rev up next to what serves, switches the edge to it, drains
// and stops the old instances, and records the outcome. The caller holds s
// busy. Existing stopped containers of rev (a rollback target) are reused.
// With resetScale the spec's instance count replaces a `berth scale`
// override; otherwise the override stays.
func (d *Daemon) rollout(ctx context.Context, s *service, rev revision, resetScale bool, out progress) error {
	ctx, cancel := context.WithTimeoutCause(ctx, d.cfg.DeployTimeout, fmt.Errorf("deploy timeout (%s) reached", d.cfg.DeployTimeout))
	defer cancel()

	s.mu.Lock()
	want := s.desired
	s.mu.Unlock()
	if want == 0 || resetScale {
		want = rev.spec.DesiredInstances()
	}

	out.phase(phaseStart, "%s: starting %d instance(s) of revision %d", s.name, want, rev.number)
	ins, err := d.bringUp(ctx, s.app, rev, want)
	if err != nil {
		return err
	}
	out.phase(phaseHealthy, "%s: revision %d healthy (%d/%d instances)", s.name, rev.number, len(ins), want)
	return d.switchTo(ctx, s, rev, ins, resetScale, out, nil)
}

// switchTo moves all of the service's traffic to ins, healthy instances of
// rev, then drains and stops the old instances and records the outcome.
// afterPublish, if set, runs right after the edge serves ins (a promoted
// canary removes its split there). The caller holds s busy.
func (d *Daemon) switchTo(ctx context.Context, s *service, rev revision, ins []*instance, resetScale bool, out progress, afterPublish func()) error {
	// switch: one atomic edge update moves all traffic.
	s.mu.Lock()
	old, oldRev := s.instances, s.rev
	s.rev, s.spec, s.image, s.instances = rev.number, rev.spec, rev.image, ins
	if resetScale {
		s.desired = 0
	}
	desired := s.desired
	s.crashes, s.crashMsg, s.lastFailure = 0, "", ""
	d.publish(s)
	paused := s.paused
	s.mu.Unlock()
	if afterPublish != nil {
		afterPublish()
	}
	for _, in := range ins {
		d.monitor(s, in)
	}
	if rev.spec.Port != 0 {
		out.phase(phaseSwitch, "%s: all traffic on revision %d", s.name, rev.number)
	} else {
		out.phase(phaseSwitch, "%s: revision %d runs", s.name, rev.number)
	}

	if err := d.recordSwitch(context.WithoutCancel(ctx), s, rev.number, oldRev, paused, desired); err != nil {
		d.log.Error("record switch", "service", s.name, "err", err)
	}
	if oldRev == 0 {
		d.event(s.app, s.name, "deploy", fmt.Sprintf("revision %d serves (first revision)", rev.number))
	} else {
		d.event(s.app, s.name, "deploy", fmt.Sprintf("revision %d serves (was %d)", rev.number, oldRev))
	}

	// drain, then park the old instances: they stay as the rollback target.
	if len(old) > 0 {
		out.phase(phaseDrain, "%s: draining %d instance(s) of revision %d", s.name, len(old), oldRev)
		d.keepRollbackTarget(context.WithoutCancel(ctx), s, old)
	}
	d.retireRevisions(context.WithoutCancel(ctx), s, rev.number, oldRev)
	out.phase(phaseDone, "%s: revision %d serves", s.name, rev.number)
	return nil
}

// bringUp starts n healthy instances of rev, reusing its stopped containers
// first. All or nothing: on failure every instance it started is removed.
func (d *Daemon) bringUp(ctx context.Context, app string, rev revision, n int) ([]*instance, error) {
	existing, err := d.pods.ListPods(ctx, map[string]string{
		runtime.LabelApp: app, runtime.LabelService: rev.spec.Name,
		runtime.LabelRevision: strconv.Itoa(rev.number), runtime.LabelRole: string(runtime.RoleInstance),
	})
	if err != nil {
		return nil, err
	}
	var secrets map[string]string
	if len(existing) < n {
		if secrets, err = d.store.SecretValues(ctx, app, rev.spec.Name); err != nil {
			return nil, err
		}
	}
	// Extra stopped pods of this revision are not needed.
	for _, p := range existing[min(n, len(existing)):] {
		_ = d.pods.RemovePod(ctx, p.ID)
	}

	var (
		mu    sync.Mutex
		ins   []*instance
		first error
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	for i := range n {
		reuse := ""
		if i < len(existing) {
			reuse = existing[i].ID
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			in, err := func() (in *instance, err error) {
				defer d.containErr(&err, "start instance", "app", app)
				return d.startInstance(ctx, app, rev, reuse, secrets)
			}()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = err
					cancel(errors.New("another instance failed"))
				}
				return
			}
			ins = append(ins, in)
		}()
	}
	wg.Wait()
	if first != nil {
		for _, in := range ins {
			d.removeInstance(context.WithoutCancel(ctx), in)
		}
		return nil, first
	}
	return ins, nil
}

// drainAndStop drains old instances, which the edge no longer routes to
// (see drain: their requests through the edge, then those by name); then
// it stops their containers (kept for a rollback or resume) or, with
// remove, removes them.
func (d *Daemon) drainAndStop(ctx context.Context, s *service, old []*instance, remove bool) {
	d.drain(ctx, s, old)
	var wg sync.WaitGroup
	for _, in := range old {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer d.contain("stop instance", "instance", in.id)
			if remove {
				d.removeInstance(ctx, in)
			} else {
				d.stopInstance(ctx, in)
			}
		}()
	}
	wg.Wait()
	s.mu.Lock()
	for _, in := range old {
		in.state = stateStopped
	}
	s.mu.Unlock()
}

// drain takes instances out of service and waits for their in-flight
// requests: those through the edge, which no longer routes to them (up to
// the drain time), then those of the app's containers that call them by
// name (deregister). Only then may they stop.
func (d *Daemon) drain(ctx context.Context, s *service, old []*instance) {
	ids := make([]string, len(old))
	s.mu.Lock()
	for i, in := range old {
		ids[i] = in.id
		in.state = stateDraining
		if in.stopMonitor != nil {
			in.stopMonitor()
		}
	}
	s.mu.Unlock()
	d.waitDrained(ctx, s, ids)
	d.deregister(ctx, s, old)
}

// deregisterDelay is how long an instance taken off its name keeps
// serving before it stops. The app's containers call each other by name
// (http://api:8080): stopped while the name still gave its address, an
// instance would leave a caller's connection unanswered until the
// caller's timeout (the engine takes the name away only after the
// container's network is gone). Off its name first, it is called no more,
// and what was on its way to it arrives within the delay: a request that
// looked the name up just before, and a connection attempt the engine's
// reconnect (on Docker, see its engine's Deregister) made wait the SYN's one-second
// retransmission timeout. Requests still running after it are the app's
// own shutdown's to finish (SIGTERM).
const deregisterDelay = 1500 * time.Millisecond

// deregister takes instances that no longer receive edge traffic off
// their name on the app network, then waits deregisterDelay. It comes after
// the edge's drain: leaving the name takes the published port away, and
// with it what is still in flight through the edge past the drain time.
func (d *Daemon) deregister(ctx context.Context, s *service, old []*instance) {
	dr, ok := d.pods.(runtime.Deregisterer)
	if !ok || len(old) == 0 {
		return
	}
	var (
		wg     sync.WaitGroup
		listed atomic.Bool
	)
	for _, in := range old {
		wg.Go(func() {
			was, err := dr.Deregister(ctx, in.podID)
			if err != nil && !errors.Is(err, runtime.ErrNotFound) {
				d.log.Warn("take an instance off its name", "service", s.name, "instance", in.id, "err", err)
			}
			if was {
				listed.Store(true)
			}
		})
	}
	wg.Wait()
	if !listed.Load() {
		return
	}
	t := time.NewTimer(deregisterDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (d *Daemon) waitDrained(ctx context.Context, s *service, ids []string) {
	dctx, cancel := context.WithTimeoutCause(ctx, d.drainTime(s), errors.New("drain time reached"))
	defer cancel()
	if err := d.edge.WaitIdle(dctx, ids); err != nil {
		d.log.Warn("drain ended with requests in flight", "service", s.name, "err", err)
	}
}

// keepRollbackTarget drains the instances a deploy or rollback replaced and keeps
// them as the rollback target. For RollbackWarm after the switch a lone HTTP
// container is frozen (cgroup freezer: no CPU, nothing served, memory kept,
// off the app network), so a rollback in that window is a thaw instead of a
// container start; then, or at once for workers and sidecar groups, it is
// stopped. Workers are never frozen: a background job frozen mid-work could
// hold locks. Nor is a service of an app with others: one of them calling it
// by name may hold kept-alive connections to it, which a stop closes (the
// app shuts down) but a freeze would leave hanging.
func (d *Daemon) keepRollbackTarget(ctx context.Context, s *service, old []*instance) {
	f, canFreeze := d.pods.(runtime.Suspender)
	warm := d.cfg.RollbackWarm
	lone := len(d.appServices(s.app)) == 1
	var freeze, stop []*instance
	for _, in := range old {
		if canFreeze && warm > 0 && lone && in.sidecars == nil && s.spec != nil && s.spec.Port != 0 {
			freeze = append(freeze, in)
		} else {
			stop = append(stop, in)
		}
	}
	if len(stop) > 0 {
		d.drainAndStop(ctx, s, stop, false)
	}
	if len(freeze) == 0 {
		return
	}
	d.drain(ctx, s, freeze)
	for _, in := range freeze {
		if err := f.Suspend(ctx, in.podID); err != nil {
			d.log.Warn("freeze the previous revision; stopping it instead", "instance", in.id, "err", err)
			d.stopInstance(ctx, in)
			continue
		}
		time.AfterFunc(warm, func() { d.coolRollbackTarget(s, in) })
	}
	s.mu.Lock()
	for _, in := range freeze {
		in.state = stateStopped
	}
	s.mu.Unlock()
}

// coolRollbackTarget stops a frozen rollback target once its warm window
// has passed, unless a rollback brought it back to serve meanwhile.
func (d *Daemon) coolRollbackTarget(s *service, in *instance) {
	s.mu.Lock()
	serving := slices.ContainsFunc(s.instances, func(o *instance) bool { return o.podID == in.podID })
	s.mu.Unlock()
	if serving || d.ctx.Err() != nil {
		return
	}
	p, err := d.pods.InspectPod(d.ctx, in.podID)
	if err != nil || p.State != runtime.PodSuspended {
		return
	}
	if err := d.pods.StopPod(d.ctx, in.podID, spec.DefaultStopGrace); err != nil && !errors.Is(err, runtime.ErrNotFound) {
		d.log.Warn("stop the previous revision", "instance", in.id, "err", err)
	}
}

// recordSwitch persists that rev serves and oldRev is the rollback target.
func (d *Daemon) recordSwitch(ctx context.Context, s *service, rev, oldRev int, paused bool, desired int) error {
	svc, err := d.store.GetService(ctx, s.app, s.name)
	if errors.Is(err, store.ErrNotFound) {
		svc = store.Service{App: s.app, Name: s.name}
	} else if err != nil {
		return err
	}
	svc.CurrentRevision, svc.Paused, svc.Instances, svc.UpdatedAt = rev, paused, desired, time.Now().UTC()
	if err := d.store.PutService(ctx, svc); err != nil {
		return err
	}
	if err := d.setRevisionStatus(ctx, s, rev, "active", ""); err != nil {
		return err
	}
	if oldRev != 0 && oldRev != rev {
		return d.setRevisionStatus(ctx, s, oldRev, "previous", "")
	}
	return nil
}

func (d *Daemon) setRevisionStatus(ctx context.Context, s *service, n int, status, msg string) error {
	r, err := d.store.GetRevision(ctx, s.app, s.name, n)
	if err != nil {
		return err
	}
	r.Status = store.RevisionStatus(status)
	if msg != "" {
		r.Message = msg
	}
	return d.store.PutRevision(ctx, r)
}

// retireRevisions removes the containers of every revision but the serving
// one and the rollback target, and marks those revisions retired.
func (d *Daemon) retireRevisions(ctx context.Context, s *service, keep ...int) {
	pods, err := d.pods.ListPods(ctx, map[string]string{runtime.LabelApp: s.app, runtime.LabelService: s.name, runtime.LabelRole: string(runtime.RoleInstance)})
	if err != nil {
		d.log.Warn("list instances to retire", "err", err)
		return
	}
	for _, p := range pods {
		n, _ := strconv.Atoi(p.Labels[runtime.LabelRevision])
		if slices.Contains(keep, n) {
			continue
		}
		if err := d.pods.RemovePod(ctx, p.ID); err != nil {
			d.log.Warn("remove retired instance", "pod", p.Name, "err", err)
		}
	}
	revs, err := d.store.ListRevisions(ctx, s.app, s.name)
	if err != nil {
		return
	}
	for _, r := range revs {
		if !slices.Contains(keep, r.Number) && (r.Status == "active" || r.Status == "previous") {
			r.Status = "retired"
			_ = d.store.PutRevision(ctx, r)
		}
	}
}

// loadRevision reads a stored revision back into what rollout needs.
func (d *Daemon) loadRevision(ctx context.Context, app, name string, n int) (revision, store.Revision, error) {
	r, err := d.store.GetRevision(ctx, app, name, n)
	if errors.Is(err, store.ErrNotFound) {
		return revision{}, r, fmt.Errorf("%w: %s has no revision %d; see \"berth revisions %s\"", ErrNotFound, name, n, name)
	}
	if err != nil {
		return revision{}, r, err
	}
	var sp spec.Service
	if err := json.Unmarshal(r.Spec, &sp); err != nil {
		return revision{}, r, fmt.Errorf("revision %d of %s is unreadable: %w", n, name, err)
	}
	return revision{number: n, spec: &sp, image: r.ImageID}, r, nil
}

// event records something that happened, for `berth events` and status.
func (d *Daemon) event(app, svc, kind, msg string) {
	if _, err := d.store.AddEvent(context.Background(), store.Event{Time: time.Now().UTC(), App: app, Service: svc, Kind: kind, Message: msg}); err != nil {
		d.log.Warn("record event", "err", err)
	}
	d.log.Info(msg, "app", app, "service", svc, "event", kind)
	d.metrics.event(app, svc, kind)
}

// lineWriter turns a byte stream into lines.
type lineWriter struct {
	fn  func(string)
	buf []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := slices.Index(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.fn(strings.TrimRight(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
}

// Flush emits a last unterminated line.
func (w *lineWriter) Flush() {
	if len(w.buf) > 0 {
		w.fn(string(w.buf))
		w.buf = nil
	}
}

// ensureNetwork creates the app's private network once. The engine does not
// catch two simultaneous creates of one name, so berth serialises them.
func (d *Daemon) ensureNetwork(ctx context.Context, app string) error {
	d.netMu.Lock()
	defer d.netMu.Unlock()
	return d.pods.EnsureNetwork(ctx, networkName(app), map[string]string{runtime.LabelApp: app})
}
