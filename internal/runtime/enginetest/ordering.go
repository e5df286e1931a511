package enginetest

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
)

// container returns the named container's status, failing the check when
// the pod lacks it.
func (c *env) container(p runtime.Pod, name string) runtime.ContainerStatus {
	c.Helper()
	s, ok := p.Container(name)
	if !ok {
		c.Fatalf("the pod has no container %q in its Containers (%s), want every container of the spec", name, describe(p))
	}
	return s
}

// withInit is a pod whose main container (sleeping) waits on a "migrate"
// sidecar (testapp migrate, exiting MIGRATE_EXIT) with cond.
func (c *env) withInit(exit string, cond runtime.Condition) runtime.PodSpec {
	spec := c.task("sleep", "60s")
	migrate := c.sidecar("migrate", false, "migrate")
	migrate.Env["MIGRATE_EXIT"] = exit
	spec.Sidecars = []runtime.SidecarSpec{migrate}
	spec.MainDependsOn = map[string]runtime.Condition{"migrate": cond}
	return spec
}

// checkInit: a main container that depends on an init sidecar's success
// starts after it exited 0, and on another's completion after it exited,
// whatever its code (5); Containers lists the main container first, then
// the sidecars in spec order.
func checkInit(c *env) {
	spec := c.withInit("0", runtime.ConditionSuccess)
	seed := c.sidecar("seed", false, "migrate")
	seed.Env["MIGRATE_EXIT"] = "5"
	spec.Sidecars = append(spec.Sidecars, seed)
	spec.MainDependsOn["seed"] = runtime.ConditionComplete
	p := c.run(spec)
	if p.State != runtime.PodRunning {
		c.Fatalf("StartPod returned the pod %s (%s), want it running once its init sidecars succeeded and completed", p.State, describe(p))
	}
	if len(p.Containers) != 3 || p.Containers[0].Name != spec.Main.Name || !p.Containers[0].Main || p.Containers[1].Name != "migrate" || p.Containers[2].Name != "seed" {
		c.Errorf("the pod's Containers are %s, want %q (main), \"migrate\", \"seed\"", describe(p), spec.Main.Name)
	}
	main := c.container(p, spec.Main.Name)
	for name, code := range map[string]int{"migrate": 0, "seed": 5} {
		s := c.container(p, name)
		if s.Running || s.ExitCode != code || s.FinishedAt.IsZero() {
			c.Errorf("the init sidecar %s is running %v with exit %d, finished %v; want it exited %d", name, s.Running, s.ExitCode, s.FinishedAt, code)
		}
		if main.StartedAt.Before(s.FinishedAt) {
			c.Errorf("the main container started at %v, before its init sidecar %s finished at %v; want it to wait", main.StartedAt, name, s.FinishedAt)
		}
	}
	if !main.Running {
		c.Errorf("the main container does not run (%s), want it running", describe(p))
	}
	if got := c.logText(p.ID, "migrate"); got != "migrating...\nmigrated\n" {
		c.Errorf("Logs(\"migrate\") = %q, want the init sidecar's own output", got)
	}
}

// checkInitFailure: an init sidecar the main container waits on to
// succeed exits 1: StartPod fails with a StartError naming the sidecar,
// wrapping ErrExited; the main container never started and the pod is
// exited.
func checkInitFailure(c *env) {
	p := c.create(c.withInit("1", runtime.ConditionSuccess))
	_, err := c.e.StartPod(c.opCtx(), p.ID, runtime.StartOptions{})
	var se *runtime.StartError
	switch {
	case err == nil:
		c.Errorf("StartPod with an init sidecar exiting 1 (main waits on its success) = nil, want a *runtime.StartError")
	case !errors.As(err, &se):
		c.Errorf("StartPod with a failing init sidecar = %v (%T), want a *runtime.StartError", err, err)
	case se.Container != "migrate" || !errors.Is(err, runtime.ErrExited):
		c.Errorf("StartPod with a failing init sidecar = StartError{Container: %q, Err: %v}, want Container \"migrate\" and an Err wrapping runtime.ErrExited", se.Container, se.Err)
	}
	q := c.stopped(p.ID)
	if m, ok := c.mainOf(q); ok && !m.StartedAt.IsZero() {
		c.Errorf("the main container started at %v, want it never started (its init sidecar failed)", m.StartedAt)
	}
	if migrate := c.container(q, "migrate"); migrate.ExitCode != 1 {
		c.Errorf("the init sidecar's ExitCode = %d, want 1", migrate.ExitCode)
	}
}

