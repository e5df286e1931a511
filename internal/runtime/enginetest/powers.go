package enginetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
)

// checkSuspend: a suspended pod is PodSuspended with no Addr; Resume makes
// it running again, serving on its new Addr.
func checkSuspend(c *env) {
	s, ok := c.e.(runtime.Suspender)
	if !ok {
		c.Skip("the engine is no runtime.Suspender")
	}
	p := c.run(c.instance(nil))
	c.serves(p.Addr, "/healthz")
	if err := s.Suspend(c.opCtx(), p.ID); err != nil {
		c.Fatalf("Suspend of a running pod = %v, want nil", err)
	}
	if q := c.inspect(p.ID); q.State != runtime.PodSuspended || q.Addr != "" {
		c.Errorf("after Suspend the pod is %s with Addr %q, want %s with none", q.State, q.Addr, runtime.PodSuspended)
	}
	r, err := s.Resume(c.opCtx(), p.ID)
	if err != nil {
		c.Fatalf("Resume of a suspended pod = %v, want nil", err)
	}
	if r.State != runtime.PodRunning {
		c.Errorf("Resume returned the pod %s, want %s", r.State, runtime.PodRunning)
	}
	c.serves(r.Addr, "/healthz")
	if q := c.inspect(p.ID); q.State != runtime.PodRunning || q.Addr != r.Addr {
		c.Errorf("after Resume InspectPod says %s with Addr %q, want %s with Resume's %q", q.State, q.Addr, runtime.PodRunning, r.Addr)
	}
}

// checkExec: a command exec'd in a running container of a pod (its main
// one by default, a sidecar by its name) runs there, with that
// container's environment; its output and exit code come back.
func checkExec(c *env) {
	x, ok := c.e.(runtime.PodExecer)
	if !ok {
		c.Skip("the engine is no runtime.PodExecer")
	}
	spec := c.task("sleep", "30s")
	spec.Main.Env["WHO"] = "main"
	side := c.sidecar("side", false, "sleep", "30s")
	side.Env["WHO"] = "side"
	spec.Sidecars = []runtime.SidecarSpec{side}
	p := c.run(spec)
	for _, tc := range []struct {
		container string
		args      []string
		out       string
		code      int
	}{
		{"", []string{"echo", "hi"}, "hi\n", 0},
		{"", []string{"exit", "3"}, "", 3},
		{"", []string{"env", "WHO"}, "main\n", 0},
		{"side", []string{"env", "WHO"}, "side\n", 0},
	} {
		sess, err := x.ExecPod(c.opCtx(), p.ID, tc.container, c.argv(tc.args...), false)
		if err != nil {
			c.Fatalf("ExecPod(%q, %v) = %v, want a session", tc.container, tc.args, err)
		}
		out, err := io.ReadAll(sess.Stdout())
		if err != nil || string(out) != tc.out {
			c.Errorf("ExecPod(%q, %v) stdout = %q, %v, want %q", tc.container, tc.args, out, err, tc.out)
		}
		code, err := sess.Wait(c.opCtx())
		if err != nil || code != tc.code {
			c.Errorf("ExecPod(%q, %v) Wait = %d, %v, want %d", tc.container, tc.args, code, err, tc.code)
		}
		sess.Close()
	}
	if _, err := x.ExecPod(c.opCtx(), p.ID, "nope", c.argv("echo", "hi"), false); !errors.Is(err, runtime.ErrNotFound) {
		c.Errorf("ExecPod in a container the pod lacks = %v, want ErrNotFound", err)
	}
}

// checkDeregister: a deregistered pod no longer answers to its aliases
// but keeps running and serving (on the Addr InspectPod then reports); it
// says whether it was on them.
func checkDeregister(c *env) {
	d, ok := c.e.(runtime.Deregisterer)
	if !ok {
		c.Skip("the engine is no runtime.Deregisterer")
	}
	api := c.instance(map[string]string{"WHO": "api"})
	api.Aliases = []string{"api"}
	a := c.run(api)
	b := c.run(c.instance(nil))
	u := fmt.Sprintf("http://api:%d/env/WHO", appPort)
	c.fetch(b.Addr, u, "200\napi")
	was, err := d.Deregister(c.opCtx(), a.ID)
	if err != nil || !was {
		c.Fatalf("Deregister of a pod on its names = %v, %v; want true, nil", was, err)
	}
	deadline := time.Now().Add(c.h.startWithin())
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, got, err := get(ctx, b.Addr, "/fetch?url="+url.QueryEscape(u))
		cancel()
		if err == nil && got != "200\napi" {
			break // the name no longer leads to it
		}
		if time.Now().After(deadline) {
			c.Fatalf("%s after Deregister, another pod still reaches it by its alias (%q), want the name gone", c.h.startWithin(), got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// It keeps running, serving on the Addr the engine now reports (on
	// Docker the published port comes back on a new host port).
	if q := c.inspect(a.ID); q.State != runtime.PodRunning {
		c.Errorf("after Deregister the pod is %s (%s), want it running", q.State, describe(q))
	} else {
		c.serves(q.Addr, "/healthz")
	}
	if was, err := d.Deregister(c.opCtx(), a.ID); err != nil || was {
		c.Errorf("Deregister of a pod already off its names = %v, %v; want false, nil", was, err)
	}
}

// checkHostMemory: MemTotal reports some memory.
func checkHostMemory(c *env) {
	h, ok := c.e.(runtime.HostMemory)
	if !ok {
		c.Skip("the engine is no runtime.HostMemory")
	}
	if n, err := h.MemTotal(c.opCtx()); err != nil || n <= 0 {
		c.Errorf("MemTotal = %d, %v, want the host's memory (> 0)", n, err)
	}
}

// checkAttach: a client attached to a created pod with OpenStdin feeds
// its main container's stdin and reads its stdout.
func checkAttach(c *env) {
	a, ok := c.e.(runtime.PodAttacher)
	if !ok {
		c.Skip("the engine is no runtime.PodAttacher")
	}
	spec := c.task("cat")
	spec.OpenStdin = true
	spec.Main.OpenStdin = true
	p := c.create(spec)
	st, err := a.AttachPod(c.opCtx(), p.ID)
	if err != nil {
		c.Fatalf("AttachPod of a created pod = %v, want a stream", err)
	}
	defer st.Close()
	c.start(p.ID, runtime.StartOptions{})
	if _, err := io.WriteString(st.Stdin(), "hello attach\n"); err != nil {
		c.Fatalf("writing to the attached stdin: %v", err)
	}
	if err := st.Stdin().Close(); err != nil {
		c.Fatalf("closing the attached stdin: %v", err)
	}
	outc := make(chan string, 1)
	go func() {
		out, _ := io.ReadAll(st.Stdout())
		outc <- string(out)
	}()
	code, err := c.e.WaitPod(c.opCtx(), p.ID)
	if err != nil || code != 0 {
		c.Errorf("WaitPod of cat after its stdin closed = %d, %v, want 0", code, err)
	}
	select {
	case out := <-outc:
		if out != "hello attach\n" {
			c.Errorf("the attached stdout = %q, want what was written to stdin, %q", out, "hello attach\n")
		}
	case <-time.After(10 * time.Second):
		c.Errorf("the attached stdout did not end 10s after the container exited")
	}
}
