package fake

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
)

// phase is where a pod is, finer than the runtime.PodState it reports.
type phase int

const (
	phaseCreated  phase = iota
	phaseStarting       // StartPod is at work
	phaseRunning
	phaseSuspended
	phaseStopping // its containers are being stopped
	phaseExited
)

// pod is one pod of the world. Everything in it is guarded by world.mu.
type pod struct {
	id, name   string
	seq        int
	spec       runtime.PodSpec
	labels     map[string]string
	containers []*container // main first, then the sidecars in spec order
	createdAt  time.Time

	phase   phase
	run     int // starts so far
	everRan bool
	broken  string

	net        *network // joined at start
	registered bool     // answering to its aliases (Deregister)
	ns         *netns
	front      *front
	addr       string

	changed     chan struct{}           // closed and replaced on every change
	mainExit    *exitWait               // the current (or next) run's main exit
	stopped     chan struct{}           // closed when the current stop ends
	cancelStart context.CancelCauseFunc // ends a StartPod at work
	removed     bool
	removedc    chan struct{}
}

// exitWait is one run's main container exit, for WaitPod.
type exitWait struct {
	ch     chan struct{}
	code   int
	closed bool
}

func newExitWait() *exitWait { return &exitWait{ch: make(chan struct{})} }

func (x *exitWait) close(code int) {
	if !x.closed {
		x.code, x.closed = code, true
		close(x.ch)
	}
}

// container is one container of a pod.
type container struct {
	name      string
	id        string
	main      bool
	essential bool
	init      bool
	deps      map[string]runtime.Condition
	spec      runtime.ContainerSpec
	img       image
	logs      *logBuf
	outs      []*lineWriter
	attach    *attachment // for the next run of the main container
	execs     map[*proc]struct{}

	proc       *proc
	starts     int
	running    bool
	started    bool // in this run of the pod
	exited     bool // in this run of the pod
	healthy    bool // the main container passed StartOptions.Healthy
	exitCode   int  // of its last run, as the engine keeps it
	oom        bool
	startedAt  time.Time
	finishedAt time.Time
}

func (p *pod) broadcast() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// container returns the named container ("" is the main one), or nil.
func (p *pod) container(name string) *container {
	if name == "" {
		return p.containers[0]
	}
	for _, c := range p.containers {
		if c.name == name {
			return c
		}
	}
	return nil
}

// state is the pod's state as the contract reports it: running while its
// main container runs (also while starting or stopping).
func (p *pod) state() runtime.PodState {
	main := p.containers[0]
	switch p.phase {
	case phaseCreated:
		return runtime.PodCreated
	case phaseRunning:
		return runtime.PodRunning
	case phaseSuspended:
		return runtime.PodSuspended
	case phaseStarting, phaseStopping:
		if main.running {
			return runtime.PodRunning
		}
		if !p.everRan && p.phase == phaseStarting {
			return runtime.PodCreated
		}
	}
	return runtime.PodExited
}

func (p *pod) snapshot() runtime.Pod {
	main := p.containers[0]
	out := runtime.Pod{
		ID:        p.id,
		Name:      p.name,
		Labels:    maps.Clone(p.labels),
		State:     p.state(),
		ExitCode:  main.exitCode,
		OOMKilled: main.oom,
		CreatedAt: p.createdAt,
		StartedAt: main.startedAt,
	}
	if out.State == runtime.PodRunning {
		// As on Docker: a broken pod has no address to give.
		out.Broken = p.broken
		if p.broken == "" {
			out.Addr = p.addr
		}
	}
	for _, c := range p.containers {
		out.Containers = append(out.Containers, runtime.ContainerStatus{
			Name:       c.name,
			ID:         c.id,
			Main:       c.main,
			Running:    c.running,
			ExitCode:   c.exitCode,
			OOMKilled:  c.oom,
			StartedAt:  c.startedAt,
			FinishedAt: c.finishedAt,
		})
	}
	return out
}

