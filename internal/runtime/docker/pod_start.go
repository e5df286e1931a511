package docker

// Starting a pod. The holder first (it holds the address and the port),
// then every container once its depends_on conditions hold:
//
//	                  holder started
//	created ──▶ holder ─────────────▶ each container starts when its depends_on
//	                                  conditions hold:  start    (the other started)
//	                                                    healthy  (the main one passed
//	                                                              StartOptions.Healthy;
//	                                                              a sidecar: started)
//	                                                    complete (the other exited)
//	                                                    success  (the other exited 0)
//	           ──▶ started: the main container is healthy and every container has
//	               started (init containers may have exited)
//
// While it starts, the engine watches each container's exit: the main
// one's, or an essential sidecar's, fails the start (the main one's only
// with a Healthy check: without one, a main container that exits at once
// is a pod that ran, and exited). Once started, the pod is the
// supervisor's (pod_supervise.go).

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/berth-dev/berth/internal/runtime"
)

// startNode is one container of a starting pod.
type startNode struct {
	index     int
	name      string
	info      container.InspectResponse // as StartPod found it
	deps      map[int]runtime.Condition
	essential bool
	main      bool
	// Closed when the container started, passed its health check (the
	// main container; a sidecar's is its start), exited (code and oom are
	// set then).
	started, healthy, exited chan struct{}
	code                     int
	oom                      bool
}

// errMainExited cancels the rest of a start whose main container (with no
// health check) exited: the pod ran, and is over.
var errMainExited = errors.New("the main container exited")

// StartPod starts a created or exited pod and returns it once its main
// container is healthy (opts.Healthy) and all its containers have started.
// A failure is a *runtime.StartError, and leaves the pod exited.
func (e *Engine) StartPod(ctx context.Context, id string, opts runtime.StartOptions) (runtime.Pod, error) {
	e.supervise()
	// A task's pod created moments ago: its holder runs as it was taken.
	pi, err := e.inspectPodWith(ctx, id, e.tasks.joined(id))
	if err != nil {
		return runtime.Pod{}, err
	}
	release := e.sup.hold(pi.id())
	defer release()
	if waited, err := e.sup.waitCheck(ctx, pi.id()); err != nil {
		return runtime.Pod{}, err
	} else if waited {
		if pi, err = e.inspectPod(ctx, pi.id()); err != nil { // as the supervisor left it
			return runtime.Pod{}, err
		}
	}
	// A task's pod: the next task's holder starts once this one has
	// (pod_tasknet.go).
	defer e.tasks.warmPending(pi.id())
	if st := pi.state(); st == runtime.PodRunning || st == runtime.PodSuspended {
		return runtime.Pod{}, fmt.Errorf("start pod %s: it is %s already", pi.name(), st)
	}
	start := time.Now()
	// A holder that ran before the start (a task's, pod_tasknet.go) runs
	// on as inspected: the pod is read back without it.
	var holder *container.InspectResponse
	if h := pi.holder; h != nil && h.State != nil && h.State.Running && !h.State.Paused {
		holder = h
	}
	err = e.runPod(ctx, pi, opts)
	// Not cancelled: what the start did is cleaned up and reported.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	if err != nil {
		e.log.Debug("pod failed to start", "pod", pi.name(), "err", err, "took", time.Since(start))
		if serr := e.stopPod(cctx, pi.id(), 0); serr != nil {
			e.log.Warn("stop a pod that failed to start", "pod", pi.name(), "err", serr)
		}
		p, _ := e.InspectPod(cctx, pi.id())
		return p, err
	}
	after, err := e.inspectPodWith(cctx, pi.id(), holder)
	if err != nil {
		return runtime.Pod{}, err
	}
	p := after.pod()
	if p.State == runtime.PodExited {
		// Its main container exited at once: the rest of the pod goes too,
		// as the supervisor would see to, once this start lets go of it.
		e.sup.later(pi.id())
	}
	e.log.Debug("pod started", "pod", p.Name, "addr", p.Addr, "took", time.Since(start))
	return p, nil
}

