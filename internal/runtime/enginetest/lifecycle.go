package enginetest

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/testutil"
)

// checkLifecycle: a pod is created (nothing runs, no Addr), started
// (running, serving on Addr, the host port it asked for), stopped (exited,
// the app's own exit code), stopped again (no error) and removed
// (ErrNotFound after).
func checkLifecycle(c *env) {
	spec := c.instance(map[string]string{"MARK": c.app})
	spec.HostPort = freePort(c)
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
	if ok && main.Name != spec.Main.Name {
		c.Errorf("the main container's status is named %q, want its spec's name %q", main.Name, spec.Main.Name)
	}
	if want := fmt.Sprintf("127.0.0.1:%d", spec.HostPort); p.Addr != want {
		c.Errorf("a pod with HostPort %d has Addr %q, want %q", spec.HostPort, p.Addr, want)
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

// checkExitCode: a main container that exits 3 at once is no StartError;
// WaitPod, Pod.ExitCode and the main container's status say 3, at once
// for a pod already exited.
func checkExitCode(c *env) {
	p := c.create(c.task("exit", "3"))
	if _, err := c.e.StartPod(c.opCtx(), p.ID, runtime.StartOptions{}); err != nil {
		c.Errorf("StartPod of a pod whose main container exits 3 at once = %v, want nil (with no StartOptions.Healthy that is no StartError)", err)
	}
	if code, err := c.e.WaitPod(c.opCtx(), p.ID); err != nil || code != 3 {
		c.Errorf("WaitPod = %d, %v, want 3 (the main container's exit code)", code, err)
	}
	p = c.stopped(p.ID)
	if p.ExitCode != 3 || p.OOMKilled {
		c.Errorf("the exited pod has ExitCode %d, OOMKilled %v, want 3, false", p.ExitCode, p.OOMKilled)
	}
	if m, ok := c.mainOf(p); ok && (m.ExitCode != 3 || m.FinishedAt.IsZero()) {
		c.Errorf("the main container's status has ExitCode %d, FinishedAt %v, want 3 and a time", m.ExitCode, m.FinishedAt)
	}
	ctx := c.ctx(5 * time.Second)
	if code, err := c.e.WaitPod(ctx, p.ID); err != nil || code != 3 {
		c.Errorf("WaitPod of a pod that has exited = %d, %v, want 3 at once", code, err)
	}
}

// checkOOMKilled: the app allocating past its memory limit is killed by
// the kernel, and the pod says so.
func checkOOMKilled(c *env) {
	spec := c.task("serve")
	spec.Main.Env["MEMHOG"] = "1"
	spec.Main.Memory = 32 << 20
	p := c.create(spec)
	if _, err := c.e.StartPod(c.opCtx(), p.ID, runtime.StartOptions{}); err != nil {
		var se *runtime.StartError
		if !errors.As(err, &se) {
			c.Fatalf("StartPod = %v, want nil or a *runtime.StartError", err)
		}
	}
	code, err := c.e.WaitPod(c.opCtx(), p.ID)
	if err != nil {
		c.Fatalf("WaitPod = %v, want the exit of a container killed out of memory", err)
	}
	p = c.stopped(p.ID)
	if !p.OOMKilled || code == 0 {
		c.Errorf("a pod whose main container exceeded its 32 MiB limit has OOMKilled %v, exit %d; want true and a non-zero exit (%s)", p.OOMKilled, code, describe(p))
	}
	if m, ok := c.mainOf(p); ok && !m.OOMKilled {
		c.Errorf("the main container's status has OOMKilled false, want true")
	}
}

// checkStartRunning: StartPod of a running pod is an error, and leaves it
// running.
func checkStartRunning(c *env) {
	p := c.run(c.task("sleep", "60s"))
	if _, err := c.e.StartPod(c.opCtx(), p.ID, runtime.StartOptions{}); err == nil {
		c.Errorf("StartPod of a running pod = nil, want an error")
	}
	if q := c.inspect(p.ID); q.State != runtime.PodRunning || !q.StartedAt.Equal(p.StartedAt) {
		c.Errorf("after a refused StartPod the pod is %s, started at %v; want it running as before (started at %v)", q.State, q.StartedAt, p.StartedAt)
	}
}

// checkMissing: StopPod, StartPod and InspectPod of a removed pod, or of
// one that never was, are ErrNotFound; RemovePod of them is nil.
func checkMissing(c *env) {
	p := c.create(c.task("exit", "0"))
	if err := c.e.RemovePod(c.opCtx(), p.ID); err != nil {
		c.Fatalf("RemovePod of a created pod = %v, want nil", err)
	}
	for _, id := range []string{p.ID, testutil.UniqueName(c.T, "never-made")} {
		c.notFound("StopPod", c.e.StopPod(c.opCtx(), id, time.Second))
		_, err := c.e.StartPod(c.opCtx(), id, runtime.StartOptions{})
		c.notFound("StartPod", err)
		_, err = c.e.InspectPod(c.opCtx(), id)
		c.notFound("InspectPod", err)
		if err := c.e.RemovePod(c.opCtx(), id); err != nil {
			c.Errorf("RemovePod of a missing pod = %v, want nil", err)
		}
	}
}

// checkStartAgain: a stopped pod is started anew: running, serving on its
// (maybe new) Addr, with a later StartedAt.
func checkStartAgain(c *env) {
	first := c.run(c.instance(nil))
	c.serves(first.Addr, "/healthz")
	if err := c.e.StopPod(c.opCtx(), first.ID, 10*time.Second); err != nil {
		c.Fatalf("StopPod = %v, want nil", err)
	}
	c.stopped(first.ID)
	again := c.start(first.ID, runtime.StartOptions{})
	if again.State != runtime.PodRunning {
		c.Errorf("StartPod of a stopped pod returned it %s (%s), want %s", again.State, describe(again), runtime.PodRunning)
	}
	if !again.StartedAt.After(first.StartedAt) {
		c.Errorf("the pod started again has StartedAt %v, want after its first start %v", again.StartedAt, first.StartedAt)
	}
	c.serves(again.Addr, "/healthz")
}

// checkCreateFailure: a CreatePod that fails (a sidecar's image is
// missing) leaves nothing; a pod name in use is refused.
func checkCreateFailure(c *env) {
	spec := c.task("sleep", "30s")
	missing := testutil.UniqueName(c.T, "missing") + ":never-built"
	side := c.sidecar("side", false, "sleep", "30s")
	side.Image = missing
	spec.Sidecars = []runtime.SidecarSpec{side}
	if p, err := c.e.CreatePod(c.opCtx(), spec); err == nil {
		_ = c.e.RemovePod(c.opCtx(), p.ID)
		c.Errorf("CreatePod with a sidecar of image %s = nil, want ErrImageNotFound", missing)
	} else if !errors.Is(err, runtime.ErrImageNotFound) {
		c.Errorf("CreatePod with a sidecar of image %s = %v, want an error wrapping runtime.ErrImageNotFound", missing, err)
	}
	if ps := c.list(c.e, map[string]string{runtime.LabelApp: c.app}); len(ps) != 0 {
		c.Errorf("after a failed CreatePod ListPods finds %d pods (%s), want none: nothing it created is left", len(ps), names(ps))
	}

	ok := c.task("sleep", "30s")
	c.create(ok)
	dup := c.task("exit", "0")
	dup.Name = ok.Name
	if p, err := c.e.CreatePod(c.opCtx(), dup); err == nil {
		_ = c.e.RemovePod(c.opCtx(), p.ID)
		c.Errorf("CreatePod of a second pod named %s = nil, want an error (pod names are unique on the engine)", ok.Name)
	}
}

// freePort returns a host port nothing listens on (now).
func freePort(c *env) int {
	c.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// checkGraceZero: StopPod with grace 0 kills at once, even an app that
// ignores SIGTERM.
func checkGraceZero(c *env) {
	p := c.run(c.ignoring())
	c.logsSay(p.ID, "", "listening on")
	start := time.Now()
	if err := c.e.StopPod(c.opCtx(), p.ID, 0); err != nil {
		c.Fatalf("StopPod(grace 0) = %v, want nil", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		c.Errorf("StopPod(grace 0) of an app ignoring SIGTERM took %s, want it killed at once (SIGKILL)", took.Round(time.Millisecond))
	}
	p = c.stopped(p.ID)
	if p.ExitCode != 137 {
		c.Errorf("after StopPod(grace 0) the pod's ExitCode = %d, want 137 (128 + SIGKILL)", p.ExitCode)
	}
}

// checkGraceThenKill: StopPod sends SIGTERM, then SIGKILL after grace.
func checkGraceThenKill(c *env) {
	const grace = time.Second
	p := c.run(c.ignoring())
	c.logsSay(p.ID, "", "listening on")
	start := time.Now()
	if err := c.e.StopPod(c.opCtx(), p.ID, grace); err != nil {
		c.Fatalf("StopPod(grace 1s) = %v, want nil", err)
	}
	took := time.Since(start)
	if took < grace*9/10 {
		c.Errorf("StopPod(grace 1s) of an app ignoring SIGTERM returned after %s, want SIGKILL only after the grace", took.Round(time.Millisecond))
	}
	if took > grace+10*time.Second {
		c.Errorf("StopPod(grace 1s) of an app ignoring SIGTERM took %s, want SIGKILL after the grace", took.Round(time.Millisecond))
	}
	p = c.stopped(p.ID)
	if p.ExitCode != 137 {
		c.Errorf("the pod's ExitCode = %d, want 137 (128 + SIGKILL after the grace)", p.ExitCode)
	}
	if lines := c.logText(p.ID, ""); !strings.Contains(lines, "ignoring terminated") {
		c.Errorf("the app's log is %q, want %q: SIGTERM first", lines, "ignoring terminated")
	}
}

// ignoring is a task serving with EXIT_ON_SIGTERM=ignore; once run, the
// check waits for it to be listening, and so to have subscribed to SIGTERM
// to ignore it.
func (c *env) ignoring() runtime.PodSpec {
	spec := c.task("serve")
	spec.Main.Env["EXIT_ON_SIGTERM"] = "ignore"
	return spec
}

// logsSay waits until a container's log contains text.
func (c *env) logsSay(id, container, text string) {
	c.Helper()
	deadline := time.Now().Add(c.h.startWithin())
	for {
		got := c.logText(id, container)
		if strings.Contains(got, text) {
			return
		}
		if time.Now().After(deadline) {
			c.Fatalf("the log of %q is %q after %s, want it to say %q", container, got, c.h.startWithin(), text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopped waits for the pod to be exited with nothing of it running.
func (c *env) stopped(id string) runtime.Pod {
	c.Helper()
	return c.eventually(id, c.h.startWithin()+15*time.Second, "exited with no container running", func(p runtime.Pod) bool {
		if p.State != runtime.PodExited {
			return false
		}
		for _, s := range p.Containers {
			if s.Running {
				return false
			}
		}
		return true
	})
}

// list returns ListPods(labels) on e.
func (c *env) list(e runtime.PodEngine, labels map[string]string) []runtime.Pod {
	c.Helper()
	ps, err := e.ListPods(c.opCtx(), labels)
	if err != nil {
		c.Fatalf("ListPods(%v) = %v, want the pods", labels, err)
	}
	return ps
}

func names(ps []runtime.Pod) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return strings.Join(out, ", ")
}
