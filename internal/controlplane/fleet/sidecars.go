package fleet

// An instance is a pod: the service's own container and its sidecars, as
// an ECS task or a Kubernetes pod. They share one network identity, so they
// reach each other on localhost, and the engine starts them in depends_on
// order (runtime.PodSpec): an init container before the service's own
// container, a log shipper once it is healthy. How an engine assembles a
// pod (on Docker: a network holder container the others join) is the
// engine's business.
//
// The control plane keeps what the engine does not decide: an essential
// container's death (the service's own included) takes the whole instance
// down and the reconciler replaces it; a non-essential sidecar that exits
// is restarted alone (RestartContainer), with the crash-loop backoff; init
// containers ran once and stay exited.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
)

// member is one sidecar of an instance, as the control plane tracks it.
// The counters are guarded by the service's mu.
type member struct {
	name        string
	containerID string // the engine's, for status
	essential   bool
	once        bool // an init container: runs once per start
	restarts    int
	restarting  bool
	startedAt   time.Time
	lastExit    string
}

// sidecarNames returns a service's sidecars in file order.
func SidecarNames(sp *spec.Service) []string {
	if len(sp.SidecarOrder) == len(sp.Sidecars) {
		ok := true
		for _, n := range sp.SidecarOrder {
			if _, in := sp.Sidecars[n]; !in {
				ok = false
			}
		}
		if ok {
			return sp.SidecarOrder
		}
	}
	names := make([]string, 0, len(sp.Sidecars))
	for n := range sp.Sidecars {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// containerName is the engine name of an instance's pod.
func containerName(app string, rev Revision, id string) string {
	return fmt.Sprintf("berth-%s-%s-%d-%s", app, rev.Spec.Name, rev.Number, id)
}

// members are the sidecars of a pod of sp, as the control plane tracks
// them, with when each started (from the engine's report).
func members(sp *spec.Service, p runtime.Pod) []*member {
	if sp == nil || len(sp.Sidecars) == 0 {
		return nil
	}
	inits := sp.InitContainers()
	var out []*member
	for _, name := range SidecarNames(sp) {
		m := &member{name: name, essential: sp.Sidecars[name].Essential, once: inits[name]}
		if c, ok := p.Container(name); ok {
			m.containerID, m.startedAt = c.ID, c.StartedAt
		}
		out = append(out, m)
	}
	return out
}

// complete reports whether a pod has every container sp asks for, so it
// can be started again (a rollback or resume of a stopped one).
func complete(sp *spec.Service, p runtime.Pod) bool {
	for _, name := range SidecarNames(sp) {
		if _, ok := p.Container(name); !ok {
			return false
		}
	}
	return true
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

// ContainerChoices names the containers of a service's instances, for
// messages about an unknown one.
func ContainerChoices(sp *spec.Service, service string) string {
	names := []string{service}
	if sp != nil {
		names = append(names, SidecarNames(sp)...)
	}
	if len(names) == 1 {
		return fmt.Sprintf("its only container is %s", service)
	}
	return fmt.Sprintf("its containers are %s (the service) and the sidecars %s", service, strings.Join(names[1:], ", "))
}

// exitWhy says how a container ended, for events.
func exitWhy(c runtime.ContainerStatus, found bool) string {
	switch {
	case !found:
		return "disappeared from the engine"
	case c.OOMKilled:
		return "was killed: out of memory (raise memory in berth.yaml)"
	default:
		return fmt.Sprintf("exited with code %d", c.ExitCode)
	}
}

// deathOf says why a pod that no longer serves died: it is gone, lost its
// network, or the first of its essential containers to end (the service's
// own, or an essential sidecar the engine stopped the pod for) ended so.
func deathOf(sp *spec.Service, p runtime.Pod, found bool) string {
	switch {
	case !found:
		return "disappeared from the engine"
	case p.Broken != "":
		return lostNetwork(p)
	case p.Running():
		return ""
	}
	main := p.Containers[0]
	first, firstName := main, ""
	vital := vitalSidecars(sp)
	for _, c := range p.Containers[1:] {
		if c.Running || !vital[c.Name] {
			continue
		}
		if !c.FinishedAt.IsZero() && (first.FinishedAt.IsZero() || c.FinishedAt.Before(first.FinishedAt)) {
			first, firstName = c, c.Name
		}
	}
	if firstName != "" {
		return fmt.Sprintf("lost its essential sidecar %s, which %s", firstName, exitWhy(first, true))
	}
	return exitWhy(main, true)
}

// vitalSidecars are the sidecars of sp whose end takes an instance down:
// the essential ones but init containers, which are meant to exit.
func vitalSidecars(sp *spec.Service) map[string]bool {
	out := map[string]bool{}
	if sp == nil {
		return out
	}
	inits := sp.InitContainers()
	for name, sc := range sp.Sidecars {
		if sc.Essential && !inits[name] {
			out[name] = true
		}
	}
	return out
}

// lostNetwork says why a broken pod cannot serve.
func lostNetwork(p runtime.Pod) string { return "lost its network (" + p.Broken + ")" }

// restartMember starts a non-essential sidecar that exited again, in its
// instance's pod, after the crash-loop backoff. Call with s.mu held.
func (f *Fleet) restartMember(s *Service, in *Instance, m *member, why string) {
	m.restarting = true
	m.restarts++
	m.lastExit = why
	n := m.restarts
	wait := backoff(n)
	f.event(s.app, s.name, "sidecar-restart", fmt.Sprintf("sidecar %s of instance %s %s; restarting it alone (restart %d, backoff %s)", m.name, in.id, why, n, wait))
	f.bg.Add(1)
	go func() {
		defer f.bg.Done()
		defer f.contain("sidecar restart")
		select {
		case <-time.After(wait):
		case <-f.ctx.Done():
			return
		}
		ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
		defer cancel()
		err := f.pods.RestartContainer(ctx, in.podID, m.name)
		s.mu.Lock()
		m.restarting = false
		m.startedAt = time.Now()
		live := slices.Contains(s.instances, in)
		s.mu.Unlock()
		if err != nil && live && f.ctx.Err() == nil {
			f.log.Warn("restart sidecar", "instance", in.id, "sidecar", m.name, "err", err)
		}
	}()
}

// cleanUpTimeout bounds a stop or removal that adopt leaves running.
const cleanUpTimeout = 30 * time.Second

// cleanUpLater stops or removes (call) a pod that adopt does not keep,
// without holding up the start. f.bg tracks it, since the store closes
// only once such work is over (Config.BG). The daemon stopping does not
// cancel it (a half-done removal is wasted work), but cleanUpTimeout
// bounds it, so a stuck engine cannot hold up the shutdown.
func (f *Fleet) cleanUpLater(ctx context.Context, what string, p runtime.Pod, call func(context.Context) error) {
	f.bg.Add(1)
	go func() {
		defer f.bg.Done()
		defer f.contain("adopt: "+what, "pod", p.Name)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanUpTimeout)
		defer cancel()
		if err := call(ctx); err != nil {
			f.log.Warn("adopt: "+what+" a pod it does not keep", "pod", p.Name, "err", err)
		}
	}()
}
