package rollout

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
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/apierr"
	"github.com/berth-dev/berth/internal/controlplane/fleet"
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

// refuse makes err bad input whose message stands alone as the CLI's
// one-line reason (a spec's "FILE:LINE: FIELD: what is wrong", "web is
// paused: ..."), without ErrInvalid's words in front; it is apierr.ErrInvalid for
// errors.Is and the API's code.
func refuse(err error) error { return apierr.Refuse(err) }

// Progress receives what an operation reports as it goes: its phases and
// the lines of its builds and release command.
type Progress func(api.Message)

func (p Progress) phase(ph phase, format string, args ...any) {
	p(api.Message{Kind: api.KindPhase, Time: time.Now(), Phase: ph.String(), Text: fmt.Sprintf(format, args...)})
}

func (p Progress) log(source, text string) {
	p(api.Message{Kind: api.KindLog, Time: time.Now(), Source: source, Text: text})
}

// Deploy validates req, then rolls out each named service. It returns the
// final result message.
func (m *Manager) Deploy(ctx context.Context, req api.DeployRequest, out Progress) api.Message {
	sp, err := spec.Parse(req.File, []byte(req.YAML))
	if err != nil {
		return m.failure(refuse(err), nil)
	}
	if req.Promote {
		return m.promoteDeploy(ctx, sp, req, out) // canary.go
	}
	names, err := m.checkDeploy(ctx, sp, req)
	if err != nil {
		return m.failure(err, nil)
	}
	edgePlan, err := m.entrypoints.Plan(ctx, sp, req) // internal/controlplane/traffic
	if err != nil {
		return m.failure(err, nil)
	}
	ss := make([]*fleet.Service, len(names))
	for i, n := range names {
		ss[i] = m.fleet.Service(sp.App, n)
	}
	if err := fleet.Acquire("deploy", ss...); err != nil {
		return m.failure(err, nil)
	}
	defer fleet.Release(ss...)
	if err := m.refuseDuringCanary(ss); err != nil {
		return m.failure(err, nil)
	}
	if err := m.checkCanary(ss, req.Canary); err != nil {
		return m.failure(err, nil)
	}
	// The last checks, with the services held: they read what a pause or
	// a secret change could otherwise alter in between.
	if err := checkPaused(ss); err != nil {
		return m.failure(err, nil)
	}
	if err := m.checkSecrets(ctx, sp, names); err != nil {
		return m.failure(err, nil)
	}
	unclaim, err := m.claimHosts(ctx, sp, names) // hosts.go
	if err != nil {
		return m.failure(err, nil)
	}
	defer unclaim()

	now := time.Now().UTC()
	app, err := m.store.GetApp(ctx, sp.App)
	if errors.Is(err, store.ErrNotFound) {
		app = store.App{Name: sp.App, CreatedAt: now}
	} else if err != nil {
		return m.failure(err, nil)
	}
	app.SpecYAML, app.SpecFile, app.UpdatedAt = req.YAML, req.File, now
	if err := m.store.PutApp(ctx, app); err != nil {
		return m.failure(err, nil)
	}
	// The stored spec is the app's spec from now on, for `berth task run
	// NAME` and for the schedules (installed again on a daemon start).
	m.tasks.InstallSchedules(sp)
	for _, s := range ss {
		if _, err := m.store.GetService(ctx, s.App(), s.Name()); errors.Is(err, store.ErrNotFound) {
			if err := m.store.PutService(ctx, store.Service{App: s.App(), Name: s.Name(), UpdatedAt: now}); err != nil {
				return m.failure(err, nil)
			}
		}
	}
	if err := m.fleet.EnsureNetwork(ctx, sp.App); err != nil {
		return m.failure(fmt.Errorf("create the app network: %w", err), nil)
	}
	m.internal.Ensure(ctx, sp) // internal/controlplane/traffic
	// Once the deploy is over, the engine prepares for the app's next task
	// (internal/controlplane/tasks).
	m.fleet.OpenApp(sp.App)
	defer m.tasks.Warm(sp.App)

	// Services roll out side by side; each one switches, or fails and
	// leaves its previous revision serving, on its own.
	results := make([]api.Deploy, len(ss))
	errs := make([]error, len(ss))
	var wg sync.WaitGroup
	for i, s := range ss {
		svc := *sp.Services[s.Name()]
		if ref, ok := req.Images[s.Name()]; ok {
			svc.Image, svc.Build = ref, nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer m.containErr(&errs[i], "deploy", "app", s.App(), "service", s.Name())
			rev, err := m.deployService(ctx, s, &svc, req.BaseDir, req.Canary, out)
			errs[i] = err
			results[i] = api.Deploy{Service: s.Name(), Revision: rev, URLs: m.fleet.URLs(sp.App, &svc)}
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
			var f *fleet.InstanceFailure
			var lines []string
			if errors.As(err, &f) {
				lines = f.LastLogs
			}
			res := m.failure(fmt.Errorf("deploy of %s failed: %w", ss[i].Name(), err), lines)
			res.Deployed = deployed
			return res
		}
	}
	if err := m.entrypoints.Apply(ctx, edgePlan); err != nil {
		res := m.failure(fmt.Errorf("entrypoints: %w", err), nil)
		res.Deployed = deployed
		return res
	}
	return api.Message{Kind: api.KindResult, Time: time.Now(), OK: true, Deployed: deployed}
}

