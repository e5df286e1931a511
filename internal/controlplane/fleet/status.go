package fleet

// What the API server reads of the fleet: a service's status, its live
// instances, and the metrics' counts.

import (
	"fmt"
	"sort"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/spec"
)

// Status reports a service as berth status shows it: its revision, its
// instances and their sidecars, its state in words and its autoscaler's
// view (the caller adds its traffic). It never includes env or secret
// values.
func (f *Fleet) Status(app, name string) api.ServiceStatus {
	st := api.ServiceStatus{App: app, Name: name, Instances: []api.InstanceStatus{}}
	s := f.Lookup(app, name)
	if s == nil {
		st.State = "stopped"
		return st
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Revision, st.Image, st.Desired = s.rev, "", s.desiredCount()
	if s.spec != nil {
		st.Image = s.spec.Image
		st.URLs = f.URLs(app, s.spec)
		if s.spec.Port != 0 {
			st.Hosts = f.Hosts(app, s.spec)
		}
	}
	healthy := 0
	for _, in := range s.instances {
		is := api.InstanceStatus{ID: in.id, Revision: in.rev, State: in.state.String(), ContainerID: shortID(in.podID), Addr: in.addr, StartedAt: in.startedAt}
		if s.spec != nil {
			is.CPU, is.Memory, is.Pids = s.spec.CPU, s.spec.Memory, s.spec.Pids
			is.Sidecars, is.Restarts = sidecarStatus(s.spec, in)
		}
		if in.state == StateHealthy {
			healthy++
		}
		st.Instances = append(st.Instances, is)
	}
	sort.Slice(st.Instances, func(i, j int) bool { return st.Instances[i].ID < st.Instances[j].ID })
	st.Running = healthy
	switch {
	case s.busy == "deploy" || s.busy == "rollback":
		st.State = "deploying"
	case s.paused:
		st.State, st.Running = "paused", 0
	case s.rev == 0 && s.lastFailure != "":
		st.State, st.Message = "failed", s.lastFailure
	case s.rev == 0:
		st.State = "stopped"
	case s.crashes > 0 && healthy < st.Desired:
		wait := time.Until(s.lastCrash.Add(backoff(s.crashes))).Round(time.Second)
		st.State = "crash-loop"
		st.Message = fmt.Sprintf("%d crash(es); last: %s", s.crashes, s.crashMsg)
		if wait > 0 {
			st.Message += fmt.Sprintf("; next restart in %s", wait)
		}
	case healthy < st.Desired:
		st.State = "degraded"
	case st.Desired == 0 && s.spec != nil && s.spec.Scale != nil:
		st.State, st.Message = "idle", "scaled to zero; the next request starts an instance"
	default:
		st.State = "running"
	}
	if st.State == "running" && s.lastFailure != "" {
		st.Message = "last deploy failed: " + s.lastFailure
	}
	st.Limits = limitsOf(s.spec)
	st.Internal = f.internal.Status(app, name)
	st.Autoscale = s.autoscaleStatus()
	return st
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// sidecarStatus reports an instance's sidecars as the daemon sees them, and
// their restarts in all. Call with the service's mu held.
func sidecarStatus(sp *spec.Service, in *Instance) ([]api.SidecarStatus, int) {
	var (
		out      []api.SidecarStatus
		restarts int
	)
	for _, m := range in.sidecars {
		st := api.SidecarStatus{Name: m.name, State: "running", ContainerID: shortID(m.containerID), Essential: m.essential, Init: m.once, Restarts: m.restarts, LastExit: m.lastExit}
		switch {
		case m.once:
			st.State = "completed"
		case m.restarting:
			st.State = "restarting"
		}
		if sc := sp.Sidecars[m.name]; sc != nil {
			st.Limits = limitsOf(&spec.Service{CPU: sc.CPU, Memory: sc.Memory, Pids: sc.Pids})
		}
		restarts += m.restarts
		out = append(out, st)
	}
	return out, restarts
}

// limitsOf reports a service's resource limits, nil when it has none.
func limitsOf(sp *spec.Service) *api.Limits {
	if sp == nil || sp.CPU == 0 && sp.Memory == 0 && sp.Pids == 0 {
		return nil
	}
	return &api.Limits{CPU: sp.CPU, Memory: sp.Memory, Pids: sp.Pids}
}

// Gauges are a deployed service's counts at one moment, for the metrics.
type Gauges struct {
	App, Service string
	// ByState counts the instances by state, and the parked ones as
	// "frozen" and "parked-stopped".
	ByState map[string]int
	// Ready are the healthy instances; Desired those it should run (0
	// while paused).
	Ready, Desired int
	// Scale is the spec's scale:, nil without autoscaling; Stable, Panic
	// and Panicking the autoscaler's last observation.
	Scale         *spec.Scale
	Stable, Panic float64
	Panicking     bool
}

// Gauges reads the counts of every deployed service.
func (f *Fleet) Gauges() []Gauges {
	var out []Gauges
	for _, s := range f.Services("") {
		s.mu.Lock()
		if s.rev == 0 || s.spec == nil {
			s.mu.Unlock()
			continue
		}
		g := Gauges{App: s.app, Service: s.name, ByState: map[string]int{}, Desired: s.desiredCount(), Scale: s.spec.Scale,
			Stable: s.auto.stable, Panic: s.auto.panic, Panicking: s.auto.panicking}
		for _, in := range s.instances {
			g.ByState[in.state.String()]++
			if in.state == StateHealthy {
				g.Ready++
			}
		}
		for _, p := range s.auto.parked {
			if p.frozen {
				g.ByState["frozen"]++
			} else {
				g.ByState["parked-stopped"]++
			}
		}
		if s.paused {
			g.Desired = 0
		}
		s.mu.Unlock()
		out = append(out, g)
	}
	return out
}

// LiveInstance is an instance of a service's live set.
type LiveInstance struct {
	ID       string
	Revision int
	// Pod is the engine's handle of its pod; Sidecars name the pod's
	// containers but the service's own, in spec order.
	Pod      string
	Sidecars []string
	State    InstanceState
}

// Live lists the service's live instances (serving, or on their way in or
// out of it).
func (s *Service) Live() []LiveInstance {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]LiveInstance, 0, len(s.instances))
	for _, in := range s.instances {
		li := LiveInstance{ID: in.id, Revision: in.rev, Pod: in.podID, State: in.state}
		for _, m := range in.sidecars {
			li.Sidecars = append(li.Sidecars, m.name)
		}
		out = append(out, li)
	}
	return out
}
