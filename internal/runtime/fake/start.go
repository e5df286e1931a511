package fake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
)

// StartPod starts a created or exited pod: each container once its
// depends_on hold, returning once the main container is healthy and every
// container has started (see runtime.PodEngine).
func (e *Engine) StartPod(ctx context.Context, id string, opts runtime.StartOptions) (runtime.Pod, error) {
	w := e.w
	injected := w.fail(opStartPod)
	w.mu.Lock()
	p, err := w.pod(id)
	if err != nil {
		w.mu.Unlock()
		return runtime.Pod{}, err
	}
	switch p.phase {
	case phaseStarting, phaseRunning, phaseSuspended, phaseStopping:
		defer w.mu.Unlock()
		return runtime.Pod{}, fmt.Errorf("fake: pod %s is %s (%s): StartPod starts only a created or exited pod", p.name, p.state(), p.phaseName())
	}
	if injected != nil {
		p.phase = phaseExited
		p.mainExit.close(p.containers[0].exitCode)
		snap := p.snapshot()
		w.mu.Unlock()
		var se *runtime.StartError
		if errors.As(injected, &se) {
			return snap, injected
		}
		return snap, &runtime.StartError{Err: injected}
	}

	run := p.beginRun()
	if fail := w.joinNetwork(p); fail != nil {
		p.phase = phaseExited
		p.mainExit.close(p.containers[0].exitCode)
		w.mu.Unlock()
		return runtime.Pod{}, fail
	}
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	p.cancelStart = cancel
	p.phase = phaseStarting
	p.broadcast()

	h := &health{done: make(chan struct{})}
	for {
		if p.removed || p.run != run || p.phase != phaseStarting {
			snap := p.snapshot()
			why := fmt.Errorf("fake: pod %s was stopped while starting", p.name)
			if p.removed {
				why = fmt.Errorf("%w: pod %s was removed while starting", runtime.ErrNotFound, p.name)
			}
			w.mu.Unlock()
			cancel(why)
			h.wait()
			return snap, &runtime.StartError{Err: why}
		}
		done, fail := w.step(p, run, sctx, opts, h)
		if fail == nil && done {
			main := p.containers[0]
			if main.exited {
				// It started and exited at once: no StartError, the pod
				// is (being) stopped like any whose main exited.
				p.phase = phaseRunning
				w.stopLocked(p, 0, true)
			} else {
				p.phase = phaseRunning
				p.cancelStart = nil
			}
			p.broadcast()
			snap := p.snapshot()
			w.mu.Unlock()
			cancel(nil)
			h.wait()
			return snap, nil
		}
		if fail == nil && sctx.Err() != nil {
			fail = &runtime.StartError{Err: fmt.Errorf("start of pod %s abandoned: %w", p.name, context.Cause(sctx))}
		}
		if fail != nil {
			stopped := w.stopLocked(p, 0, true)
			w.mu.Unlock()
			cancel(fail)
			h.wait()
			<-stopped // a failed start leaves the pod exited
			w.mu.Lock()
			snap := p.snapshot()
			w.mu.Unlock()
			return snap, fail
		}
		changed := p.changed
		w.mu.Unlock()
		select {
		case <-changed:
		case <-sctx.Done():
		}
		w.mu.Lock()
	}
}

func (p *pod) phaseName() string {
	return [...]string{"created", "starting", "running", "suspended", "stopping", "exited"}[p.phase]
}

// beginRun readies the pod for a new run; its containers' statuses stay
// those of their last run until they start again. The caller holds w.mu.
func (p *pod) beginRun() int {
	p.run++
	p.broken = ""
	p.registered = true
	p.ns = &netns{ports: map[int]string{}}
	if p.mainExit.closed {
		p.mainExit = newExitWait()
	}
	for _, c := range p.containers {
		c.started, c.exited, c.healthy = false, false, false
	}
	return p.run
}

// joinNetwork puts the pod on its network and publishes its port; a
// failure is the pod's own StartError. The caller holds w.mu.
func (w *world) joinNetwork(p *pod) *runtime.StartError {
	p.net = nil
	if name := p.spec.Network; name != "" {
		n, ok := w.networks[name]
		if !ok {
			return &runtime.StartError{Err: fmt.Errorf("%w: %s (pod %s)", runtime.ErrNetworkNotFound, name, p.name)}
		}
		p.net = n
	}
	p.addr = ""
	if p.spec.Port > 0 {
		f, err := w.openFront(p.ns, p.spec.Port, p.spec.HostPort)
		if err != nil {
			return &runtime.StartError{Err: fmt.Errorf("publish port %d of pod %s: %w", p.spec.Port, p.name, err)}
		}
		p.front, p.addr = f, f.addr()
	}
	return nil
}

// health is one StartPod's call of StartOptions.Healthy.
type health struct {
	started bool
	done    chan struct{}
	err     error
}

func (h *health) wait() {
	if h.started {
		<-h.done
	}
}