// checkOrder: depends_on orders the starts, and StopPod stops each
// container once those that depend on it have stopped. The main container
// waits on "before" to start and on "ready" to be healthy (on a sidecar:
// started); "after" waits on the main container to start. They start
// before and ready, main, after, and stop after, main, before and ready.
func checkOrder(c *env) {
	spec := c.task("sleep", "60s")
	before := c.sidecar("before", false, "sleep", "60s")
	ready := c.sidecar("ready", false, "sleep", "60s")
	after := c.sidecar("after", false, "sleep", "60s")
	after.DependsOn = map[string]runtime.Condition{spec.Main.Name: runtime.ConditionStart}
	spec.Sidecars = []runtime.SidecarSpec{after, before, ready} // not in order
	spec.MainDependsOn = map[string]runtime.Condition{"before": runtime.ConditionStart, "ready": runtime.ConditionHealthy}
	p := c.run(spec)
	b, r, m, a := c.container(p, "before"), c.container(p, "ready"), c.container(p, spec.Main.Name), c.container(p, "after")
	if !b.Running || !r.Running || !m.Running || !a.Running {
		c.Fatalf("StartPod returned %s, want every container running", describe(p))
	}
	if m.StartedAt.Before(b.StartedAt) || m.StartedAt.Before(r.StartedAt) || a.StartedAt.Before(m.StartedAt) {
		c.Errorf("started at before %v, ready %v, main %v, after %v; want main after before (start) and ready (healthy), after after main", b.StartedAt, r.StartedAt, m.StartedAt, a.StartedAt)
	}

	if err := c.e.StopPod(c.opCtx(), p.ID, 10*time.Second); err != nil {
		c.Fatalf("StopPod = %v, want nil", err)
	}
	q := c.stopped(p.ID)
	b, r, m, a = c.container(q, "before"), c.container(q, "ready"), c.container(q, spec.Main.Name), c.container(q, "after")
	if m.FinishedAt.Before(a.FinishedAt) || b.FinishedAt.Before(m.FinishedAt) || r.FinishedAt.Before(m.FinishedAt) {
		c.Errorf("StopPod stopped after at %v, main at %v, before at %v, ready at %v; want after, main, then before and ready (each once those depending on it stopped)", a.FinishedAt, m.FinishedAt, b.FinishedAt, r.FinishedAt)
	}
}

// checkHealthyOrder: StartOptions.Healthy gets the pod's Addr; a sidecar
// depending on the main container being healthy starts only once Healthy
// returned nil.
func checkHealthyOrder(c *env) {
	spec := c.instance(nil)
	after := c.sidecar("after", false, "sleep", "60s")
	after.DependsOn = map[string]runtime.Condition{spec.Main.Name: runtime.ConditionHealthy}
	spec.Sidecars = []runtime.SidecarSpec{after}
	p := c.create(spec)

	var (
		mu       sync.Mutex
		gotAddr  string
		duringOK bool
		during   runtime.Pod
		called   int
	)
	healthy := func(ctx context.Context, addr string) error {
		mu.Lock()
		gotAddr = addr
		called++
		mu.Unlock()
		if err := waitOK(ctx, addr, "/healthz"); err != nil {
			return err
		}
		q, err := c.e.InspectPod(ctx, p.ID)
		mu.Lock()
		during, duringOK = q, err == nil
		mu.Unlock()
		return nil
	}
	started := c.start(p.ID, runtime.StartOptions{Healthy: healthy})
	mu.Lock()
	defer mu.Unlock()
	if called != 1 {
		c.Fatalf("StartOptions.Healthy was called %d times, want once", called)
	}
	if gotAddr == "" || gotAddr != started.Addr {
		c.Errorf("StartOptions.Healthy was called with %q, want the pod's Addr %q", gotAddr, started.Addr)
	}
	if !duringOK {
		c.Fatalf("InspectPod during StartOptions.Healthy failed, want the pod")
	}
	if a := c.container(during, "after"); a.Running || !a.StartedAt.IsZero() {
		c.Errorf("while the main container was not yet healthy the sidecar depending on it being healthy had started (%s), want it waiting", describe(during))
	}
	if a := c.container(started, "after"); !a.Running {
		c.Errorf("after StartPod the sidecar depending on the main container being healthy is not running (%s)", describe(started))
	}
}