// stopTimeout bounds the stop of what a failed start started, which no
// caller's context bounds.
const stopTimeout = time.Minute

// runPod starts the holder and then every container in depends_on order.
func (e *Engine) runPod(ctx context.Context, pi podInfo, opts runtime.StartOptions) error {
	l := pi.layout
	addr := ""
	if l.Holder {
		if pi.holder == nil {
			return &runtime.StartError{Err: fmt.Errorf("pod %s: its network holder is gone", pi.name())}
		}
		// A ready task holder (pod_tasknet.go) runs already.
		c := toContainer(*pi.holder)
		if !c.Running {
			var err error
			if c, err = e.start(ctx, *pi.holder, true); err != nil {
				return &runtime.StartError{Err: fmt.Errorf("pod %s: start its network holder: %w", pi.name(), err)}
			}
		}
		addr = c.HostAddr
	}
	nodes := make([]*startNode, l.size())
	for i, deps := range l.deps() {
		c, ok := pi.inspect(i)
		if !ok {
			return &runtime.StartError{Container: l.name(i), Err: fmt.Errorf("%w: its container is gone", runtime.ErrNotFound)}
		}
		n := &startNode{
			index: i, name: l.name(i), info: c, main: i == 0, essential: i == 0,
			deps:    map[int]runtime.Condition{},
			started: make(chan struct{}), healthy: make(chan struct{}), exited: make(chan struct{}),
		}
		if i > 0 {
			n.essential = l.Sidecars[i-1].Essential && !l.Sidecars[i-1].Init
		}
		for dep, cond := range deps {
			n.deps[l.index(dep)] = cond
		}
		nodes[i] = n
	}

	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Exit watchers outlive their node's start, but not the pod's.
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	var (
		mu      sync.Mutex
		first   error
		wg      sync.WaitGroup
		watches sync.WaitGroup
	)
	defer func() {
		stopWatch()
		watches.Wait()
	}()
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = err
			cancel(err)
		}
	}
	s := &podStart{e: e, pi: pi, opts: opts, nodes: nodes, addr: addr, ctx: ctx, watchCtx: watchCtx, watches: &watches, fail: fail}
	for _, n := range nodes {
		wg.Go(func() {
			if err := s.run(n); err != nil {
				fail(err)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	switch {
	case errors.Is(first, errMainExited):
		return nil
	case first != nil:
		return first
	case parent.Err() != nil:
		return &runtime.StartError{Err: fmt.Errorf("pod %s: %w", pi.name(), context.Cause(parent))}
	}
	return nil
}

// podStart is one StartPod under way.
type podStart struct {
	e        *Engine
	pi       podInfo
	opts     runtime.StartOptions
	nodes    []*startNode
	addr     string // the holder's, or the main container's once started
	addrMu   sync.Mutex
	ctx      context.Context // cancelled when the start fails
	watchCtx context.Context // ends with the start
	watches  *sync.WaitGroup
	fail     func(error)
}

// run waits for n's dependencies, starts it, watches its exit and, for the
// main container, waits until it is healthy. Its error fails the start;
// nil when it started, or the start failed elsewhere.
func (s *podStart) run(n *startNode) error {
	for dep, cond := range n.deps {
		t := s.nodes[dep]
		ready := t.exited
		switch cond {
		case runtime.ConditionStart:
			ready = t.started
		case runtime.ConditionHealthy:
			ready = t.healthy
		}
		select {
		case <-ready:
		case <-s.ctx.Done():
			return nil
		}
		if cond == runtime.ConditionSuccess && t.code != 0 {
			return &runtime.StartError{Container: t.name, Err: fmt.Errorf("%w, so %s never started", exitedErr(t.code, t.oom), nameOf(n))}
		}
	}
	if s.ctx.Err() != nil {
		return nil
	}
	// Only the main container without a holder has an address to read.
	ownAddr := n.main && !s.pi.layout.Holder
	c, err := s.e.start(s.ctx, n.info, ownAddr)
	if err != nil {
		if s.ctx.Err() != nil {
			return nil
		}
		return &runtime.StartError{Container: n.name, Err: err}
	}
	if ownAddr {
		s.addrMu.Lock()
		s.addr = c.HostAddr
		s.addrMu.Unlock()
	}
	close(n.started)
	// Watched even when nothing waits on its exit (a lone main container
	// without a health check): without, a container the kernel killed out
	// of memory at once was reported at times with OOMKilled false
	// (TestConformance/OOMKilled, 3 runs in 5), with, never in as many.
	s.watches.Go(func() { s.watch(n) })
	if !n.main {
		close(n.healthy)
		return nil
	}
	if s.opts.Healthy != nil {
		s.addrMu.Lock()
		addr := s.addr
		s.addrMu.Unlock()
		if err := s.opts.Healthy(s.ctx, addr); err != nil {
			if s.ctx.Err() != nil {
				return nil // the pod failed meanwhile: that is the error
			}
			// It may have exited just now: say so rather than what the
			// check saw of it.
			if info, ierr := s.e.cli.ContainerInspect(s.watchCtx, n.info.ID); ierr == nil && info.State != nil && !info.State.Running {
				return &runtime.StartError{Container: n.name, Err: exitedErr(info.State.ExitCode, s.oomKilled(n, info.State))}
			}
			return &runtime.StartError{Container: n.name, Err: err}
		}
	}
	close(n.healthy)
	return nil
}

// watch waits for n's exit while the pod starts: an essential container's
// fails the start (the main container's without a health check ends it).
func (s *podStart) watch(n *startNode) {
	code, err := s.e.waitStarted(s.watchCtx, n.info.ID)
	if err != nil {
		return
	}
	if info, err := s.e.cli.ContainerInspect(s.watchCtx, n.info.ID); err == nil && info.State != nil {
		n.oom = s.oomKilled(n, info.State)
	}
	n.code = code
	close(n.exited)
	switch {
	case s.ctx.Err() != nil:
	case n.main && s.opts.Healthy == nil:
		s.fail(errMainExited)
	case n.essential:
		s.fail(&runtime.StartError{Container: n.name, Err: exitedErr(code, n.oom)})
	}
}

// oomKilled is whether n, read after its exit with state st, was killed
// out of memory: under a memory limit, a 137 that Docker does not mark so
// waits for the engine's oom event (oomAfterExit), or a deploy killed out
// of memory while it started would not say so.
func (s *podStart) oomKilled(n *startNode, st *container.State) bool {
	if !memoryLimited(n.info) {
		return st.OOMKilled
	}
	return s.e.oomAfterExit(s.watchCtx, n.info.ID, st)
}

// exitedErr is a container's exit during a start.
func exitedErr(code int, oom bool) error {
	if oom {
		return fmt.Errorf("%w with code %d (out of memory)", runtime.ErrExited, code)
	}
	return fmt.Errorf("%w with code %d", runtime.ErrExited, code)
}

// nameOf names a container of a pod in a message.
func nameOf(n *startNode) string {
	if n.name == "" {
		return "the main container"
	}
	return n.name
}

// waitStarted waits for the exit of a container this engine just started
// (so it runs, or exited since) and returns its code.
func (e *Engine) waitStarted(ctx context.Context, id string) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results, errs := e.cli.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case res := <-results:
		if res.Error != nil && res.Error.Message != "" {
			return int(res.StatusCode), fmt.Errorf("wait container %s: %s", shortID(id), res.Error.Message)
		}
		return int(res.StatusCode), nil
	case err := <-errs:
		return 0, notFoundOr(id, "wait", err)
	}
}
