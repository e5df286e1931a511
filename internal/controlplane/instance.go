package controlplane

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
	"time"

	"github.com/berth-dev/berth/internal/edge"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
)

// instanceState is where an instance is in its life (see the diagram).
type instanceState int

const (
	stateStarting instanceState = iota
	stateHealthy
	stateUnhealthy
	stateDraining
	stateStopped
	stateCrashed
)

func (s instanceState) String() string {
	switch s {
	case stateStarting:
		return "starting"
	case stateHealthy:
		return "healthy"
	case stateUnhealthy:
		return "unhealthy"
	case stateDraining:
		return "draining"
	case stateStopped:
		return "stopped"
	case stateCrashed:
		return "crashed"
	}
	return "unknown"
}

// instance is one pod of a service revision (group.go).
type instance struct {
	id        string
	podID     string // the engine's handle
	rev       int
	addr      string // 127.0.0.1:PORT while running
	state     instanceState
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

// revision is what a revision runs: its number, spec and image.
type revision struct {
	number int
	spec   *spec.Service
	image  string
}

// ErrUnhealthy means an instance did not become healthy.
var ErrUnhealthy = errors.New("instance did not become healthy")

// instanceFailure is a start failure with the instance's last output lines.
type instanceFailure struct {
	err      error
	lastLogs []string
}

func (f *instanceFailure) Error() string { return f.err.Error() }
func (f *instanceFailure) Unwrap() error { return f.err }

func newID() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func networkName(app string) string { return "berth-" + app }

// containerSpec is the service's own container in a pod of rev (an
// instance or a task): its image, command, env with the secrets it names,
// and limits. Where the pod runs (network, names, port, labels) is the
// PodSpec's.
func containerSpec(rev revision, secrets map[string]string) runtime.ContainerSpec {
	sp := rev.spec
	env := map[string]string{}
	if sp.Port != 0 {
		// App Runner and Heroku tell the app its port; so does berth.
		env["PORT"] = strconv.Itoa(sp.Port)
	}
	return runtime.ContainerSpec{
		Name:      sp.Name,
		Image:     rev.image,
		Command:   sp.Command,
		Env:       withSecrets(env, sp.Env, sp.Secrets, secrets),
		CPU:       sp.CPU,
		Memory:    sp.Memory,
		PidsLimit: sp.Pids,
		StopGrace: spec.DefaultStopGrace,
	}
}

// withSecrets adds env and the named secrets' values to into.
func withSecrets(into, env map[string]string, names []string, secrets map[string]string) map[string]string {
	for k, v := range env {
		into[k] = v
	}
	for _, k := range names {
		if v, ok := secrets[k]; ok {
			into[k] = v
		}
	}
	return into
}

// startInstance starts an instance (creating its pod unless the stopped
// pod of one is given) and waits until it is healthy or ctx ends. On
// failure its pod is removed and the error carries the failing container's
// last log lines.
func (d *Daemon) startInstance(ctx context.Context, app string, rev revision, existing string, secrets map[string]string) (*instance, error) {
	var in *instance
	if existing != "" {
		p, err := d.pods.InspectPod(ctx, existing)
		if err != nil {
			return nil, err
		}
		switch su, ok := d.pods.(runtime.Suspender); {
		case p.State == runtime.PodSuspended && ok:
			// A frozen rollback target: a thaw, not a start.
			in = &instance{id: p.Labels[runtime.LabelInstance], podID: p.ID, rev: rev.number, state: stateStarting, sidecars: members(rev.spec, p)}
			if p, err = su.Resume(ctx, p.ID); err != nil {
				d.removeInstance(context.WithoutCancel(ctx), in)
				return nil, err
			}
			in.addr, in.startedAt = p.Addr, time.Now()
			if err := d.waitHealthy(ctx, in, rev.spec); err != nil {
				d.removeInstance(context.WithoutCancel(ctx), in)
				return nil, &instanceFailure{err: err, lastLogs: d.lastLogs(in.podID, "", 20)}
			}
			in.state, in.healthyAt = stateHealthy, time.Now()
			return in, nil
		case complete(rev.spec, p):
			in = &instance{id: p.Labels[runtime.LabelInstance], podID: p.ID, rev: rev.number, state: stateStarting, sidecars: members(rev.spec, p)}
		default:
			// Part of it is gone: start a fresh one instead.
			_ = d.pods.RemovePod(context.WithoutCancel(ctx), p.ID)
			if secrets == nil {
				if secrets, err = d.store.SecretValues(ctx, app, rev.spec.Name); err != nil {
					return nil, err
				}
			}
		}
	}
	if in == nil {
		var err error
		if in, err = d.createInstance(ctx, app, rev, secrets); err != nil {
			return nil, err
		}
	}
	if err := d.runInstance(ctx, in, rev.spec); err != nil {
		d.removeInstance(context.WithoutCancel(ctx), in)
		return nil, err
	}
	in.state, in.healthyAt = stateHealthy, time.Now()
	return in, nil
}

// startupProbeEvery is how often a starting instance is probed: much faster
// than the steady-state interval, so a deploy switches as soon as it can.
const startupProbeEvery = 25 * time.Millisecond

// workerSettle is how long a worker (no port, nothing to probe) must stay up
// to count as started.
const workerSettle = time.Second

// waitHealthy waits until a thawed instance passes its health check, exits
// or ctx ends. (A starting pod's exit is the engine's to watch: StartPod.)
func (d *Daemon) waitHealthy(ctx context.Context, in *instance, sp *spec.Service) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		code, err := d.pods.WaitPod(ctx, in.podID)
		if err == nil {
			cancel(d.exitError(ctx, in, code))
		}
	}()
	err := d.probeHealthy(ctx, in, sp)
	if cause := context.Cause(ctx); err != nil && errors.Is(cause, ErrUnhealthy) {
		return cause
	}
	return err
}

