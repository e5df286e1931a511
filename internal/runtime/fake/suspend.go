package fake

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/internal/runtime"
)

// Suspend freezes a running pod: its processes make no exit until Resume,
// its Addr is closed, and it is off its network (its aliases resolve to
// the others).
func (e *Engine) Suspend(ctx context.Context, id string) error {
	if err := e.w.fail(opSuspend); err != nil {
		return err
	}
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	p, err := w.pod(id)
	if err != nil {
		return err
	}
	if p.phase != phaseRunning {
		return fmt.Errorf("fake: Suspend: pod %s is %s, not running", p.name, p.state())
	}
	for _, c := range p.containers {
		if c.running {
			c.proc.freeze()
		}
		for x := range c.execs {
			x.freeze()
		}
	}
	p.closeFront()
	p.addr = ""
	p.phase = phaseSuspended
	p.broadcast()
	return nil
}

// Resume thaws a suspended pod, back on its network, with a new Addr.
func (e *Engine) Resume(ctx context.Context, id string) (runtime.Pod, error) {
	if err := e.w.fail(opResume); err != nil {
		return runtime.Pod{}, err
	}
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	p, err := w.pod(id)
	if err != nil {
		return runtime.Pod{}, err
	}
	if p.phase != phaseSuspended {
		return runtime.Pod{}, fmt.Errorf("fake: Resume: pod %s is %s, not suspended", p.name, p.state())
	}
	if p.spec.Port > 0 {
		f, err := w.openFront(p.ns, p.spec.Port, p.spec.HostPort)
		if err != nil {
			return runtime.Pod{}, fmt.Errorf("resume pod %s: publish port %d: %w", p.name, p.spec.Port, err)
		}
		p.front, p.addr = f, f.addr()
	}
	p.phase = phaseRunning
	for _, c := range p.containers {
		if c.proc != nil {
			c.proc.thaw()
		}
		for x := range c.execs {
			x.thaw()
		}
	}
	p.broadcast()
	return p.snapshot(), nil
}

// Deregister takes a running pod off its names on its network, and
// reports whether it was on them. It keeps running, but as on Docker
// (where it is disconnected and connected again without its names) its
// published port goes with the names: the connections through it are cut
// and it comes back on a new host port (the same HostPort if one was
// asked), which InspectPod reports. The next start puts the names back.
func (e *Engine) Deregister(ctx context.Context, id string) (bool, error) {
	if err := e.w.fail(opDeregister); err != nil {
		return false, err
	}
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	p, err := w.pod(id)
	if err != nil {
		return false, err
	}
	if !p.registered || p.net == nil || p.phase != phaseRunning {
		return false, nil // no name of its resolves to it
	}
	p.registered = false
	if p.front != nil {
		p.closeFront()
		f, err := w.openFront(p.ns, p.spec.Port, p.spec.HostPort)
		if err != nil {
			p.addr = ""
			return true, fmt.Errorf("deregister pod %s: publish port %d again: %w", p.name, p.spec.Port, err)
		}
		p.front, p.addr = f, f.addr()
	}
	p.broadcast()
	return true, nil
}
