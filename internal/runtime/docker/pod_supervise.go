package docker

// Supervision: a pod dies as a whole. When its main container exits or an
// essential sidecar dies, the engine stops the pod's other containers (in
// depends_on order, each with its own stop grace), and the pod is exited.
// On ECS the agent does this; on Docker nobody would, so the Engine does.
//
// Who watches: one event loop per Engine, started by the first pod call
// (CreatePod, StartPod, InspectPod, ListPods, ...) and ended by Close.
// StartPod's ctx cannot own it (it ends with the start), nor can the
// control plane (the contract says the engine stops the pod). One loop,
// not a goroutine per pod: it follows the engine's die events of every
// pod of the owner, adopted ones included, so a restarted daemon's pods
// are supervised as soon as it looks at them.
//
// What it does is level-triggered: on a die event (and, after each
// (re)subscription, for every pod, since events were missed meanwhile) it
// reads the pod from Docker and decides from its state alone (verdict), so
// a lost or repeated event, or two engines of one owner, do no harm. It
// keeps no state beyond the pods it must leave alone for now: those that
// a StartPod, StopPod, RemovePod, Suspend or Resume of this Engine is
// working on (hold); an event for one of those is looked at again once
// that call is over. A StartPod waits for a stop the supervisor is making
// to end, so the two do not interleave.
//
// The verdict compares times, so it needs nothing remembered: the pod's
// current run began when its holder started. A main container or
// essential sidecar that died after that died in this run, and takes the
// pod down; one that died before is the previous run's (a start under
// way has not reached it yet).

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// supervisor is an Engine's pod supervision (see above). Its zero value
// is ready; the loop starts on the first supervise.
type supervisor struct {
	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the loop and the checks it runs
	// held are the pods a call of this Engine is working on, with whether
	// an event came for one meanwhile.
	held map[string]*holdState
	// checking are the pods a check is under way for.
	checking map[string]*checkState
	// check looks at one pod (checkPod), set when the loop starts.
	check func(id string)
	// ctx ends with the Engine (Close): the supervisor's, and the other
	// background work's (WarmTaskNet), which wg tracks too.
	ctx context.Context
}

type holdState struct {
	n     int
	dirty bool
}

type checkState struct {
	again bool          // another check was asked meanwhile
	done  chan struct{} // closed when the checks end
}

// superviseRetry is the wait before subscribing again after the engine's
// event stream failed.
const superviseRetry = time.Second

// negotiateTimeout bounds the supervisor's wait for the engine's version.
const negotiateTimeout = 10 * time.Second

// checkTimeout bounds one pod's check, stop included.
const checkTimeout = 2 * time.Minute

// supervise starts the Engine's supervisor unless it runs (or the Engine
// is closed). The client negotiates its API version first, here: its
// calls read the version unguarded once it is negotiated, so the loop's
// first calls must not race the caller's first one, which negotiates. An
// engine that does not answer now is supervised from a later call on.
func (e *Engine) supervise() {
	s := &e.sup
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), negotiateTimeout)
	_, err := e.hostPlatform(ctx)
	cancel()
	if err != nil {
		return
	}
	s.started = true
	ctx, cancel = context.WithCancel(context.Background())
	s.ctx, s.cancel = ctx, cancel
	s.check = func(id string) { e.checkPod(ctx, id) }
	s.wg.Go(func() { e.superviseLoop(ctx) })
}

// stopSupervisor ends the supervisor and waits for its checks.
func (e *Engine) stopSupervisor() {
	s := &e.sup
	s.mu.Lock()
	s.closed = true
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.wg.Wait()
}

// hold keeps the supervisor off a pod until release is called.
func (s *supervisor) hold(id string) (release func()) {
	s.mu.Lock()
	if s.held == nil {
		s.held = map[string]*holdState{}
	}
	h := s.held[id]
	if h == nil {
		h = &holdState{}
		s.held[id] = h
	}
	h.n++
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			h.n--
			dirty := h.n == 0 && h.dirty
			if h.n == 0 {
				delete(s.held, id)
			}
			s.mu.Unlock()
			if dirty {
				s.later(id)
			}
		})
	}
}

// later asks for a check of a pod: now, or once it is no longer held.
func (s *supervisor) later(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.held[id]; h != nil {
		h.dirty = true
		return
	}
	if s.closed || !s.started || s.check == nil {
		return
	}
	if s.checking == nil {
		s.checking = map[string]*checkState{}
	}
	if c := s.checking[id]; c != nil {
		c.again = true // once more when this one ends
		return
	}
	s.checking[id] = &checkState{done: make(chan struct{})}
	s.wg.Go(func() { s.check(id) })
}

// waitCheck waits for the end of a check of a pod under way (a stop the
// supervisor is making), so that a start does not race it. Call it
// holding the pod, so no other begins.
// It reports whether there was one.
func (s *supervisor) waitCheck(ctx context.Context, id string) (bool, error) {
	s.mu.Lock()
	c := s.checking[id]
	s.mu.Unlock()
	if c == nil {
		return false, nil
	}
	select {
	case <-c.done:
		return true, nil
	case <-ctx.Done():
		return true, context.Cause(ctx)
	}
}