// checkDeploy rejects a deploy before anything changes: unknown services,
// image overrides for unknown services, missing images, memory limits above
// the machine's. (Hosts are claimed later, atomically: claimHosts.)
func (m *Manager) checkDeploy(ctx context.Context, sp *spec.Spec, req api.DeployRequest) ([]string, error) {
	names := req.Services
	if len(names) == 0 {
		names = sp.ServiceOrder
	}
	for _, n := range names {
		if _, ok := sp.Services[n]; !ok {
			return nil, fmt.Errorf("%w: unknown service %q: %s defines %s", apierr.ErrNotFound, n, req.File, strings.Join(sp.ServiceOrder, ", "))
		}
	}
	for n := range req.Images {
		if _, ok := sp.Services[n]; !ok {
			return nil, fmt.Errorf("%w: --image names unknown service %q: %s defines %s", apierr.ErrNotFound, n, req.File, strings.Join(sp.ServiceOrder, ", "))
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
			if _, err := m.pods.ImageID(ctx, ref); err != nil {
				return nil, fmt.Errorf("service %s: %w", n, err)
			}
		}
		// Sidecars' images, and platforms (sidecar.go).
		if err := m.checkImages(ctx, sv, ref, build); err != nil {
			return nil, fmt.Errorf("service %s: %w", n, err)
		}
	}
	if err := m.checkMemory(ctx, sp, names); err != nil {
		return nil, err
	}
	if err := m.checkNetworkHeld(ctx, sp.App); err != nil { // owner.go
		return nil, err
	}
	return names, nil
}

