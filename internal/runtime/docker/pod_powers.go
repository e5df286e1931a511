package docker

// The rest of the pod contract (waits, logs) and the optional powers
// (suspend and resume, attach, exec), each on the pod's containers.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/berth-dev/berth/internal/runtime"
)

// WaitPod blocks until the pod's main container exits and returns its exit
// code (at once for one that exited already).
func (e *Engine) WaitPod(ctx context.Context, id string) (int, error) {
	e.supervise()
	pi, err := e.podMain(ctx, id)
	if err != nil {
		return 0, err
	}
	code, err := e.wait(ctx, pi.main)
	if err == nil && code == 137 && memoryLimited(pi.main) {
		e.settleOOM(ctx, pi.main.ID)
	}
	return code, err
}

// memoryLimited reports whether c runs under a memory limit, so a SIGKILL
// may be the kernel's OOM killer.
func memoryLimited(c container.InspectResponse) bool {
	return c.HostConfig != nil && c.HostConfig.Memory > 0
}

// Logs streams the output lines of a pod's container ("" or the main
// container's name: the main one) to fn. With Follow it ends when the
// container stops, the pod is removed or ctx ends.
func (e *Engine) Logs(ctx context.Context, id, name string, opts runtime.LogOptions, fn func(runtime.LogLine)) error {
	c, err := e.containerOf(ctx, id, name)
	if err != nil {
		return err
	}
	return e.logs(ctx, c.ID, c.Config != nil && c.Config.Tty, opts, fn)
}

// containerOf reads a pod's container by its in-pod name: the main one
// alone, a sidecar with the rest of the pod.
func (e *Engine) containerOf(ctx context.Context, id, name string) (container.InspectResponse, error) {
	e.supervise()
	pi, err := e.podMain(ctx, id)
	if err != nil {
		return container.InspectResponse{}, err
	}
	if name == "" || name == pi.layout.Main {
		return pi.main, nil
	}
	if pi, err = e.inspectPod(ctx, pi.id()); err != nil {
		return container.InspectResponse{}, err
	}
	c, ok := pi.sidecars[name]
	if !ok {
		return container.InspectResponse{}, fmt.Errorf("%w: pod %s has no container %q", runtime.ErrNotFound, pi.name(), name)
	}
	return c, nil
}

// AttachPod connects to a created pod's main container's stdio (see
// Attach: attach before StartPod to see all of its output).
func (e *Engine) AttachPod(ctx context.Context, id string) (runtime.Stream, error) {
	c, err := e.containerOf(ctx, id, "")
	if err != nil {
		return nil, err
	}
	return e.attach(ctx, c)
}

// ResizePod sets the window size of a TTY pod's main container.
func (e *Engine) ResizePod(ctx context.Context, id string, height, width uint) error {
	c, err := e.containerOf(ctx, id, "")
	if err != nil {
		return err
	}
	return e.resizeContainer(ctx, c.ID, height, width)
}

// ExecPod runs cmd in a running container of a pod (see Exec).
func (e *Engine) ExecPod(ctx context.Context, id, name string, cmd []string, tty bool) (runtime.ExecSession, error) {
	c, err := e.containerOf(ctx, id, name)
	if err != nil {
		return nil, err
	}
	return e.Exec(ctx, c.ID, cmd, tty)
}

// Suspend freezes a running pod (see freeze): it is taken off the app
// network (its names resolve to the other pods; its port goes), and all
// its processes are frozen, keeping their memory. A suspended pod is left.
func (e *Engine) Suspend(ctx context.Context, id string) error {
	e.supervise()
	release := e.sup.hold(id)
	defer release()
	start := time.Now()
	pi, err := e.inspectPod(ctx, id)
	if err != nil {
		return err
	}
	switch st := pi.state(); {
	case st == runtime.PodSuspended:
		return nil
	case st != runtime.PodRunning:
		return fmt.Errorf("suspend pod %s: it is %s", pi.name(), st)
	}
	if !pi.layout.Holder {
		return e.freeze(ctx, pi.id())
	}
	if pi.holder == nil {
		return fmt.Errorf("suspend pod %s: its network holder is gone", pi.name())
	}
	// Off the network first (the holder holds it), then every process.
	if err := e.freeze(ctx, pi.holder.ID); err != nil {
		return fmt.Errorf("suspend pod %s: %w", pi.name(), err)
	}
	var paused []string
	for i := range pi.layout.size() {
		c, ok := pi.inspect(i)
		if !ok || c.State == nil || !c.State.Running || c.State.Paused {
			continue
		}
		if err := e.cli.ContainerPause(ctx, c.ID); err != nil {
			uctx := context.WithoutCancel(ctx)
			for _, p := range paused {
				_ = e.cli.ContainerUnpause(uctx, p)
			}
			_, terr := e.thawContainer(uctx, pi.holder.ID)
			return errors.Join(fmt.Errorf("suspend pod %s: %w", pi.name(), notFoundOr(c.ID, "pause", err)), terr)
		}
		paused = append(paused, c.ID)
	}
	e.log.Debug("pod suspended", "pod", pi.name(), "took", time.Since(start))
	return nil
}

// Resume thaws a suspended pod, back on the app network under its names
// with its address there, and returns it with its new Addr.
func (e *Engine) Resume(ctx context.Context, id string) (runtime.Pod, error) {
	e.supervise()
	release := e.sup.hold(id)
	defer release()
	start := time.Now()
	pi, err := e.inspectPod(ctx, id)
	if err != nil {
		return runtime.Pod{}, err
	}
	if st := pi.state(); st != runtime.PodSuspended {
		return runtime.Pod{}, fmt.Errorf("resume pod %s: it is %s, not suspended", pi.name(), st)
	}
	if pi.layout.Holder {
		if pi.holder == nil {
			return runtime.Pod{}, fmt.Errorf("resume pod %s: its network holder is gone", pi.name())
		}
		if pi.holder.State != nil && pi.holder.State.Paused {
			if _, err := e.thaw(ctx, *pi.holder); err != nil {
				return runtime.Pod{}, fmt.Errorf("resume pod %s: %w", pi.name(), err)
			}
		}
	}
	for i := range pi.layout.size() {
		c, ok := pi.inspect(i)
		if !ok || c.State == nil || !c.State.Paused {
			continue
		}
		if i == 0 && !pi.layout.Holder {
			if _, err := e.thaw(ctx, c); err != nil {
				return runtime.Pod{}, fmt.Errorf("resume pod %s: %w", pi.name(), err)
			}
			continue
		}
		if err := e.cli.ContainerUnpause(ctx, c.ID); err != nil {
			return runtime.Pod{}, fmt.Errorf("resume pod %s: %w", pi.name(), notFoundOr(c.ID, "unpause", err))
		}
	}
	p, err := e.InspectPod(ctx, id)
	if err != nil {
		return runtime.Pod{}, err
	}
	e.log.Debug("pod resumed", "pod", p.Name, "addr", p.Addr, "took", time.Since(start))
	return p, nil
}
