package fake

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
)

// defaultGrace is a container's time between SIGTERM and SIGKILL when the
// engine stops it on its own (its main container exited, a start failed)
// and its spec says no StopGrace: Docker's default.
const defaultGrace = 10 * time.Second

// exited records a container's exit and applies the pod's rules: the main
// container's exit or an essential sidecar's death stops the pod.
func (w *world) exited(p *pod, c *container, pr *proc, code int, oom bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, o := range c.outs {
		o.flush()
	}
	if c.proc != pr {
		return
	}
	c.running, c.exited = false, true
	c.exitCode, c.oom = code, oom
	c.finishedAt = time.Now()
	c.logs.end()
	if c.main && c.attach != nil {
		c.attach.close()
		c.attach = nil
	}
	for x := range c.execs {
		x.kill(codeKilled, false) // they die with the container's PID 1
	}
	if oom {
		w.emit(p, c, "oom", 0)
	}
	w.emit(p, c, "die", code)
	if c.main {
		p.mainExit.close(code)
	}
	// While starting, StartPod judges; a suspended pod's processes only
	// die of SIGKILL (Kill), which stops it as well.
	if (p.phase == phaseRunning || p.phase == phaseSuspended) && !p.removed && (c.main || (c.essential && !c.init)) {
		w.stopLocked(p, 0, true)
	}
	p.broadcast()
}

// stopLocked stops the pod's containers, each once those that depend on
// it have stopped: SIGTERM, then SIGKILL after grace (with specGrace, each
// container's StopGrace, or defaultGrace). It returns a channel closed
// once nothing of the pod runs and it is exited. The caller holds w.mu.
func (w *world) stopLocked(p *pod, grace time.Duration, specGrace bool) chan struct{} {
	if p.phase == phaseStopping {
		return p.stopped
	}
	p.phase = phaseStopping
	p.stopped = make(chan struct{})
	if p.cancelStart != nil {
		p.cancelStart(errStopping)
		p.cancelStart = nil
	}
	for _, c := range p.containers {
		if c.proc != nil {
			c.proc.thaw()
		}
	}
	stopped := p.stopped
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.stopWaves(p, grace, specGrace, stopped)
	}()
	p.broadcast()
	return stopped
}

var errStopping = errors.New("the pod is being stopped")

// stopWaves stops the pod's running containers wave after wave: each wave
// those on which no other running container depends.
func (w *world) stopWaves(p *pod, grace time.Duration, specGrace bool, stopped chan struct{}) {
	for {
		w.mu.Lock()
		var running []*container
		for _, c := range p.containers {
			if c.running {
				running = append(running, c)
			}
		}
		if len(running) == 0 {
			if p.phase == phaseStopping {
				p.phase = phaseExited
			}
			p.closeFront()
			p.mainExit.close(p.containers[0].exitCode)
			close(stopped)
			p.broadcast()
			w.mu.Unlock()
			return
		}
		var wave []*container
		for _, c := range running {
			needed := false
			for _, o := range running {
				if _, ok := o.deps[c.name]; ok && o != c {
					needed = true
				}
			}
			if !needed {
				wave = append(wave, c)
			}
		}
		if len(wave) == 0 {
			wave = running
		}
		type victim struct {
			pr    *proc
			grace time.Duration
		}
		var vs []victim
		for _, c := range wave {
			g := grace
			if specGrace {
				g = c.spec.StopGrace
				if g <= 0 {
					g = defaultGrace
				}
			}
			vs = append(vs, victim{c.proc, g})
		}
		w.mu.Unlock()

		for _, v := range vs {
			if v.grace <= 0 {
				v.pr.kill(codeKilled, false)
			} else {
				v.pr.term()
			}
		}
		for _, v := range vs {
			if v.grace > 0 {
				t := time.NewTimer(v.grace)
				select {
				case <-v.pr.done:
				case <-t.C:
					v.pr.kill(codeKilled, false)
				}
				t.Stop()
			}
			<-v.pr.done
		}
	}
}

// StopPod stops a pod: each container once those that depend on it have
// stopped, SIGTERM then SIGKILL after grace (0: SIGKILL at once). A pod
// that does not run is not an error.
func (e *Engine) StopPod(ctx context.Context, id string, grace time.Duration) error {
	if err := e.w.fail(opStopPod); err != nil {
		return err
	}
	w := e.w
	w.mu.Lock()
	p, err := w.pod(id)
	if err != nil {
		w.mu.Unlock()
		return err
	}
	var stopped chan struct{}
	switch p.phase {
	case phaseCreated, phaseExited:
		w.mu.Unlock()
		return nil
	case phaseStopping:
		stopped = p.stopped
		if grace <= 0 {
			for _, c := range p.containers {
				if c.running {
					c.proc.kill(codeKilled, false)
				}
			}
		}
	default:
		stopped = w.stopLocked(p, grace, false)
	}
	w.mu.Unlock()
	select {
	case <-stopped:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop pod %s: %w", id, ctxErr(ctx))
	}
}

// RestartContainer starts again a non-essential sidecar that exited, in
// its running pod; one that runs is left alone. The main container is
// refused: the pod is restarted instead.
func (e *Engine) RestartContainer(ctx context.Context, id, name string) error {
	if err := e.w.fail(opRestartContainer); err != nil {
		return err
	}
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	p, err := w.pod(id)
	if err != nil {
		return err
	}
	c := p.container(name)
	if c == nil {
		return fmt.Errorf("%w: no container %q in pod %s", runtime.ErrNotFound, name, p.name)
	}
	if c.main {
		return fmt.Errorf("fake: RestartContainer of the main container %q of pod %s: refused (the pod is restarted, not its main container)", c.name, p.name)
	}
	if p.phase != phaseRunning {
		return fmt.Errorf("fake: RestartContainer %q: pod %s is %s, not running", c.name, p.name, p.state())
	}
	if c.running {
		return nil
	}
	w.startContainer(p, c)
	p.broadcast()
	return nil
}

// WaitPod blocks until the pod's main container exits (in its current
// run, or its next when it is created) and returns the exit code.
func (e *Engine) WaitPod(ctx context.Context, id string) (int, error) {
	if err := e.w.fail(opWaitPod); err != nil {
		return -1, err
	}
	w := e.w
	w.mu.Lock()
	p, err := w.pod(id)
	if err != nil {
		w.mu.Unlock()
		return -1, err
	}
	x, removed := p.mainExit, p.removedc
	w.mu.Unlock()
	select {
	case <-x.ch:
		return x.code, nil
	case <-removed:
		select {
		case <-x.ch:
			return x.code, nil
		default:
			return -1, fmt.Errorf("%w: pod %s was removed", runtime.ErrNotFound, id)
		}
	case <-ctx.Done():
		return -1, ctxErr(ctx)
	}
}