// CreatePod creates a pod without starting anything. Its images and
// network must exist; its depends_on must name its containers, without a
// cycle.
func (e *Engine) CreatePod(ctx context.Context, spec runtime.PodSpec) (runtime.Pod, error) {
	if err := e.w.fail(opCreatePod); err != nil {
		return runtime.Pod{}, err
	}
	spec = cloneSpec(spec)
	if err := validate(spec); err != nil {
		return runtime.Pod{}, err
	}
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return runtime.Pod{}, errClosed
	}
	if _, taken := w.names[spec.Name]; taken {
		return runtime.Pod{}, fmt.Errorf("fake: the pod name %s is in use", spec.Name)
	}
	if spec.Network != "" {
		if _, ok := w.networks[spec.Network]; !ok {
			return runtime.Pod{}, fmt.Errorf("%w: %s", runtime.ErrNetworkNotFound, spec.Network)
		}
	}
	p := &pod{
		id:        randomHex(32),
		name:      spec.Name,
		seq:       w.seq(),
		spec:      spec,
		labels:    e.withOwner(spec.Labels),
		createdAt: time.Now(),
		changed:   make(chan struct{}),
		mainExit:  newExitWait(),
		removedc:  make(chan struct{}),
	}
	add := func(cs runtime.ContainerSpec, main, essential bool, deps map[string]runtime.Condition) error {
		img, ok := w.image(cs.Image)
		if !ok {
			return fmt.Errorf("%w: %s (container %s)", runtime.ErrImageNotFound, cs.Image, cs.Name)
		}
		p.containers = append(p.containers, &container{
			name: cs.Name, id: randomHex(32), main: main, essential: essential,
			init: !main && spec.Init(cs.Name), deps: deps, spec: cs, img: img,
			logs: newLogBuf(), execs: map[*proc]struct{}{},
		})
		return nil
	}
	if err := add(spec.Main, true, true, spec.MainDependsOn); err != nil {
		return runtime.Pod{}, err
	}
	for _, s := range spec.Sidecars {
		if err := add(s.ContainerSpec, false, s.Essential, s.DependsOn); err != nil {
			return runtime.Pod{}, err
		}
	}
	w.pods[p.id] = p
	w.names[p.name] = p.id
	return p.snapshot(), nil
}

// seq numbers pods in the order they were made, for ListPods.
func (w *world) seq() int {
	w.made++
	return w.made
}

