package fleet

// An instance's life:
//
//	            start ok            health passes
//	created ──────────▶ starting ───────────────▶ healthy ──┐
//	                        │                       │  ▲    │ replaced by a deploy,
//	                        │ exits / never healthy │  │    │ scaled down, paused
//	                        ▼                       ▼  │    ▼
//	                     crashed ◀──────────── unhealthy  draining ──▶ stopped
//	                                 N failed checks          in-flight done
//
// Only healthy instances receive traffic from the edge.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/edge"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
)

// InstanceState is where an instance is in its life (see the diagram).
type InstanceState int

// The states of an instance (see the diagram).
const (
	StateStarting InstanceState = iota
	StateHealthy
	StateUnhealthy
	StateDraining
	StateStopped
	StateCrashed
)

func (s InstanceState) String() string {
	switch s {
	case StateStarting:
		return "starting"
	case StateHealthy:
		return "healthy"
	case StateUnhealthy:
		return "unhealthy"
	case StateDraining:
		return "draining"
	case StateStopped:
		return "stopped"
	case StateCrashed:
		return "crashed"
	}
	return "unknown"
}

// Instance is one pod of a service revision: its main container and its
// sidecars (sidecars.go).
type Instance struct {
	id        string
	podID     string // the engine's handle
	rev       int
	addr      string // 127.0.0.1:PORT while running
	state     InstanceState
	startedAt time.Time
	// healthyAt is when it passed its health check, for the edge's slow
	// start; zero for an adopted instance (it has served already).
	healthyAt time.Time
	// stopMonitor ends the instance's health monitor.
	stopMonitor context.CancelFunc
	// sidecars are the pod's sidecars, in spec order; nil for a service
	// without them.
	sidecars []*member
	// crashWhy, when set, is why the reconciler found the instance dead
	// (a sidecar died, or it lost its network).
	crashWhy string
}

// ErrUnhealthy means an instance did not become healthy.
var ErrUnhealthy = errors.New("instance did not become healthy")

// InstanceFailure is a start failure with the last output lines of the
// container that failed, which a deploy's result shows.
type InstanceFailure struct {
	Err      error
	LastLogs []string
}

func (e *InstanceFailure) Error() string { return e.Err.Error() }
func (e *InstanceFailure) Unwrap() error { return e.Err }

// BringUp starts n healthy instances of rev, reusing its stopped containers
// first. All or nothing: on failure every instance it started is removed.
func (f *Fleet) BringUp(ctx context.Context, app string, rev Revision, n int) ([]*Instance, error) {
	existing, err := f.pods.ListPods(ctx, map[string]string{
		runtime.LabelApp: app, runtime.LabelService: rev.Spec.Name,
		runtime.LabelRevision: strconv.Itoa(rev.Number), runtime.LabelRole: string(runtime.RoleInstance),
	})
	if err != nil {
		return nil, err
	}
	var secrets map[string]string
	if len(existing) < n {
		if secrets, err = f.store.SecretValues(ctx, app, rev.Spec.Name); err != nil {
			return nil, err
		}
	}
	// Extra stopped pods of this revision are not needed.
	for _, p := range existing[min(n, len(existing)):] {
		_ = f.pods.RemovePod(ctx, p.ID)
	}

	var (
		mu    sync.Mutex
		ins   []*Instance
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
			in, err := func() (in *Instance, err error) {
				defer f.containErr(&err, "start instance", "app", app)
				return f.startInstance(ctx, app, rev, reuse, secrets)
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
			f.RemoveInstance(context.WithoutCancel(ctx), in)
		}
		return nil, first
	}
	return ins, nil
}

// startInstance starts an instance (creating its pod unless the stopped
// pod of one is given) and waits until it is healthy or ctx ends. On
// failure its pod is removed and the error carries the failing container's
// last log lines.
func (f *Fleet) startInstance(ctx context.Context, app string, rev Revision, existing string, secrets map[string]string) (*Instance, error) {
	var in *Instance
	if existing != "" {
		p, err := f.pods.InspectPod(ctx, existing)
		if err != nil {
			return nil, err
		}
		switch su, ok := f.pods.(runtime.Suspender); {
		case p.State == runtime.PodSuspended && ok:
			// A frozen rollback target: a thaw, not a start.
			in = &Instance{id: p.Labels[runtime.LabelInstance], podID: p.ID, rev: rev.Number, state: StateStarting, sidecars: members(rev.Spec, p)}
			if p, err = su.Resume(ctx, p.ID); err != nil {
				f.RemoveInstance(context.WithoutCancel(ctx), in)
				return nil, err
			}
			in.addr, in.startedAt = p.Addr, time.Now()
			if err := f.waitHealthy(ctx, in, rev.Spec); err != nil {
				f.RemoveInstance(context.WithoutCancel(ctx), in)
				return nil, &InstanceFailure{Err: err, LastLogs: f.lastLogs(in.podID, "", 20)}
			}
			in.state, in.healthyAt = StateHealthy, time.Now()
			return in, nil
		case complete(rev.Spec, p):
			in = &Instance{id: p.Labels[runtime.LabelInstance], podID: p.ID, rev: rev.Number, state: StateStarting, sidecars: members(rev.Spec, p)}
		default:
			// Part of it is gone: start a fresh one instead.
			_ = f.pods.RemovePod(context.WithoutCancel(ctx), p.ID)
			if secrets == nil {
				if secrets, err = f.store.SecretValues(ctx, app, rev.Spec.Name); err != nil {
					return nil, err
				}
			}
		}
	}
	if in == nil {
		var err error
		if in, err = f.createInstance(ctx, app, rev, secrets); err != nil {
			return nil, err
		}
	}
	if err := f.runInstance(ctx, in, rev.Spec); err != nil {
		f.RemoveInstance(context.WithoutCancel(ctx), in)
		return nil, err
	}
	in.state, in.healthyAt = StateHealthy, time.Now()
	return in, nil
}

