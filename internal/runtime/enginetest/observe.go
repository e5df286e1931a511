package enginetest

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
)

// checkList: ListPods finds the pods (created or exited) carrying all the
// given labels, of the engine's owner only, with their labels and the
// owner's.
func checkList(c *env) {
	web := c.task("exit", "0")
	web.Labels[runtime.LabelService] = "web"
	worker := c.task("sleep", "30s")
	worker.Labels[runtime.LabelService] = "worker"
	a := c.create(web)
	b := c.create(worker)
	c.start(a.ID, runtime.StartOptions{})
	c.stopped(a.ID)

	peer := c.peerOrNil()
	var theirs runtime.Pod
	if peer != nil {
		theirs = c.createOn(peer, c.task("exit", "0")) // the same berth.app label
	}

	app := map[string]string{runtime.LabelApp: c.app}
	c.listIs(c.e, app, a, b)
	c.listIs(c.e, map[string]string{runtime.LabelApp: c.app, runtime.LabelService: "web"}, a)
	c.listIs(c.e, map[string]string{runtime.LabelApp: c.app, runtime.LabelService: "nope"})
	for _, p := range c.list(c.e, app) {
		want := web.Labels
		if p.ID == b.ID {
			want = worker.Labels
		}
		c.hasLabels("ListPods", p, want)
	}
	if peer == nil {
		return
	}
	c.listIs(peer, app, theirs)
	mine := c.list(c.e, app)
	if len(mine) > 0 {
		ours, their := mine[0].Labels[runtime.LabelOwner], c.inspectOn(peer, theirs.ID).Labels[runtime.LabelOwner]
		if ours == "" || their == "" || ours == their {
			c.Errorf("the pods of two owners carry %s %q and %q, want each its owner's, different", runtime.LabelOwner, ours, their)
		}
	}
}

// listIs checks that ListPods(labels) on e finds exactly want.
func (c *env) listIs(e runtime.PodEngine, labels map[string]string, want ...runtime.Pod) {
	c.Helper()
	got := c.list(e, labels)
	var gotIDs, wantIDs []string
	for _, p := range got {
		gotIDs = append(gotIDs, p.ID)
	}
	for _, p := range want {
		wantIDs = append(wantIDs, p.ID)
	}
	slices.Sort(gotIDs)
	slices.Sort(wantIDs)
	if !slices.Equal(gotIDs, wantIDs) {
		c.Errorf("ListPods(%v) = [%s], want [%s] (subset match on labels, the owner's pods only)", labels, names(got), names(want))
	}
}

func (c *env) inspectOn(e runtime.PodEngine, id string) runtime.Pod {
	c.Helper()
	p, err := e.InspectPod(c.opCtx(), id)
	if err != nil {
		c.Fatalf("InspectPod(%s) = %v, want the pod", id, err)
	}
	return p
}