// probeHealthy probes a starting instance until it passes sp.Health.Healthy
// consecutive checks or ctx ends. A worker (no port, nothing to probe)
// passes once it has run for workerSettle.
func (d *Daemon) probeHealthy(ctx context.Context, in *instance, sp *spec.Service) error {
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

func (d *Daemon) exitError(ctx context.Context, in *instance, code int) error {
	msg := fmt.Sprintf("instance %s exited with code %d while starting", in.id, code)
	// The OOM note is a nicety: a stuck engine must not hold up the error.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if p, err := d.pods.InspectPod(ctx, in.podID); err == nil && p.OOMKilled {
		msg += oomNote
	}
	return fmt.Errorf("%w: %s", ErrUnhealthy, msg)
}

// lastLogs returns up to n last output lines of a container of a pod (""
// = the service's own).
func (d *Daemon) lastLogs(podID, container string, n int) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var lines []string
	_ = d.pods.Logs(ctx, podID, container, runtime.LogOptions{Tail: n}, func(l runtime.LogLine) {
		lines = append(lines, strings.TrimRight(l.Text, "\r"))
	})
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// stopInstance stops an instance's pod (kept, for a fast rollback or
// resume). Its monitor must already be stopped.
func (d *Daemon) stopInstance(ctx context.Context, in *instance) {
	if err := d.pods.StopPod(ctx, in.podID, spec.DefaultStopGrace); err != nil && !errors.Is(err, runtime.ErrNotFound) {
		d.log.Warn("stop instance", "instance", in.id, "err", err)
	}
}

// removeInstance removes an instance's pod. Its monitor must already be
// stopped (or never started).
func (d *Daemon) removeInstance(ctx context.Context, in *instance) {
	if err := d.pods.RemovePod(ctx, in.podID); err != nil {
		d.log.Warn("remove instance", "instance", in.id, "err", err)
	}
}