// waitOK polls GET addr/path until it answers 200 or ctx ends.
func waitOK(ctx context.Context, addr, path string) error {
	for {
		code, _, err := get(ctx, addr, path)
		if err == nil && code == http.StatusOK {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkHealthyError: Healthy's error fails the start with a StartError
// carrying it; the sidecar waiting on health never starts, and the pod is
// exited.
func checkHealthyError(c *env) {
	spec := c.task("serve")
	after := c.sidecar("after", false, "sleep", "60s")
	after.DependsOn = map[string]runtime.Condition{spec.Main.Name: runtime.ConditionHealthy}
	spec.Sidecars = []runtime.SidecarSpec{after}
	p := c.create(spec)
	unhealthy := errors.New("unhealthy on purpose")
	_, err := c.e.StartPod(c.opCtx(), p.ID, runtime.StartOptions{Healthy: func(context.Context, string) error { return unhealthy }})
	var se *runtime.StartError
	if !errors.As(err, &se) || !errors.Is(err, unhealthy) {
		c.Errorf("StartPod whose Healthy failed = %v, want a *runtime.StartError wrapping Healthy's error", err)
	} else if se.Container != spec.Main.Name && se.Container != "" {
		c.Errorf("the StartError of a failed health check names container %q, want the main container (%q)", se.Container, spec.Main.Name)
	}
	q := c.stopped(p.ID)
	if a := c.container(q, "after"); !a.StartedAt.IsZero() {
		c.Errorf("the sidecar waiting on the main container's health started at %v, want it never started", a.StartedAt)
	}
}

// checkHealthyCancelled: when the main container dies while Healthy runs,
// the engine cancels Healthy's context and StartPod fails.
func checkHealthyCancelled(c *env) {
	spec := c.task("serve")
	spec.Main.Env["CRASH_AFTER"] = "2s"
	p := c.create(spec)
	var (
		mu     sync.Mutex
		called bool
	)
	returned := make(chan struct{})
	healthy := func(ctx context.Context, addr string) error {
		mu.Lock()
		called = true
		mu.Unlock()
		defer close(returned)
		<-ctx.Done()
		return context.Cause(ctx)
	}
	start := time.Now()
	_, err := c.e.StartPod(c.ctx(3*c.h.startWithin()), p.ID, runtime.StartOptions{Healthy: healthy})
	var se *runtime.StartError
	if !errors.As(err, &se) {
		c.Errorf("StartPod whose main container died during Healthy = %v, want a *runtime.StartError", err)
	}
	if took := time.Since(start); took > c.h.startWithin()+5*time.Second {
		c.Errorf("StartPod returned %s after it began, the main container dying at 2s; want Healthy's context cancelled then", took.Round(time.Millisecond))
	}
	mu.Lock()
	wasCalled := called
	mu.Unlock()
	if wasCalled { // a slow engine may see the crash before it asks Healthy
		select {
		case <-returned:
		case <-time.After(5 * time.Second):
			c.Errorf("StartOptions.Healthy's context still not done 5s after StartPod returned, want it cancelled when the pod failed")
		}
	}
	q := c.stopped(p.ID)
	if q.ExitCode != 3 {
		c.Errorf("the pod's ExitCode = %d, want 3 (the app's crash)", q.ExitCode)
	}
}

// checkEssentialDies: when an essential sidecar exits the engine stops the
// pod.
func checkEssentialDies(c *env) {
	spec := c.task("sleep", "60s")
	spec.Sidecars = []runtime.SidecarSpec{c.sidecar("side", true, "sleep", "2s")}
	p := c.create(spec)
	if _, err := c.e.StartPod(c.opCtx(), p.ID, runtime.StartOptions{}); err != nil {
		// A slow engine may see the sidecar die before the start ends.
		var se *runtime.StartError
		if !errors.As(err, &se) || se.Container != "side" {
			c.Fatalf("StartPod = %v, want nil (or a StartError naming \"side\" if it died during the start)", err)
		}
	}
	q := c.stopped(p.ID)
	if s := c.container(q, "side"); s.ExitCode != 0 {
		c.Errorf("the essential sidecar's ExitCode = %d, want 0 (sleep 2s)", s.ExitCode)
	}
}

// checkNonEssential: a non-essential sidecar that exits leaves the pod
// running; RestartContainer starts it again, and does nothing to it while
// it runs.
func checkNonEssential(c *env) {
	spec := c.task("sleep", "60s")
	spec.Sidecars = []runtime.SidecarSpec{c.sidecar("side", false, "sleep", "2s")}
	p := c.run(spec)
	q := c.eventually(p.ID, c.h.startWithin()+5*time.Second, "the sidecar exited", func(q runtime.Pod) bool {
		s, ok := q.Container("side")
		return ok && !s.Running && !s.FinishedAt.IsZero()
	})
	if m, ok := c.mainOf(q); q.State != runtime.PodRunning || (ok && !m.Running) {
		c.Fatalf("after a non-essential sidecar exited the pod is %s (%s), want it running", q.State, describe(q))
	}
	first := c.container(q, "side")
	if err := c.e.RestartContainer(c.opCtx(), p.ID, "side"); err != nil {
		c.Fatalf("RestartContainer of an exited non-essential sidecar = %v, want nil", err)
	}
	q = c.eventually(p.ID, c.h.startWithin(), "the sidecar running again", func(q runtime.Pod) bool {
		s, ok := q.Container("side")
		return ok && s.Running
	})
	again := c.container(q, "side")
	if !again.StartedAt.After(first.FinishedAt) {
		c.Errorf("the restarted sidecar has StartedAt %v, want after its exit at %v", again.StartedAt, first.FinishedAt)
	}
	if err := c.e.RestartContainer(c.opCtx(), p.ID, "side"); err != nil {
		c.Errorf("RestartContainer of a running sidecar = %v, want nil (it does nothing)", err)
	}
	if s := c.container(c.inspect(p.ID), "side"); s.Running && !s.StartedAt.Equal(again.StartedAt) {
		c.Errorf("RestartContainer of a running sidecar restarted it (StartedAt %v, was %v), want nothing done", s.StartedAt, again.StartedAt)
	}
}

// checkRestartMain: RestartContainer of the main container is refused,
// by "" or by its name, and leaves it running.
func checkRestartMain(c *env) {
	spec := c.task("sleep", "30s")
	p := c.run(spec)
	for _, name := range []string{"", spec.Main.Name} {
		if err := c.e.RestartContainer(c.opCtx(), p.ID, name); err == nil {
			c.Errorf("RestartContainer(%q) of the main container = nil, want it refused", name)
		}
	}
	if q := c.inspect(p.ID); q.State != runtime.PodRunning || !q.StartedAt.Equal(p.StartedAt) {
		c.Errorf("after refused RestartContainer calls the pod is %s, started %v; want running as before (started %v)", q.State, q.StartedAt, p.StartedAt)
	}
}
