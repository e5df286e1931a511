package fake

import (
	"context"
	"fmt"
	"slices"

	"github.com/berth-dev/berth/internal/runtime"
)

// Operations FailNext can fail: the methods of the engine, by name.
const (
	opEnsureNetwork    = "EnsureNetwork"
	opRemoveNetwork    = "RemoveNetwork"
	opImageID          = "ImageID"
	opCreatePod        = "CreatePod"
	opStartPod         = "StartPod"
	opStopPod          = "StopPod"
	opRemovePod        = "RemovePod"
	opRestartContainer = "RestartContainer"
	opInspectPod       = "InspectPod"
	opListPods         = "ListPods"
	opWaitPod          = "WaitPod"
	opLogs             = "Logs"
	opEvents           = "Events"
	opSuspend          = "Suspend"
	opResume           = "Resume"
	opDeregister       = "Deregister"
	opExecPod          = "ExecPod"
	opAttachPod        = "AttachPod"
	opMemTotal         = "MemTotal"
	opNetworkHeld      = "NetworkHeld"
)

var ops = []string{
	opEnsureNetwork, opRemoveNetwork, opImageID, opCreatePod, opStartPod,
	opStopPod, opRemovePod, opRestartContainer, opInspectPod, opListPods,
	opWaitPod, opLogs, opEvents, opSuspend, opResume, opDeregister,
	opExecPod, opAttachPod, opMemTotal, opNetworkHeld,
}

// FailNext makes the next call of op (a method name: "StartPod",
// "EnsureNetwork", ...) on any view of the engine return err and do
// nothing else; calls queue. A failed StartPod leaves the pod exited, as
// the contract says, and its error is a *runtime.StartError wrapping err
// unless err is one. It panics on an unknown op, so a typo cannot make a
// test pass.
func (e *Engine) FailNext(op string, err error) {
	if !slices.Contains(ops, op) {
		panic(fmt.Sprintf("fake: FailNext(%q): no such operation; one of %v", op, ops))
	}
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	e.w.faults[op] = append(e.w.faults[op], err)
}

// fail returns the error queued for op, if any, or errClosed.
func (w *world) fail(op string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errClosed
	}
	q := w.faults[op]
	if len(q) == 0 {
		return nil
	}
	w.faults[op] = q[1:]
	return q[0]
}

// Kill kills a pod's main container (SIGKILL, exit 137), as the kernel or
// a user's docker kill would; the pod then exits.
func (e *Engine) Kill(id string) error { return e.KillContainer(id, "") }

// KillContainer kills one container of a running pod (SIGKILL, exit 137).
func (e *Engine) KillContainer(id, container string) error {
	return e.killContainer(id, container, false)
}

// OOMKill kills a pod's main container as the kernel does at its memory
// limit: exit 137, OOMKilled, an "oom" event before the "die".
func (e *Engine) OOMKill(id string) error { return e.killContainer(id, "", true) }

func (e *Engine) killContainer(id, container string, oom bool) error {
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	p, err := w.pod(id)
	if err != nil {
		return err
	}
	c := p.container(container)
	if c == nil {
		return fmt.Errorf("%w: no container %q in pod %s", runtime.ErrNotFound, container, p.name)
	}
	if c.proc == nil || !c.running {
		return fmt.Errorf("fake: container %q of pod %s is not running", c.name, p.name)
	}
	c.proc.kill(codeKilled, oom)
	return nil
}

// Vanish removes a pod behind berth's back (a user's docker rm -f): its
// processes are killed (with "die" events) and it is gone.
func (e *Engine) Vanish(id string) error {
	w := e.w
	w.mu.Lock()
	p, err := w.pod(id)
	if err != nil {
		w.mu.Unlock()
		return err
	}
	dones := w.removeLocked(p)
	w.mu.Unlock()
	return waitAll(context.Background(), dones)
}

// Break marks a running pod as unable to serve although its main container
// runs (Pod.Broken = why, as when its network holder died): its Addr stops
// answering. The next start of the pod clears it.
func (e *Engine) Break(id, why string) error {
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	p, err := w.pod(id)
	if err != nil {
		return err
	}
	if p.phase != phaseRunning {
		return fmt.Errorf("fake: pod %s is %s, not running", p.name, p.state())
	}
	p.broken = why
	p.closeFront()
	return nil
}

// SetMemTotal sets the host memory MemTotal reports (and testapp's MEMHOG
// exhausts without a memory limit).
func (e *Engine) SetMemTotal(n int64) {
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	e.w.memTotal = n
}

// RemoveNetworkBehindBack removes a network whatever uses it (a user's
// docker network rm after disconnecting everything): running pods on it
// lose their names there, and a pod on it cannot start until EnsureNetwork
// makes it again (StartPod: a StartError wrapping ErrNetworkNotFound).
func (e *Engine) RemoveNetworkBehindBack(name string) error {
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	if _, ok := e.w.networks[name]; !ok {
		return fmt.Errorf("%w: %s", runtime.ErrNetworkNotFound, name)
	}
	delete(e.w.networks, name)
	return nil
}

// BreakEvents ends every open Events subscription with err on its error
// channel, as a dropped connection to the engine would.
func (e *Engine) BreakEvents(err error) {
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	for s := range e.w.subs {
		s.end(err)
	}
}