// checkEvents: Events reports the start and die of each container of the
// owner's pods, named within the pod, with the pod's labels and the exit
// code; another owner's pods are not reported.
func checkEvents(c *env) {
	ctx, cancel := context.WithTimeout(context.Background(), c.h.startWithin()+30*time.Second)
	defer cancel()
	evs, errs := c.e.Events(ctx)

	peer := c.peerOrNil()
	var theirs runtime.Pod
	if peer != nil {
		theirs = c.createOn(peer, c.task("exit", "0"))
		if _, err := peer.StartPod(c.opCtx(), theirs.ID, runtime.StartOptions{}); err != nil {
			c.Fatalf("the peer's StartPod = %v, want nil", err)
		}
		if _, err := peer.WaitPod(c.opCtx(), theirs.ID); err != nil {
			c.Fatalf("the peer's WaitPod = %v, want nil", err)
		}
	}

	spec := c.task("exit", "4")
	spec.Sidecars = []runtime.SidecarSpec{c.sidecar("side", false, "sleep", "60s")}
	spec.MainDependsOn = map[string]runtime.Condition{"side": runtime.ConditionStart}
	p := c.create(spec)
	c.start(p.ID, runtime.StartOptions{})
	main := spec.Main.Name

	type key struct{ container, action string }
	seen := map[key]runtime.PodEvent{}
	want := []key{{main, "start"}, {main, "die"}, {"side", "start"}, {"side", "die"}}
	complete := func() bool {
		for _, k := range want {
			if _, ok := seen[k]; !ok {
				return false
			}
		}
		return true
	}
	for !complete() {
		select {
		case ev, ok := <-evs:
			if !ok {
				c.Fatalf("the Events channel closed before the pod's events came; seen %v", seen)
			}
			if peer != nil && ev.PodID == theirs.ID {
				c.Errorf("Events reported %s of another owner's pod, want the owner's pods only", ev.Action)
			}
			if ev.PodID != p.ID {
				continue
			}
			name := ev.Container
			if name == "" {
				name = main // the main container may be named ""
			}
			if name != main && name != "side" {
				c.Errorf("Events reported %s of container %q, want the pod's own names (%q or \"\", \"side\")", ev.Action, ev.Container, main)
				continue
			}
			for k, v := range spec.Labels {
				if ev.Labels[k] != v {
					c.Errorf("the %s event of %s has label %s = %q, want %q (the pod's)", ev.Action, name, k, ev.Labels[k], v)
				}
			}
			seen[key{name, ev.Action}] = ev
		case err := <-errs:
			c.Fatalf("Events failed: %v", err)
		case <-ctx.Done():
			c.Fatalf("Events: after %s seen %v, want start and die of %q and of \"side\"", c.h.startWithin()+30*time.Second, slices.Collect(maps.Keys(seen)), main)
		}
	}
	if ev := seen[key{main, "die"}]; ev.ExitCode != 4 {
		c.Errorf("the die event of the main container has ExitCode %d, want 4", ev.ExitCode)
	}
}

// logs collects Logs of a container.
func (c *env) logs(ctx context.Context, id, container string, opts runtime.LogOptions) ([]runtime.LogLine, error) {
	var (
		mu    sync.Mutex
		lines []runtime.LogLine
	)
	err := c.e.Logs(ctx, id, container, opts, func(l runtime.LogLine) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, l)
	})
	mu.Lock()
	defer mu.Unlock()
	return lines, err
}

// logText is a container's whole log, one line after another.
func (c *env) logText(id, container string) string {
	c.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), c.h.startWithin())
	defer cancel()
	lines, err := c.logs(ctx, id, container, runtime.LogOptions{})
	if err != nil {
		c.Fatalf("Logs(%q) = %v, want the log", container, err)
	}
	return texts(lines)
}

func texts(lines []runtime.LogLine) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Text)
		b.WriteByte('\n')
	}
	return b.String()
}

// checkLogs: Logs returns a container's lines in order, on stdout,
// without their newline, with or without Follow once it exited, the last
// Tail ones, and ErrNotFound-like errors for a container the pod lacks.
func checkLogs(c *env) {
	spec := c.task("lines", "5")
	p := c.run(spec)
	if code, err := c.e.WaitPod(c.opCtx(), p.ID); err != nil || code != 0 {
		c.Fatalf("WaitPod = %d, %v, want 0", code, err)
	}
	want := "line 1\nline 2\nline 3\nline 4\nline 5\n"
	for _, name := range []string{"", spec.Main.Name} {
		for _, follow := range []bool{false, true} {
			lines, err := c.logs(c.ctx(10*time.Second), p.ID, name, runtime.LogOptions{Follow: follow})
			if err != nil {
				c.Errorf("Logs(%q, Follow %v) of an exited container = %v, want nil", name, follow, err)
			}
			if got := texts(lines); got != want {
				c.Errorf("Logs(%q, Follow %v) = %q, want %q", name, follow, got, want)
			}
			for _, l := range lines {
				if l.Stream != "stdout" || l.Time.IsZero() {
					c.Errorf("Logs(%q) line %q has Stream %q, Time %v; want stdout and a time", name, l.Text, l.Stream, l.Time)
					break
				}
			}
		}
	}
	lines, err := c.logs(c.opCtx(), p.ID, "", runtime.LogOptions{Tail: 2})
	if got := texts(lines); err != nil || got != "line 4\nline 5\n" {
		c.Errorf("Logs(Tail 2) = %q, %v, want %q", got, err, "line 4\nline 5\n")
	}
	if _, err := c.logs(c.opCtx(), p.ID, "no-such-container", runtime.LogOptions{}); err == nil {
		c.Errorf("Logs of a container the pod does not have = nil, want an error")
	}
}