// createInstance creates (but does not start) a new instance of rev. On
// failure nothing it created is left.
func (f *Fleet) createInstance(ctx context.Context, app string, rev Revision, secrets map[string]string) (*Instance, error) {
	id := newID()
	p, err := f.pods.CreatePod(ctx, f.podSpec(app, rev, id, secrets))
	if err != nil {
		return nil, err
	}
	return &Instance{id: id, podID: p.ID, rev: rev.Number, state: StateStarting, sidecars: members(rev.Spec, p)}, nil
}

// runInstance starts a created (or stopped) instance's pod and waits until
// the service's container is healthy and every container has started. On
// failure the error is an *InstanceFailure with the output of the
// container that failed; the caller removes the instance.
func (f *Fleet) runInstance(ctx context.Context, in *Instance, sp *spec.Service) error {
	in.startedAt = time.Now()
	// What the health check last said, should the start end without it.
	// The engine may return before its call of Healthy does: guarded.
	var (
		healthMu  sync.Mutex
		healthErr error
	)
	p, err := f.pods.StartPod(ctx, in.podID, runtime.StartOptions{
		Healthy: func(ctx context.Context, addr string) error {
			healthMu.Lock()
			in.addr = addr
			healthMu.Unlock()
			err := f.probeHealthy(ctx, in, sp)
			healthMu.Lock()
			healthErr = err
			healthMu.Unlock()
			return err
		},
	})
	healthMu.Lock()
	lastHealth := healthErr
	healthMu.Unlock()
	if err != nil {
		var se *runtime.StartError
		if errors.As(err, &se) && se.Container == "" && lastHealth != nil {
			err = &runtime.StartError{Container: sp.Name, Err: lastHealth}
		}
		return f.startFailure(in, sp, err)
	}
	in.addr = p.Addr
	for _, m := range in.sidecars {
		if c, ok := p.Container(m.name); ok {
			m.containerID, m.startedAt = c.ID, c.StartedAt
		}
	}
	return nil
}

// startFailure says why an instance's pod did not start, in the words of
// the container that failed, with its last output lines.
func (f *Fleet) startFailure(in *Instance, sp *spec.Service, err error) error {
	var se *runtime.StartError
	if !errors.As(err, &se) {
		return &InstanceFailure{Err: fmt.Errorf("start instance %s: %w", in.id, err), LastLogs: f.lastLogs(in.podID, "", 20)}
	}
	if se.Container == "" {
		return &InstanceFailure{Err: fmt.Errorf("start instance %s: %w", in.id, se.Err)}
	}
	name := se.Container
	isMain := name == sp.Name
	logsOf := name
	if isMain {
		logsOf = ""
	}
	fl := &InstanceFailure{LastLogs: f.lastLogs(in.podID, logsOf, 20)}
	if !errors.Is(se.Err, runtime.ErrExited) {
		if errors.Is(se.Err, ErrUnhealthy) {
			fl.Err = se.Err // the health check's own words
		} else {
			fl.Err = fmt.Errorf("start %s of instance %s: %w", name, in.id, se.Err)
		}
		return fl
	}
	code, oom := -1, ""
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if p, err := f.pods.InspectPod(ctx, in.podID); err == nil {
		if c, ok := p.Container(name); ok {
			code = c.ExitCode
			if c.OOMKilled {
				oom = oomNote
			}
		}
	}
	inits := sp.InitContainers()
	switch {
	case isMain:
		fl.Err = fmt.Errorf("%w: instance %s exited with code %d while starting%s", ErrUnhealthy, in.id, code, oom)
	case inits[name]:
		fl.Err = fmt.Errorf("%w: init container %s of instance %s exited with code %d%s, so %s never started", ErrUnhealthy, name, in.id, code, oom, waiterOf(sp, name))
	default:
		fl.Err = fmt.Errorf("%w: essential sidecar %s of instance %s exited with code %d while starting%s", ErrUnhealthy, name, in.id, code, oom)
	}
	return fl
}