// step starts every container whose depends_on hold, and says whether the
// start is done (every container started, the main one healthy) or failed.
// The caller holds w.mu.
func (w *world) step(p *pod, run int, ctx context.Context, opts runtime.StartOptions, h *health) (bool, *runtime.StartError) {
	main := p.containers[0]
	if main.exited {
		if !main.healthy {
			return false, &runtime.StartError{Container: main.name, Err: exitErr(main)}
		}
		return true, nil
	}
	if h.err != nil {
		return false, &runtime.StartError{Container: main.name, Err: fmt.Errorf("health check: %w", h.err)}
	}
	for _, c := range p.containers[1:] {
		if c.exited && c.essential && !c.init {
			return false, &runtime.StartError{Container: c.name, Err: exitErr(c)}
		}
	}
	for progress := true; progress; {
		progress = false
		for _, c := range p.containers {
			if c.started {
				continue
			}
			ok, fail := p.depsHold(c)
			if fail != nil {
				return false, fail
			}
			if !ok {
				continue
			}
			w.startContainer(p, c)
			progress = true
			if c.main {
				if opts.Healthy == nil {
					c.healthy = true
				} else {
					h.started = true
					go w.checkHealth(p, run, ctx, opts.Healthy, h)
				}
			}
		}
	}
	for _, c := range p.containers {
		if !c.started {
			return false, nil
		}
	}
	return main.healthy, nil
}

// checkHealth runs StartOptions.Healthy and records its answer.
func (w *world) checkHealth(p *pod, run int, ctx context.Context, healthy func(context.Context, string) error, h *health) {
	defer close(h.done)
	w.mu.Lock()
	addr := p.addr
	w.mu.Unlock()
	err := healthy(ctx, addr)
	w.mu.Lock()
	defer w.mu.Unlock()
	if p.run != run {
		return
	}
	if err != nil {
		h.err = err
	} else {
		p.containers[0].healthy = true
	}
	p.broadcast()
}

// depsHold says whether c's depends_on hold, or that they never will.
func (p *pod) depsHold(c *container) (bool, *runtime.StartError) {
	for name, cond := range c.deps {
		d := p.container(name)
		switch cond {
		case runtime.ConditionStart:
			if !d.started {
				return false, nil
			}
		case runtime.ConditionHealthy:
			if !d.started || (d.main && !d.healthy) {
				return false, nil
			}
		case runtime.ConditionComplete:
			if !d.exited {
				return false, nil
			}
		case runtime.ConditionSuccess:
			if !d.exited {
				return false, nil
			}
			if d.exitCode != 0 {
				return false, &runtime.StartError{Container: d.name, Err: fmt.Errorf("%w, and %s waits on its success", exitErr(d), c.name)}
			}
		}
	}
	return true, nil
}

// exitErr is ErrExited with a container's code.
func exitErr(c *container) error {
	if c.oom {
		return fmt.Errorf("%w with code %d (out of memory)", runtime.ErrExited, c.exitCode)
	}
	return fmt.Errorf("%w with code %d", runtime.ErrExited, c.exitCode)
}

// startContainer runs a container of a pod. The caller holds w.mu.
func (w *world) startContainer(p *pod, c *container) {
	argv := c.spec.Command
	if len(argv) == 0 {
		argv = c.img.Cmd
	}
	env := maps.Clone(c.img.Env)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, c.spec.Env)
	pr := newProc(append([]string(nil), argv...), env)
	if len(c.img.Cmd) > 0 {
		pr.binary = c.img.Cmd[0]
	}
	pr.hostname = p.id[:12]
	pr.memLimit = c.spec.Memory
	if pr.memLimit <= 0 {
		pr.memLimit = w.memTotal
	}
	pr.net = nsView{w: w, p: p, ns: p.ns}

	tty := c.main && p.spec.TTY
	stdout := &lineWriter{b: c.logs, stream: "stdout"}
	stderr := &lineWriter{b: c.logs, stream: "stderr"}
	if tty {
		stderr.stream = "stdout"
	}
	c.outs = []*lineWriter{stdout, stderr}
	var out, errOut io.Writer = stdout, stderr
	if a := c.attach; a != nil && c.main {
		out, errOut = tee{stdout, a.stdout}, tee{stderr, a.stderr}
		if tty {
			errOut = tee{stderr, a.stdout}
		}
		if a.stdin != nil {
			pr.stdin = a.stdin
		}
	} else if c.main && p.spec.OpenStdin {
		pr.stdin = newPipe() // open, and nobody writes: reads wait
	}
	pr.stdout, pr.stderr = output{pr, out}, output{pr, errOut}

	c.proc = pr
	c.starts++
	c.running, c.started, c.exited = true, true, false
	c.exitCode, c.oom = 0, false
	c.startedAt, c.finishedAt = time.Now(), time.Time{}
	if c.main {
		p.everRan = true
	}
	c.logs.begin(c.starts)
	w.emit(p, c, "start", 0)
	pr.start(&w.wg, func(code int, oom bool) { w.exited(p, c, pr, code, oom) })
}

// tee writes to a log and to an attached client, whose failures (it went
// away) do not concern the process.
type tee struct {
	log    io.Writer
	client io.Writer
}

func (t tee) Write(b []byte) (int, error) {
	_, _ = t.client.Write(b)
	return t.log.Write(b)
}
