package enginetest

import (
	"time"

	"github.com/berth-dev/berth/internal/runtime"
)

// checkLifecycle: a pod is created (nothing runs, no Addr), started
// (running, serving on Addr), stopped (exited, the app's own exit code),
// stopped again (no error) and removed (ErrNotFound after).
func checkLifecycle(c *env) {
	spec := c.instance(map[string]string{"MARK": c.app})
	created := c.create(spec)
	if created.State != runtime.PodCreated {
		c.Errorf("CreatePod returned a pod %s, want %s", created.State, runtime.PodCreated)
	}
	if created.Name != spec.Name {
		c.Errorf("CreatePod returned a pod named %q, want the spec's %q", created.Name, spec.Name)
	}
	c.hasLabels("CreatePod", created, spec.Labels)
	if created.Addr != "" {
		c.Errorf("a created pod has Addr %q, want none until it runs", created.Addr)
	}
	if p := c.inspect(created.ID); p.State != runtime.PodCreated || p.ID != created.ID {
		c.Errorf("InspectPod of a created pod = %s with ID %q, want %s with ID %q", p.State, p.ID, runtime.PodCreated, created.ID)
	}

	p := c.start(created.ID, runtime.StartOptions{})
	if p.State != runtime.PodRunning {
		c.Errorf("StartPod returned a pod %s (%s), want %s", p.State, describe(p), runtime.PodRunning)
	}
	if p.StartedAt.IsZero() {
		c.Errorf("StartPod returned a pod with no StartedAt")
	}
	main, ok := c.mainOf(p)
	if ok && !main.Running {
		c.Errorf("StartPod returned a pod whose main container is not running (%s)", describe(p))
	}
	if got := c.serves(p.Addr, "/env/MARK"); got != c.app {
		c.Errorf("GET /env/MARK on the pod's Addr = %q, want %q (the spec's Env)", got, c.app)
	}
	if got := c.serves(p.Addr, "/healthz"); got != "ok" {
		c.Errorf("GET /healthz on the pod's Addr = %q, want ok", got)
	}

	if err := c.e.StopPod(c.opCtx(), p.ID, 10*time.Second); err != nil {
		c.Fatalf("StopPod of a running pod = %v, want nil", err)
	}
	p = c.inspect(p.ID)
	if p.State != runtime.PodExited {
		c.Errorf("after StopPod returned the pod is %s (%s), want %s", p.State, describe(p), runtime.PodExited)
	}
	if p.ExitCode != 0 {
		c.Errorf("after StopPod (SIGTERM) the pod's ExitCode = %d, want 0 (the app exits 0 on SIGTERM)", p.ExitCode)
	}
	if p.Addr != "" {
		c.Errorf("an exited pod has Addr %q, want none", p.Addr)
	}
	for _, s := range p.Containers {
		if s.Running {
			c.Errorf("after StopPod container %q still runs, want nothing running", s.Name)
		}
	}
	if err := c.e.StopPod(c.opCtx(), p.ID, 10*time.Second); err != nil {
		c.Errorf("StopPod of a stopped pod = %v, want nil", err)
	}

	if err := c.e.RemovePod(c.opCtx(), p.ID); err != nil {
		c.Fatalf("RemovePod = %v, want nil", err)
	}
	_, err := c.e.InspectPod(c.opCtx(), p.ID)
	c.notFound("InspectPod after RemovePod", err)
}

// mainOf returns the pod's main container: the first, marked Main.
func (c *env) mainOf(p runtime.Pod) (runtime.ContainerStatus, bool) {
	c.Helper()
	if len(p.Containers) == 0 || !p.Containers[0].Main {
		c.Errorf("the pod's Containers are %+v, want the main container first, marked Main", p.Containers)
		return runtime.ContainerStatus{}, false
	}
	return p.Containers[0], true
}

// hasLabels checks that p carries every label of want.
func (c *env) hasLabels(op string, p runtime.Pod, want map[string]string) {
	c.Helper()
	for k, v := range want {
		if p.Labels[k] != v {
			c.Errorf("%s: the pod's label %s = %q, want %q (the spec's); its labels: %v", op, k, p.Labels[k], v, p.Labels)
			return
		}
	}
}
