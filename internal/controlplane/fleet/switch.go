package fleet

// The transitions the rollout (internal/controlplane/rollout) makes a
// service go through, each one step under the service's lock: what serves
// is switched, paused, resumed or dropped, and published to the router at
// once. The caller holds the service busy (Acquire); the slow work around
// each step (starting, draining, stopping instances) is its own.

import (
	"github.com/berth-dev/berth/internal/spec"
)

// Serving is the revision that serves s (Number 0 before the first deploy).
func (s *Service) Serving() Revision {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Revision{Number: s.rev, Spec: s.spec, Image: s.image}
}

// Paused reports whether s is paused.
func (s *Service) Paused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paused
}

// Desired is the `berth scale` override of s; 0 means its spec's count.
func (s *Service) Desired() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.desired
}

// Failed records why the last deploy of s failed, for status.
func (s *Service) Failed(why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastFailure = why
}

// ServiceSpec is the deployed spec of app/name, nil when there is none.
func (f *Fleet) ServiceSpec(app, name string) *spec.Service {
	s := f.Lookup(app, name)
	if s == nil {
		return nil
	}
	return s.Serving().Spec
}

// Switched is what a switch replaced.
type Switched struct {
	// Old are the instances that served before; they no longer receive
	// traffic through the router, and are the caller's to drain.
	Old []*Instance
	// OldRev is the revision that served before (0: none).
	OldRev int
	// Paused and Desired are the service's, as the switch left them.
	Paused  bool
	Desired int
}

// Switch makes ins, healthy instances of rev, all of what serves s, in one
// update of the router; with resetScale the spec's count replaces a
// `berth scale` override. It forgets the crash loop and the last failure.
// The caller starts the monitors (Monitor) once the switch is over.
func (f *Fleet) Switch(s *Service, rev Revision, ins []*Instance, resetScale bool) Switched {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, oldRev := s.instances, s.rev
	s.rev, s.spec, s.image, s.instances = rev.Number, rev.Spec, rev.Image, ins
	if resetScale {
		s.desired = 0
	}
	s.crashes, s.crashMsg, s.lastFailure = 0, "", ""
	f.publish(s)
	return Switched{Old: old, OldRev: oldRev, Paused: s.paused, Desired: s.desired}
}

// Pause marks s paused and takes its instances out of the router, which
// answers its requests with the paused page. It returns the instances
// taken out, for the caller to drain and stop, and false when s was paused
// already.
func (f *Fleet) Pause(s *Service) ([]*Instance, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paused {
		return nil, false
	}
	s.paused = true
	old := s.instances
	s.instances = nil
	f.publish(s)
	return old, true
}

// ToResume is what a resume of s starts: its serving revision and how many
// instances; false when s is not paused.
func (s *Service) ToResume() (Revision, int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.paused {
		return Revision{}, 0, false
	}
	return Revision{Number: s.rev, Spec: s.spec, Image: s.image}, s.desiredCount(), true
}

// Resume ends the pause of s with ins, healthy instances of its revision,
// in the router, and starts their monitors.
func (f *Fleet) Resume(s *Service, ins []*Instance) {
	s.mu.Lock()
	s.paused, s.instances = false, ins
	f.publish(s)
	s.mu.Unlock()
	for _, in := range ins {
		f.Monitor(s, in)
	}
}

// Drop takes s out of the router and forgets its revision and instances
// (their monitors end), for a destroy of its app, which removes the pods.
func (f *Fleet) Drop(s *Service) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.edge.Remove(serviceKey(s.app, s.name))
	for _, in := range s.instances {
		if in.stopMonitor != nil {
			in.stopMonitor()
		}
	}
	s.instances, s.rev, s.spec = nil, 0, nil
}

// Forget removes the services from the fleet, once their app is gone.
func (f *Fleet) Forget(ss ...*Service) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range ss {
		delete(f.services, serviceKey(s.app, s.name))
	}
}

// ID is the instance's ID (its berth.instance label).
func (in *Instance) ID() string { return in.id }

// Addr is where the instance takes traffic, while it runs.
func (in *Instance) Addr() string { return in.addr }
