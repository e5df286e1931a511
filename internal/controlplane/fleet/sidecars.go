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
	"fmt"
	"slices"
	"sort"
	"strings"
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