// checkLogsFollowExit: Logs with Follow streams lines as they come, from
// stdout and stderr, and ends (nil) when the container exits.
func checkLogsFollowExit(c *env) {
	spec := c.task("serve")
	spec.Main.Env["CRASH_AFTER"] = "2s"
	p := c.run(spec)
	ctx := c.ctx(c.h.startWithin() + 30*time.Second)
	lines, err := c.logs(ctx, p.ID, "", runtime.LogOptions{Follow: true})
	if err != nil {
		c.Errorf("Logs(Follow) until the container exits = %v, want nil", err)
	}
	if ctx.Err() != nil {
		c.Fatalf("Logs(Follow) ended only with its context, want it to end when the container exits")
	}
	got := texts(lines)
	if !strings.Contains(got, "listening on :") || !strings.Contains(got, "crashing after 2s on purpose") {
		c.Errorf("Logs(Follow) = %q, want the app's %q and %q", got, "listening on :8080", "crashing after 2s on purpose")
	}
	for _, l := range lines {
		if strings.HasPrefix(l.Text, "crashing") && l.Stream != "stderr" {
			c.Errorf("the line %q came on %q, want stderr", l.Text, l.Stream)
		}
		if strings.HasPrefix(l.Text, "listening") && l.Stream != "stdout" {
			c.Errorf("the line %q came on %q, want stdout", l.Text, l.Stream)
		}
	}
}

// followUntil starts Logs(Follow) of the main container in the
// background, waits for a line containing text and returns a channel
// that gets Logs' result.
func (c *env) followUntil(ctx context.Context, id, text string) <-chan error {
	c.Helper()
	saw := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		done <- c.e.Logs(ctx, id, "", runtime.LogOptions{Follow: true}, func(l runtime.LogLine) {
			if strings.Contains(l.Text, text) {
				once.Do(func() { close(saw) })
			}
		})
	}()
	select {
	case <-saw:
	case err := <-done:
		c.Fatalf("Logs(Follow) of a running container ended (%v) before it logged %q", err, text)
	case <-time.After(c.h.startWithin()):
		c.Fatalf("Logs(Follow) did not deliver %q within %s", text, c.h.startWithin())
	}
	return done
}

// checkLogsFollowCtx: Logs with Follow of a running container ends, with
// nil, when its context ends.
func checkLogsFollowCtx(c *env) {
	p := c.run(c.task("serve"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := c.followUntil(ctx, p.ID, "listening on")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			c.Errorf("Logs(Follow) whose context ended = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		c.Errorf("Logs(Follow) still runs 5s after its context ended, want it to end")
	}
}

// checkLogsFollowRemove: Logs with Follow ends, with nil, when the pod is
// removed.
func checkLogsFollowRemove(c *env) {
	p := c.run(c.task("serve"))
	done := c.followUntil(c.ctx(time.Minute), p.ID, "listening on")
	if err := c.e.RemovePod(c.opCtx(), p.ID); err != nil {
		c.Fatalf("RemovePod = %v, want nil", err)
	}
	select {
	case err := <-done:
		if err != nil {
			c.Errorf("Logs(Follow) of a pod removed meanwhile = %v, want nil", err)
		}
	case <-time.After(c.h.startWithin()):
		c.Errorf("Logs(Follow) still runs %s after the pod was removed, want it to end", c.h.startWithin())
	}
}

// checkLogsSidecar: a sidecar's log is read by its name.
func checkLogsSidecar(c *env) {
	spec := c.task("sleep", "30s")
	spec.Sidecars = []runtime.SidecarSpec{c.sidecar("side", false, "echo", "hello", "side")}
	p := c.run(spec)
	deadline := time.Now().Add(c.h.startWithin())
	for {
		got := c.logText(p.ID, "side")
		if got == "hello side\n" {
			break
		}
		if time.Now().After(deadline) {
			c.Fatalf("Logs(\"side\") = %q, want %q (the sidecar's own output)", got, "hello side\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := c.logText(p.ID, ""); got != "" {
		c.Errorf("Logs of the main container = %q, want nothing (sleep prints nothing; the sidecar's lines are its own)", got)
	}
}