// validate refuses a spec no engine could run.
func validate(spec runtime.PodSpec) error {
	if spec.Name == "" {
		return errors.New("fake: a pod needs a name")
	}
	names := map[string]bool{spec.Main.Name: true}
	for _, s := range spec.Sidecars {
		if s.Name == "" {
			return fmt.Errorf("fake: pod %s: a sidecar needs a name", spec.Name)
		}
		if names[s.Name] {
			return fmt.Errorf("fake: pod %s: two containers are named %q", spec.Name, s.Name)
		}
		names[s.Name] = true
	}
	deps := map[string]map[string]runtime.Condition{spec.Main.Name: spec.MainDependsOn}
	for _, s := range spec.Sidecars {
		deps[s.Name] = s.DependsOn
	}
	for name, ds := range deps {
		for d, cond := range ds {
			if !names[d] || d == name {
				return fmt.Errorf("fake: pod %s: container %q depends on %q, which is not another container of the pod", spec.Name, name, d)
			}
			switch cond {
			case runtime.ConditionStart, runtime.ConditionHealthy, runtime.ConditionComplete, runtime.ConditionSuccess:
			default:
				return fmt.Errorf("fake: pod %s: container %q depends on %q with unknown condition %q", spec.Name, name, d, cond)
			}
		}
	}
	// A cycle would wait forever.
	state := map[string]int{} // 1: visiting, 2: done
	var visit func(string) error
	visit = func(n string) error {
		switch state[n] {
		case 1:
			return fmt.Errorf("fake: pod %s: depends_on has a cycle through %q", spec.Name, n)
		case 2:
			return nil
		}
		state[n] = 1
		for _, d := range slices.Sorted(maps.Keys(deps[n])) {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[n] = 2
		return nil
	}
	for _, n := range slices.Sorted(maps.Keys(deps)) {
		if err := visit(n); err != nil {
			return err
		}
	}
	return nil
}

func cloneSpec(s runtime.PodSpec) runtime.PodSpec {
	s.Labels = maps.Clone(s.Labels)
	s.Aliases = slices.Clone(s.Aliases)
	s.InternalNames = slices.Clone(s.InternalNames)
	s.Main = cloneContainer(s.Main)
	s.MainDependsOn = maps.Clone(s.MainDependsOn)
	s.Sidecars = slices.Clone(s.Sidecars)
	for i := range s.Sidecars {
		s.Sidecars[i].ContainerSpec = cloneContainer(s.Sidecars[i].ContainerSpec)
		s.Sidecars[i].DependsOn = maps.Clone(s.Sidecars[i].DependsOn)
	}
	return s
}

func cloneContainer(c runtime.ContainerSpec) runtime.ContainerSpec {
	c.Command = slices.Clone(c.Command)
	c.Env = maps.Clone(c.Env)
	c.Labels = maps.Clone(c.Labels)
	c.Aliases = slices.Clone(c.Aliases)
	c.ExtraHosts = slices.Clone(c.ExtraHosts)
	return c
}

// InspectPod returns a pod's state (by ID or name), or ErrNotFound.
func (e *Engine) InspectPod(ctx context.Context, id string) (runtime.Pod, error) {
	if err := e.w.fail(opInspectPod); err != nil {
		return runtime.Pod{}, err
	}
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	p, err := e.w.pod(id)
	if err != nil {
		return runtime.Pod{}, err
	}
	return p.snapshot(), nil
}

// ListPods returns the owner's pods carrying all of labels, oldest first.
func (e *Engine) ListPods(ctx context.Context, labels map[string]string) ([]runtime.Pod, error) {
	if err := e.w.fail(opListPods); err != nil {
		return nil, err
	}
	owner := e.Owner()
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, errClosed
	}
	var ps []*pod
	for _, p := range w.pods {
		if owner.Owns(p.labels) && hasLabels(p.labels, labels) {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, func(a, b *pod) int { return a.seq - b.seq })
	out := make([]runtime.Pod, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.snapshot())
	}
	return out, nil
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// RemovePod kills what runs of a pod and forgets it. A missing pod is not
// an error.
func (e *Engine) RemovePod(ctx context.Context, id string) error {
	if err := e.w.fail(opRemovePod); err != nil {
		return err
	}
	w := e.w
	w.mu.Lock()
	p, err := w.pod(id)
	if errors.Is(err, runtime.ErrNotFound) {
		w.mu.Unlock()
		return nil
	}
	if err != nil {
		w.mu.Unlock()
		return err
	}
	dones := w.removeLocked(p)
	w.mu.Unlock()
	return waitAll(ctx, dones)
}

// removeLocked kills the pod's processes and forgets it; their exits are
// reported ("die") as they end, and the returned channels close then. The
// caller holds w.mu.
func (w *world) removeLocked(p *pod) []chan struct{} {
	if p.removed {
		return nil
	}
	var dones []chan struct{}
	p.removed = true
	close(p.removedc)
	delete(w.pods, p.id)
	delete(w.names, p.name)
	if p.cancelStart != nil {
		p.cancelStart(errRemoved)
	}
	for _, c := range p.containers {
		if c.proc != nil {
			c.proc.thaw()
			c.proc.kill(codeKilled, false)
			dones = append(dones, c.proc.done)
		}
		for x := range c.execs {
			x.kill(codeKilled, false)
			dones = append(dones, x.done)
		}
		c.logs.remove()
		if c.attach != nil {
			c.attach.close()
			c.attach = nil
		}
	}
	p.closeFront()
	p.phase = phaseExited
	p.broadcast()
	return dones
}

var errRemoved = errors.New("the pod was removed")

// waitAll waits until every channel of dones is closed, or ctx ends.
func waitAll(ctx context.Context, dones []chan struct{}) error {
	for _, d := range dones {
		select {
		case <-d:
		case <-ctx.Done():
			return ctxErr(ctx)
		}
	}
	return nil
}

func (p *pod) closeFront() {
	if p.front != nil {
		p.front.close()
		p.front = nil
	}
}