// oomNote says why a container died when the kernel killed it for memory.
const oomNote = " (killed: out of memory; raise memory in berth.yaml)"

// waiterOf names the container that waits for an init container to
// succeed: the service's own, or a sidecar.
func waiterOf(sp *spec.Service, init string) string {
	if c, ok := sp.DependsOn[init]; ok && c == spec.ConditionSuccess {
		return sp.Name
	}
	for _, name := range SidecarNames(sp) {
		if c, ok := sp.Sidecars[name].DependsOn[init]; ok && c == spec.ConditionSuccess {
			return name
		}
	}
	return sp.Name
}

// startupProbeEvery is how often a starting instance is probed: much faster
// than the steady-state interval, so a deploy switches as soon as it can.
const startupProbeEvery = 25 * time.Millisecond

// workerSettle is how long a worker (no port, nothing to probe) must stay up
// to count as started.
const workerSettle = time.Second

// waitHealthy waits until a thawed instance passes its health check, exits
// or ctx ends. (A starting pod's exit is the engine's to watch: StartPod.)
func (f *Fleet) waitHealthy(ctx context.Context, in *Instance, sp *spec.Service) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		code, err := f.pods.WaitPod(ctx, in.podID)
		if err == nil {
			cancel(f.exitError(ctx, in, code))
		}
	}()
	err := f.probeHealthy(ctx, in, sp)
	if cause := context.Cause(ctx); err != nil && errors.Is(cause, ErrUnhealthy) {
		return cause
	}
	return err
}

// probeHealthy probes a starting instance until it passes sp.Health.Healthy
// consecutive checks or ctx ends. A worker (no port, nothing to probe)
// passes once it has run for workerSettle.
func (f *Fleet) probeHealthy(ctx context.Context, in *Instance, sp *spec.Service) error {
	if sp.Port == 0 {
		select {
		case <-time.After(workerSettle):
			return nil
		case <-ctx.Done():
			return fmt.Errorf("%w: instance %s: %w", ErrUnhealthy, in.id, context.Cause(ctx))
		}
	}
	ok, lastErr := 0, error(nil)
	t := time.NewTicker(startupProbeEvery)
	defer t.Stop()
	for {
		if lastErr = edge.Check(ctx, in.addr, sp.Health.Path, sp.Health.Timeout); lastErr == nil {
			ok++
			if ok >= sp.Health.Healthy {
				return nil
			}
		} else {
			ok = 0
		}
		select {
		case <-ctx.Done():
			why := context.Cause(ctx)
			if lastErr != nil {
				return fmt.Errorf("%w: instance %s never passed its health check (%s %s): last check: %v (%v)", ErrUnhealthy, in.id, checkKind(sp), sp.Health.Path, lastErr, why)
			}
			return fmt.Errorf("%w: instance %s: %v", ErrUnhealthy, in.id, why)
		case <-t.C:
		}
	}
}

func checkKind(sp *spec.Service) string {
	if sp.Health.Path != "" {
		return "HTTP GET"
	}
	return "TCP connect"
}

func (f *Fleet) exitError(ctx context.Context, in *Instance, code int) error {
	msg := fmt.Sprintf("instance %s exited with code %d while starting", in.id, code)
	// The OOM note is a nicety: a stuck engine must not hold up the error.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if p, err := f.pods.InspectPod(ctx, in.podID); err == nil && p.OOMKilled {
		msg += oomNote
	}
	return fmt.Errorf("%w: %s", ErrUnhealthy, msg)
}

// lastLogs returns up to n last output lines of a container of a pod (""
// = the service's own).
func (f *Fleet) lastLogs(podID, container string, n int) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var lines []string
	_ = f.pods.Logs(ctx, podID, container, runtime.LogOptions{Tail: n}, func(l runtime.LogLine) {
		lines = append(lines, strings.TrimRight(l.Text, "\r"))
	})
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// stopInstance stops an instance's pod (kept, for a fast rollback or
// resume). Its monitor must already be stopped.
func (f *Fleet) stopInstance(ctx context.Context, in *Instance) {
	if err := f.pods.StopPod(ctx, in.podID, spec.DefaultStopGrace); err != nil && !errors.Is(err, runtime.ErrNotFound) {
		f.log.Warn("stop instance", "instance", in.id, "err", err)
	}
}

// RemoveInstance removes an instance's pod. Its monitor must already be
// stopped (or never started).
func (f *Fleet) RemoveInstance(ctx context.Context, in *Instance) {
	if err := f.pods.RemovePod(ctx, in.podID); err != nil {
		f.log.Warn("remove instance", "instance", in.id, "err", err)
	}
}

func newID() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
