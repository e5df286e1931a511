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
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/fleet"
	"github.com/berth-dev/berth/internal/controlplane/tasks"
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
		return m.promoteDeploy(ctx, sp, req, out)
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
	unclaim, err := m.claimHosts(ctx, sp, names)
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
			rev, err := m.deployService(ctx, s, &svc, req.BaseDir, req.By, req.Canary, out)
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

func (m *Manager) failure(err error, lastLogs []string) api.Message {
	return api.Message{Kind: api.KindResult, Time: time.Now(), Error: err.Error(), Code: m.cfg.Code(err), LastLogs: lastLogs}
}

// deployService resolves the image (building it if needed), records a new
// revision and rolls it out, or, with a canary percentage, starts it as a
// canary (canary.go).
func (m *Manager) deployService(ctx context.Context, s *fleet.Service, sp *spec.Service, baseDir, by string, canaryPercent float64, out Progress) (int, error) {
	num, err := m.store.NextRevisionNumber(ctx, s.App(), s.Name())
	if err != nil {
		return 0, err
	}
	rec := store.Revision{App: s.App(), Service: s.Name(), Number: num, Status: store.RevisionDeploying, CreatedAt: time.Now().UTC(), By: by}
	fail := func(err error) (int, error) {
		rec.Status, rec.Message = store.RevisionFailed, err.Error()
		_ = m.store.PutRevision(context.WithoutCancel(ctx), rec)
		m.event(s.App(), s.Name(), "deploy-failed", fmt.Sprintf("revision %d failed: %v", num, err))
		s.Failed(err.Error())
		out.phase(phaseRolledBack, "%s: revision %d abandoned; %s", s.Name(), num, servingNote(s))
		return 0, err
	}

	// build: resolve the image to an ID the revision pins (build.go).
	ref, id, err := m.resolveImage(ctx, s, sp, num, baseDir, out)
	if err != nil {
		return fail(err)
	}
	rec.Image, rec.ImageID = ref, id
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
	if err := m.rollOut(ctx, s, rev, true, out); err != nil {
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