// superviseLoop follows the engine's die events until ctx ends.
func (e *Engine) superviseLoop(ctx context.Context) {
	s := &e.sup
	args := filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("event", string(events.ActionDie)),
	)
	for ctx.Err() == nil {
		sctx, cancel := context.WithCancel(ctx)
		msgs, errs := e.cli.Events(sctx, events.ListOptions{Filters: args})
		// What died while nobody listened.
		if pis, err := e.listPods(ctx, nil); err == nil {
			for _, pi := range pis {
				if stop, _ := verdict(pi); stop {
					s.later(pi.id())
				}
			}
		} else if ctx.Err() == nil {
			e.log.Warn("supervisor: list pods", "err", err)
		}
	loop:
		for {
			select {
			case m := <-msgs:
				if id := podOfEvent(m); id != "" {
					s.later(id)
				}
			case err := <-errs:
				if ctx.Err() == nil {
					e.log.Warn("supervisor: engine events; subscribing again", "err", err)
				}
				break loop
			case <-ctx.Done():
				break loop
			}
		}
		cancel()
		select {
		case <-ctx.Done():
		case <-time.After(superviseRetry):
		}
	}
}

// podOfEvent is the ID of the pod a container event is about ("" for no
// pod's container, or its holder: a holder's death leaves the pod broken,
// which the control plane decides about; nor for a sidecar of a pod made
// before pods: none of those is essential, pod_legacy.go).
func podOfEvent(m events.Message) string {
	a := m.Actor.Attributes
	if id := a[labelPodID]; id != "" {
		return id
	}
	if _, ok := a[labelPodLayout]; ok || legacyMain(a) {
		return m.Actor.ID
	}
	return ""
}

// checkPod stops a pod whose verdict is to stop, then runs again if asked
// meanwhile.
func (e *Engine) checkPod(ctx context.Context, id string) {
	s := &e.sup
	for {
		e.checkPodOnce(ctx, id)
		s.mu.Lock()
		c := s.checking[id]
		if !c.again || s.held[id] != nil {
			if c.again {
				s.held[id].dirty = true
			}
			delete(s.checking, id)
			close(c.done)
			s.mu.Unlock()
			return
		}
		c.again = false
		s.mu.Unlock()
	}
}

func (e *Engine) checkPodOnce(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	pi, err := e.podMain(ctx, id)
	if err != nil {
		return // gone, or not this owner's
	}
	if wait := holderLinger(pi, time.Now()); wait > 0 && !pi.legacy && pi.layout.Holder {
		// A task's pod whose process just ended: its caller is about to
		// remove it, and a stop (or a look at the rest of the pod) would
		// only compete with what the caller does at its exit.
		time.AfterFunc(wait, func() { e.sup.later(id) })
		return
	}
	if pi, err = e.completePod(ctx, pi, nil); err != nil {
		return
	}
	stop, why := verdict(pi)
	if !stop {
		return
	}
	e.log.Info("pod stopped by its engine", "pod", pi.name(), "why", why)
	if err := e.stopPod(ctx, id, ownGrace); err != nil && ctx.Err() == nil {
		e.log.Warn("supervisor: stop pod", "pod", pi.name(), "err", err)
	}
}

// lingerHolder is how long the supervisor leaves the holder of a pod
// without sidecars running after its main container exited: a task's
// pod, which its caller removes at once.
const lingerHolder = 2 * time.Second

// holderLinger is how much longer, at now, the supervisor leaves a pod
// whose main container exited and of which only the holder runs (0: no
// longer).
func holderLinger(pi podInfo, now time.Time) time.Duration {
	if len(pi.layout.Sidecars) > 0 || pi.main.State == nil || pi.main.State.Running {
		return 0
	}
	ended := parseTime(pi.main.State.FinishedAt)
	if ended.IsZero() {
		return 0
	}
	return max(0, lingerHolder-now.Sub(ended))
}

// verdict decides from a pod's state whether it must be stopped: its main
// container or an essential sidecar died in its current run (see above),
// and something of it still runs.
func verdict(pi podInfo) (bool, string) {
	if !pi.layout.Holder || pi.holder == nil || pi.holder.State == nil {
		return false, "" // a lone container: its exit is the pod's
	}
	runStart := parseTime(pi.holder.State.StartedAt)
	if runStart.IsZero() {
		return false, ""
	}
	anyRuns := pi.holder.State.Running
	for i := range pi.layout.size() {
		if c, ok := pi.inspect(i); ok && c.State != nil && c.State.Running {
			anyRuns = true
		}
	}
	if !anyRuns {
		return false, ""
	}
	diedInRun := func(i int) (bool, int) {
		c, ok := pi.inspect(i)
		if !ok || c.State == nil || c.State.Running || c.State.Status == "created" {
			return false, 0
		}
		return parseTime(c.State.FinishedAt).After(runStart), c.State.ExitCode
	}
	if died, code := diedInRun(0); died {
		return true, fmt.Sprintf("its main container exited with code %d", code)
	}
	if st := pi.main.State; st == nil || !st.Running {
		return false, ""
	}
	for i, sc := range pi.layout.Sidecars {
		if !sc.Essential || sc.Init {
			continue
		}
		if died, code := diedInRun(i + 1); died {
			return true, fmt.Sprintf("its essential sidecar %s exited with code %d", sc.Name, code)
		}
	}
	return false, ""
}