// checkMemory refuses a memory limit above the machine's memory: the
// engine would take it, and the limit would mean nothing. The spec cannot
// know the machine, so the daemon checks, at the spec's line.
func (m *Manager) checkMemory(ctx context.Context, sp *spec.Spec, names []string) error {
	hm, ok := m.pods.(runtime.HostMemory)
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
				m.log.Warn("the machine's memory is unknown; memory limits not checked against it", "err", err)
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
		for _, sc := range fleet.SidecarNames(sv) {
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
func checkPaused(ss []*fleet.Service) error {
	for _, s := range ss {
		if s.Paused() {
			return refuse(fmt.Errorf("%s is paused: run `berth resume %s` first", s.Name(), s.Name()))
		}
	}
	return nil
}

// checkSecrets refuses a deploy whose services (or their sidecars) list a
// secret that was never set: the containers would start without the
// variable, and the app fail later, far from the cause.
func (m *Manager) checkSecrets(ctx context.Context, sp *spec.Spec, names []string) error {
	for _, n := range names {
		sv := sp.Services[n]
		have, err := m.store.SecretValues(ctx, sp.App, n)
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
	for _, name := range fleet.SidecarNames(sv) {
		for i, k := range sv.Sidecars[name].Secrets {
			note(fmt.Sprintf("services.%s.sidecars.%s.secrets[%d]", sv.Name, name, i), k)
		}
	}
	return field, missing
}

func (m *Manager) failure(err error, lastLogs []string) api.Message {
	return api.Message{Kind: api.KindResult, Time: time.Now(), Error: err.Error(), Code: m.cfg.Code(err), LastLogs: lastLogs}
}

// deployService resolves the image (building it if needed), records a new
// revision and rolls it out, or, with a canary percentage, starts it as a
// canary (canary.go).
func (m *Manager) deployService(ctx context.Context, s *fleet.Service, sp *spec.Service, baseDir string, canaryPercent float64, out Progress) (int, error) {
	num, err := m.store.NextRevisionNumber(ctx, s.App(), s.Name())
	if err != nil {
		return 0, err
	}
	rec := store.Revision{App: s.App(), Service: s.Name(), Number: num, Status: store.RevisionDeploying, CreatedAt: time.Now().UTC()}
	fail := func(err error) (int, error) {
		rec.Status, rec.Message = store.RevisionFailed, err.Error()
		_ = m.store.PutRevision(context.WithoutCancel(ctx), rec)
		m.event(s.App(), s.Name(), "deploy-failed", fmt.Sprintf("revision %d failed: %v", num, err))
		s.Failed(err.Error())
		out.phase(phaseRolledBack, "%s: revision %d abandoned; %s", s.Name(), num, servingNote(s))
		return 0, err
	}

	// build: resolve the image to an ID the revision pins.
	image := sp.Image
	if sp.Build != nil {
		image = fmt.Sprintf("berth/%s-%s:%d", s.App(), s.Name(), num)
		dir := sp.Build.Context
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(baseDir, dir)
		}
		if _, err := os.Stat(dir); err != nil {
			return fail(fmt.Errorf("%w: build context %s not found on the server (berth builds on the daemon's machine)", apierr.ErrInvalid, dir))
		}
		out.phase(phaseBuild, "%s: building %s from %s", s.Name(), image, dir)
		w := &lineWriter{fn: func(line string) { out.log("build", line) }}
		id, err := m.build(ctx, dir, sp.Build.Dockerfile, image, sp.Platform, sp.Build.Args, w)
		w.Flush()
		if err != nil {
			return fail(fmt.Errorf("build failed: %w", err))
		}
		rec.ImageID = id
	} else {
		id, err := m.pods.ImageID(ctx, image)
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
	if pinned.Sidecars, err = m.pinSidecars(ctx, s, sp, num, baseDir, out); err != nil {
		return fail(err)
	}
	rec.Spec, err = json.Marshal(pinned)
	if err != nil {
		return fail(err)
	}
	if err := m.store.PutRevision(ctx, rec); err != nil {
		return fail(err)
	}
	rev := fleet.Revision{Number: num, Spec: &pinned, Image: rec.ImageID}

	// release: the new revision's release command, before any of its
	// instances exists.
	if len(pinned.Release) > 0 {
		if err := m.tasks.Release(ctx, s.App(), s.Name(), rev.Task(), tasks.ReleaseOutput{
			Phase: func(msg string) { out.phase(phaseRelease, "%s", msg) },
			Line:  func(line string) { out.log("release", line) },
		}); err != nil {
			var rf *tasks.ReleaseError
			if errors.As(err, &rf) {
				err = &fleet.InstanceFailure{Err: err, LastLogs: rf.LastLines}
			}
			return fail(err)
		}
	}

	if canaryPercent > 0 {
		if err := m.startCanary(ctx, s, rev, canaryPercent, out); err != nil {
			return fail(err)
		}
		return num, nil
	}
	// A deploy applies the spec's count: a `berth scale` override lasts
	// until the next deploy.
	if err := m.rollout(ctx, s, rev, true, out); err != nil {
		return fail(err)
	}
	return num, nil
}

func servingNote(s *fleet.Service) string {
	cur := s.Serving().Number
	if cur == 0 {
		return "nothing was serving before"
	}
	return fmt.Sprintf("revision %d keeps serving", cur)
}

// rollout brings rev up next to what serves, switches the edge to it, drains
// and stops the old instances, and records the outcome. The caller holds s
// busy. Existing stopped containers of rev (a rollback target) are reused.
// With resetScale the spec's instance count replaces a `berth scale`
// override; otherwise the override stays.
func (m *Manager) rollout(ctx context.Context, s *fleet.Service, rev fleet.Revision, resetScale bool, out Progress) error {
	ctx, cancel := context.WithTimeoutCause(ctx, m.cfg.DeployTimeout, fmt.Errorf("deploy timeout (%s) reached", m.cfg.DeployTimeout))
	defer cancel()

	want := s.Desired()
	if want == 0 || resetScale {
		want = rev.Spec.DesiredInstances()
	}

	out.phase(phaseStart, "%s: starting %d instance(s) of revision %d", s.Name(), want, rev.Number)
	ins, err := m.fleet.BringUp(ctx, s.App(), rev, want)
	if err != nil {
		return err
	}
	out.phase(phaseHealthy, "%s: revision %d healthy (%d/%d instances)", s.Name(), rev.Number, len(ins), want)
	return m.switchTo(ctx, s, rev, ins, resetScale, out, nil)
}

// switchTo moves all of the service's traffic to ins, healthy instances of
// rev, then drains and stops the old instances and records the outcome.
// afterPublish, if set, runs right after the edge serves ins (a promoted
// canary removes its split there). The caller holds s busy.
func (m *Manager) switchTo(ctx context.Context, s *fleet.Service, rev fleet.Revision, ins []*fleet.Instance, resetScale bool, out Progress, afterPublish func()) error {
	// switch: one atomic edge update moves all traffic.
	sw := m.fleet.Switch(s, rev, ins, resetScale)
	old, oldRev := sw.Old, sw.OldRev
	if afterPublish != nil {
		afterPublish()
	}
	for _, in := range ins {
		m.fleet.Monitor(s, in)
	}
	if rev.Spec.Port != 0 {
		out.phase(phaseSwitch, "%s: all traffic on revision %d", s.Name(), rev.Number)
	} else {
		out.phase(phaseSwitch, "%s: revision %d runs", s.Name(), rev.Number)
	}

	if err := m.recordSwitch(context.WithoutCancel(ctx), s, rev.Number, oldRev, sw.Paused, sw.Desired); err != nil {
		m.log.Error("record switch", "service", s.Name(), "err", err)
	}
	if oldRev == 0 {
		m.event(s.App(), s.Name(), "deploy", fmt.Sprintf("revision %d serves (first revision)", rev.Number))
	} else {
		m.event(s.App(), s.Name(), "deploy", fmt.Sprintf("revision %d serves (was %d)", rev.Number, oldRev))
	}

	// drain, then park the old instances: they stay as the rollback target.
	if len(old) > 0 {
		out.phase(phaseDrain, "%s: draining %d instance(s) of revision %d", s.Name(), len(old), oldRev)
		m.fleet.KeepRollbackTarget(context.WithoutCancel(ctx), s, old)
	}
	m.retireRevisions(context.WithoutCancel(ctx), s, rev.Number, oldRev)
	out.phase(phaseDone, "%s: revision %d serves", s.Name(), rev.Number)
	return nil
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

// checkNetworkHeld refuses an app whose network another berth server on the
// engine holds, before the deploy records anything.
func (m *Manager) checkNetworkHeld(ctx context.Context, app string) error {
	c, ok := m.pods.(runtime.NetworkHeldChecker)
	if !ok {
		return nil
	}
	if err := c.NetworkHeld(ctx, fleet.NetworkName(app)); err != nil {
		if errors.Is(err, runtime.ErrNetworkHeld) {
			return fmt.Errorf("app %s belongs to another berth server: %w; deploy it with that server, or rename the app", app, err)
		}
		return err
	}
	return nil
}
