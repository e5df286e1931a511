package docker

// Stopping a pod: each container once those that depend on it have
// stopped (a log shipper after the service it ships for), then the holder
// that keeps their network. StopPod, the supervisor (pod_supervise.go) and
// a failed start (pod_start.go) stop pods this way. Restarting one sidecar
// alone is here too: the control plane's to ask for, the engine's to do.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
)

// ownGrace stops each container with its own stop grace (stopPod).
const ownGrace = -1

// stopPod stops a pod's containers, each once those that depend on it have
// stopped, then its holder: with grace 0 by SIGKILL, with ownGrace by each
// container's own stop grace, else SIGTERM and SIGKILL after grace.
func (e *Engine) stopPod(ctx context.Context, id string, grace time.Duration) error {
	pi, err := e.inspectPod(ctx, id)
	if err != nil {
		return err
	}
	l := pi.layout
	dependents := l.dependents()
	stopped := make([]chan struct{}, l.size())
	for i := range stopped {
		stopped[i] = make(chan struct{})
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := range l.size() {
		wg.Go(func() {
			defer close(stopped[i])
			for _, d := range dependents[i] {
				<-stopped[d]
			}
			c, ok := pi.inspect(i)
			if !ok || c.State == nil || !c.State.Running {
				return
			}
			if err := e.stopOne(ctx, c.ID, grace); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", containerLabel(l.name(i), i), err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if h := pi.holder; h != nil && h.State != nil && h.State.Running {
		if err := e.stopOne(ctx, h.ID, grace); err != nil {
			errs = append(errs, fmt.Errorf("network holder: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stop pod %s: %w", pi.name(), err)
	}
	return nil
}

// stopOne stops one container (see stopPod for grace).
func (e *Engine) stopOne(ctx context.Context, id string, grace time.Duration) error {
	switch {
	case grace < 0:
		return e.stopContainer(ctx, id, 0)
	case grace > 0:
		return e.stopContainer(ctx, id, grace)
	}
	if err := e.cli.ContainerKill(ctx, id, "KILL"); err != nil {
		if notRunning(err) {
			e.relist(ctx, id)
			return nil
		}
		return notFoundOr(id, "kill", err)
	}
	if _, err := e.waitContainer(ctx, id); err != nil {
		return err
	}
	e.relist(ctx, id)
	return nil
}

// containerLabel names a pod's container in an error.
func containerLabel(name string, i int) string {
	switch {
	case name != "":
		return name
	case i == 0:
		return "main container"
	}
	return fmt.Sprintf("container %d", i)
}

// notRunning is Docker's refusal to signal a container that does not run.
func notRunning(err error) bool {
	return err != nil && strings.Contains(err.Error(), "is not running")
}

// StopPod stops a pod: each container once those that depend on it have
// stopped, then its holder, with SIGTERM and SIGKILL after grace (0: at
// once). A stopped pod is not an error; a missing one is ErrNotFound.
func (e *Engine) StopPod(ctx context.Context, id string, grace time.Duration) error {
	e.supervise()
	release := e.sup.hold(id)
	defer release()
	start := time.Now()
	if err := e.stopPod(ctx, id, grace); err != nil {
		return err
	}
	e.log.Debug("pod stopped", "pod", shortID(id), "took", time.Since(start))
	return nil
}

// RestartContainer starts again an exited sidecar of a running pod. The
// main container is refused (restart the pod); a running sidecar is left.
func (e *Engine) RestartContainer(ctx context.Context, id, name string) error {
	e.supervise()
	pi, err := e.inspectPod(ctx, id)
	if err != nil {
		return err
	}
	if name == "" || name == pi.layout.Main {
		return fmt.Errorf("pod %s: its main container is not restarted alone; start the pod again", pi.name())
	}
	c, ok := pi.sidecars[name]
	if !ok {
		return fmt.Errorf("%w: pod %s has no container %q", runtime.ErrNotFound, pi.name(), name)
	}
	if st := pi.state(); st != runtime.PodRunning {
		return fmt.Errorf("pod %s is %s: its sidecar %s restarts with it", pi.name(), st, name)
	}
	if c.State != nil && c.State.Running {
		return nil
	}
	if _, err := e.startContainer(ctx, c.ID); err != nil {
		return fmt.Errorf("pod %s: restart sidecar %s: %w", pi.name(), name, err)
	}
	return nil
}
