package fake_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	brt "github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/fake"
)

// spec is a pod running the test app with args (serve when none), labelled
// for app, serving on 8080 when it serves.
func spec(name string, env map[string]string, args ...string) brt.PodSpec {
	s := brt.PodSpec{
		Name:   name,
		Labels: map[string]string{brt.LabelApp: "app"},
		Main:   brt.ContainerSpec{Name: "web", Image: fake.TestApp, Env: env},
	}
	if len(args) > 0 {
		s.Main.Command = append([]string{"/testapp"}, args...)
	}
	if len(args) == 0 || args[0] == "serve" {
		s.Port = 8080
	}
	return s
}

func ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// running creates and starts a pod.
func running(t *testing.T, e *fake.Engine, s brt.PodSpec) brt.Pod {
	t.Helper()
	p, err := e.CreatePod(ctx(t), s)
	require.NoError(t, err)
	p, err = e.StartPod(ctx(t), p.ID, brt.StartOptions{})
	require.NoError(t, err)
	return p
}

// get returns GET http://addr/path's status and body, retrying while the
// app is not yet listening.
func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + path)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode, string(body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s%s: %v", addr, path, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitExited waits for the pod to be exited with nothing running.
func waitExited(t *testing.T, e *fake.Engine, id string) brt.Pod {
	t.Helper()
	var p brt.Pod
	require.Eventually(t, func() bool {
		var err error
		p, err = e.InspectPod(ctx(t), id)
		require.NoError(t, err)
		for _, c := range p.Containers {
			if c.Running {
				return false
			}
		}
		return p.State == brt.PodExited
	}, 5*time.Second, 5*time.Millisecond)
	return p
}

func logText(t *testing.T, e *fake.Engine, id, container string) string {
	t.Helper()
	var b strings.Builder
	require.NoError(t, e.Logs(ctx(t), id, container, brt.LogOptions{}, func(l brt.LogLine) {
		b.WriteString(l.Text + "\n")
	}))
	return b.String()
}

func TestFailNext(t *testing.T) {
	e := newEngine(t)
	boom := errors.New("boom")

	e.FailNext("CreatePod", boom)
	_, err := e.CreatePod(ctx(t), spec("a", nil))
	require.ErrorIs(t, err, boom)
	pods, err := e.ListPods(ctx(t), nil)
	require.NoError(t, err)
	assert.Empty(t, pods, "a failed CreatePod makes nothing")

	p, err := e.CreatePod(ctx(t), spec("a", nil))
	require.NoError(t, err, "the fault is used once")

	e.FailNext("StartPod", boom)
	_, err = e.StartPod(ctx(t), p.ID, brt.StartOptions{})
	var se *brt.StartError
	require.ErrorAs(t, err, &se, "a StartPod failure is a StartError")
	require.ErrorIs(t, err, boom)
	p, err = e.InspectPod(ctx(t), p.ID)
	require.NoError(t, err)
	assert.Equal(t, brt.PodExited, p.State, "a failed start leaves the pod exited")

	_, err = e.StartPod(ctx(t), p.ID, brt.StartOptions{})
	require.NoError(t, err)

	e.FailNext("EnsureNetwork", boom)
	e.FailNext("EnsureNetwork", brt.ErrNetworkHeld)
	require.ErrorIs(t, e.EnsureNetwork(ctx(t), "n", nil), boom)
	require.ErrorIs(t, e.EnsureNetwork(ctx(t), "n", nil), brt.ErrNetworkHeld, "faults queue")
	require.NoError(t, e.EnsureNetwork(ctx(t), "n", nil))

	assert.PanicsWithValue(t,
		`fake: FailNext("StartPods"): no such operation; one of [EnsureNetwork RemoveNetwork ImageID CreatePod StartPod StopPod RemovePod RestartContainer InspectPod ListPods WaitPod Logs Events Suspend Resume Deregister ExecPod AttachPod MemTotal NetworkHeld]`,
		func() { e.FailNext("StartPods", boom) }, "a typo must not pass silently")
}

func TestKillAndOOMKill(t *testing.T) {
	e := newEngine(t)
	evs, _ := e.Events(ctx(t))
	other, _ := e.Events(ctx(t))

	p := running(t, e, spec("killed", nil))
	require.NoError(t, e.Kill(p.ID))
	code, err := e.WaitPod(ctx(t), p.ID)
	require.NoError(t, err)
	assert.Equal(t, 137, code)
	p = waitExited(t, e, p.ID)
	assert.False(t, p.OOMKilled)

	q := running(t, e, spec("oom", nil))
	require.NoError(t, e.OOMKill(q.ID))
	q = waitExited(t, e, q.ID)
	assert.True(t, q.OOMKilled)
	assert.Equal(t, 137, q.ExitCode)

	for _, sub := range []<-chan brt.PodEvent{evs, other} { // every subscriber gets every event
		var actions []string
		for len(actions) < 5 {
			select {
			case ev := <-sub:
				actions = append(actions, fmt.Sprintf("%s %s %d", ev.PodID[:4], ev.Action, ev.ExitCode))
			case <-time.After(5 * time.Second):
				t.Fatalf("events so far: %v", actions)
			}
		}
		assert.Equal(t, []string{
			p.ID[:4] + " start 0", p.ID[:4] + " die 137",
			q.ID[:4] + " start 0", q.ID[:4] + " oom 0", q.ID[:4] + " die 137",
		}, actions)
	}

	require.ErrorIs(t, e.Kill("nope"), brt.ErrNotFound)
	require.Error(t, e.Kill(p.ID), "an exited pod cannot be killed")
}

func TestKillContainerEssentialSidecar(t *testing.T) {
	e := newEngine(t)
	s := spec("p", nil)
	s.Sidecars = []brt.SidecarSpec{
		{ContainerSpec: brt.ContainerSpec{Name: "proxy", Image: fake.TestApp, Command: []string{"/testapp", "sleep", "1h"}}, Essential: true},
		{ContainerSpec: brt.ContainerSpec{Name: "logs", Image: fake.TestApp, Command: []string{"/testapp", "sleep", "1h"}}},
	}
	p := running(t, e, s)

	require.NoError(t, e.KillContainer(p.ID, "logs"))
	require.Eventually(t, func() bool {
		p, _ = e.InspectPod(ctx(t), p.ID)
		c, _ := p.Container("logs")
		return !c.Running && c.ExitCode == 137
	}, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, brt.PodRunning, p.State, "a non-essential sidecar's death leaves the pod running")

	require.NoError(t, e.KillContainer(p.ID, "proxy"))
	p = waitExited(t, e, p.ID)
	assert.Equal(t, 0, p.ExitCode, "the main container was stopped (SIGTERM), and testapp serve exits 0 then")
}

func TestVanish(t *testing.T) {
	e := newEngine(t)
	p := running(t, e, spec("gone", nil))
	get(t, p.Addr, "/healthz")
	require.NoError(t, e.Vanish(p.ID))
	_, err := e.InspectPod(ctx(t), p.ID)
	require.ErrorIs(t, err, brt.ErrNotFound)
	_, err = http.Get("http://" + p.Addr + "/healthz")
	require.Error(t, err, "its address is gone with it")
	pods, err := e.ListPods(ctx(t), nil)
	require.NoError(t, err)
	assert.Empty(t, pods)
	require.NoError(t, e.RemovePod(ctx(t), p.ID))
}

func TestBreak(t *testing.T) {
	e := newEngine(t)
	p := running(t, e, spec("broken", nil))
	get(t, p.Addr, "/healthz")
	addr := p.Addr
	require.NoError(t, e.Break(p.ID, "its network holder died"))
	p, err := e.InspectPod(ctx(t), p.ID)
	require.NoError(t, err)
	assert.Equal(t, brt.PodRunning, p.State, "the main container still runs")
	assert.Equal(t, "its network holder died", p.Broken)
	assert.Empty(t, p.Addr, "a broken pod has no address to give")
	_, err = http.Get("http://" + addr + "/healthz")
	require.Error(t, err, "a broken pod cannot serve")

	require.NoError(t, e.StopPod(ctx(t), p.ID, time.Second))
	p, err = e.StartPod(ctx(t), p.ID, brt.StartOptions{})
	require.NoError(t, err)
	assert.Empty(t, p.Broken, "a new start mends it")
	code, _ := get(t, p.Addr, "/healthz")
	assert.Equal(t, 200, code)
}

func TestSetMemTotal(t *testing.T) {
	e := newEngine(t)
	n, err := e.MemTotal(ctx(t))
	require.NoError(t, err)
	assert.EqualValues(t, fake.DefaultMemTotal, n)
	e.SetMemTotal(1 << 30)
	n, err = e.MemTotal(ctx(t))
	require.NoError(t, err)
	assert.EqualValues(t, 1<<30, n)

	// MEMHOG without a limit exhausts the host's memory.
	p := running(t, e, spec("hog", map[string]string{"MEMHOG": "1"}, "serve"))
	p = waitExited(t, e, p.ID)
	assert.True(t, p.OOMKilled)
	assert.True(t, strings.HasSuffix(logText(t, e, p.ID, ""), "allocated 1008 MiB\n"), "killed before its 1 GiB")
}

func TestRemoveNetworkBehindBack(t *testing.T) {
	e := newEngine(t)
	require.NoError(t, e.EnsureNetwork(ctx(t), "net", nil))
	s := spec("p", nil)
	s.Network, s.Aliases = "net", []string{"api"}
	p, err := e.CreatePod(ctx(t), s)
	require.NoError(t, err)

	require.NoError(t, e.RemoveNetworkBehindBack("net"))
	_, err = e.StartPod(ctx(t), p.ID, brt.StartOptions{})
	var se *brt.StartError
	require.ErrorAs(t, err, &se)
	assert.Empty(t, se.Container, "the pod itself failed")
	require.ErrorIs(t, err, brt.ErrNetworkNotFound)

	require.NoError(t, e.EnsureNetwork(ctx(t), "net", nil))
	_, err = e.StartPod(ctx(t), p.ID, brt.StartOptions{})
	require.NoError(t, err, "the network made again, the pod starts")
	require.ErrorIs(t, e.RemoveNetworkBehindBack("never"), brt.ErrNetworkNotFound)
}

func TestRemoveNetworkInUse(t *testing.T) {
	e := newEngine(t)
	require.NoError(t, e.EnsureNetwork(ctx(t), "net", nil))
	s := spec("p", nil)
	s.Network = "net"
	p := running(t, e, s)
	require.ErrorContains(t, e.RemoveNetwork(ctx(t), "net"), "active endpoints")
	require.NoError(t, e.StopPod(ctx(t), p.ID, time.Second))
	require.NoError(t, e.RemoveNetwork(ctx(t), "net"))
}

func TestBreakEvents(t *testing.T) {
	e := newEngine(t)
	evs, errs := e.Events(ctx(t))
	lost := errors.New("connection lost")
	e.BreakEvents(lost)
	select {
	case err := <-errs:
		require.ErrorIs(t, err, lost)
	case <-time.After(5 * time.Second):
		t.Fatal("no error after BreakEvents")
	}
	_, open := <-evs
	assert.False(t, open, "the event channel closes")

	e.FailNext("Events", lost)
	evs, errs = e.Events(ctx(t))
	require.ErrorIs(t, <-errs, lost)
	_, open = <-evs
	assert.False(t, open)
}

func TestPeerSeesOnlyItsOwn(t *testing.T) {
	e := newEngine(t)
	peer := e.Peer()
	assert.NotEqual(t, e.Owner().ID, peer.Owner().ID)
	mine := running(t, e, spec("mine", nil, "sleep", "1h"))
	theirs := running(t, peer, spec("theirs", nil, "sleep", "1h"))

	list := func(e *fake.Engine) []string {
		ps, err := e.ListPods(ctx(t), map[string]string{brt.LabelApp: "app"})
		require.NoError(t, err)
		var names []string
		for _, p := range ps {
			names = append(names, p.Name)
		}
		return names
	}
	assert.Equal(t, []string{"mine"}, list(e))
	assert.Equal(t, []string{"theirs"}, list(peer))
	_, err := e.CreatePod(ctx(t), spec("theirs", nil))
	require.Error(t, err, "pod names are unique on the engine, whoever the owner")
	require.NoError(t, peer.RemovePod(ctx(t), theirs.ID))
	require.NoError(t, e.RemovePod(ctx(t), mine.ID))
}

// TestTestApp checks the simulation of testapp's behaviours that the
// conformance suite does not use but control-plane tests do.
func TestTestApp(t *testing.T) {
	e := newEngine(t)

	t.Run("endpoints", func(t *testing.T) {
		p := running(t, e, spec("endpoints", map[string]string{"VERSION": "v7", "WHO": "me"}))
		code, body := get(t, p.Addr, "/")
		assert.Equal(t, 200, code)
		assert.Equal(t, "hello from v7\n", body)
		_, body = get(t, p.Addr, "/env/WHO")
		assert.Equal(t, "me", body)
		code, _ = get(t, p.Addr, "/env/NOPE")
		assert.Equal(t, 404, code)
		_, body = get(t, p.Addr, "/hostname")
		assert.Equal(t, p.ID[:12], body)
		_, body = get(t, p.Addr, "/sleep?d=10ms")
		assert.Equal(t, "slept", body)
		_, body = get(t, p.Addr, "/sse?n=2&every=1ms")
		assert.Equal(t, "id: 1\ndata: event 1\n\nid: 2\ndata: event 2\n\n", body)
		_, body = get(t, p.Addr, "/headers")
		assert.Contains(t, body, `"Host":["`+p.Addr+`"]`)

		c, _, err := websocket.Dial(ctx(t), "ws://"+p.Addr+"/ws", nil)
		require.NoError(t, err)
		defer c.CloseNow()
		require.NoError(t, c.Write(ctx(t), websocket.MessageText, []byte("ping")))
		_, msg, err := c.Read(ctx(t))
		require.NoError(t, err)
		assert.Equal(t, "ping", string(msg))
	})

	t.Run("failing", func(t *testing.T) {
		p := running(t, e, spec("failing", map[string]string{"ROOT_STATUS": "503", "HEALTH_FAIL": "1"}))
		code, _ := get(t, p.Addr, "/")
		assert.Equal(t, 503, code)
		code, body := get(t, p.Addr, "/healthz")
		assert.Equal(t, 500, code)
		assert.Equal(t, "unhealthy on purpose\n", body)
	})

	exits := []struct {
		name  string
		env   map[string]string
		args  []string
		code  int
		log   string
		image string
	}{
		{"crash", map[string]string{"CRASH": "1"}, nil, 1, "crashing on purpose\n", ""},
		{"migrate", map[string]string{"MIGRATE_EXIT": "4"}, []string{"migrate"}, 4, "migrating...\nmigrated\n", ""},
		{"echo", nil, []string{"echo", "a", "b"}, 0, "a b\n", ""},
		{"env", map[string]string{"X": "y"}, []string{"env", "X"}, 0, "y\n", ""},
		{"env unset", nil, []string{"env", "X"}, 1, "X is not set\n", ""},
		{"image env", nil, []string{"env", "PORT"}, 0, "8080\n", ""},
		{"usage", nil, []string{"exit"}, 2, "usage: testapp exit N\n", ""},
		{"unknown", nil, []string{"fly"}, 2, "testapp: unknown subcommand \"fly\"\n", ""},
		{"bad duration", map[string]string{"START_DELAY": "soon"}, nil, 2, "bad START_DELAY \"soon\": time: invalid duration \"soon\"\n", ""},
		{"bad port", map[string]string{"PORT": "http"}, nil, 1, "listen tcp: lookup tcp/http: unknown port\n", ""},
		{"cat without stdin", nil, []string{"cat"}, 0, "", ""},
	}
	for _, tc := range exits {
		t.Run(tc.name, func(t *testing.T) {
			s := spec("exit-"+strings.ReplaceAll(tc.name, " ", "-"), tc.env, tc.args...)
			s.Port = 0
			p := running(t, e, s)
			code, err := e.WaitPod(ctx(t), p.ID)
			require.NoError(t, err)
			assert.Equal(t, tc.code, code)
			assert.Equal(t, tc.log, logText(t, e, p.ID, ""))
		})
	}

	t.Run("not the test app", func(t *testing.T) {
		s := spec("sh", nil)
		s.Main.Command = []string{"/bin/sh", "-c", "true"}
		p := running(t, e, s)
		code, err := e.WaitPod(ctx(t), p.ID)
		require.NoError(t, err)
		assert.Equal(t, 127, code)
		assert.Contains(t, logText(t, e, p.ID, ""), `exec "/bin/sh": no such file in the image`)
	})

	t.Run("start delay", func(t *testing.T) {
		p := running(t, e, spec("delay", map[string]string{"START_DELAY": "50ms"}))
		get(t, p.Addr, "/healthz")
		assert.Equal(t, "starting in 50ms\nlistening on :8080\n", logText(t, e, p.ID, ""))
	})

	t.Run("exit on sigterm", func(t *testing.T) {
		for mode, want := range map[string]int{"immediate": 0, "7": 7, "bad": 2} {
			p := running(t, e, spec("sigterm-"+mode, map[string]string{"EXIT_ON_SIGTERM": mode}))
			get(t, p.Addr, "/healthz")
			require.NoError(t, e.StopPod(ctx(t), p.ID, 5*time.Second))
			p, err := e.InspectPod(ctx(t), p.ID)
			require.NoError(t, err)
			assert.Equal(t, want, p.ExitCode, "EXIT_ON_SIGTERM=%s", mode)
		}
	})

	t.Run("sigterm without handler", func(t *testing.T) {
		s := spec("sleeper", nil, "sleep", "1h")
		p := running(t, e, s)
		require.NoError(t, e.StopPod(ctx(t), p.ID, 5*time.Second))
		p, err := e.InspectPod(ctx(t), p.ID)
		require.NoError(t, err)
		assert.Equal(t, 143, p.ExitCode, "128 + SIGTERM, as tini reports it")
	})

	t.Run("port taken in the pod", func(t *testing.T) {
		s := spec("two", nil)
		s.Sidecars = []brt.SidecarSpec{{ContainerSpec: brt.ContainerSpec{Name: "dup", Image: fake.TestApp}}}
		p := running(t, e, s)
		require.Eventually(t, func() bool {
			p, _ = e.InspectPod(ctx(t), p.ID)
			a, _ := p.Container("web")
			b, _ := p.Container("dup")
			return !a.Running || !b.Running
		}, 5*time.Second, 5*time.Millisecond, "one of two servers on :8080 fails")
	})
}

// TestFetchThroughNetwork checks what the pods reach: their aliases on
// their network only, not while suspended or deregistered.
func TestFetchThroughNetwork(t *testing.T) {
	e := newEngine(t)
	for _, n := range []string{"one", "two"} {
		require.NoError(t, e.EnsureNetwork(ctx(t), n, nil))
	}
	on := func(name, network string, aliases ...string) brt.Pod {
		s := spec(name, map[string]string{"WHO": name})
		s.Network, s.Aliases = network, aliases
		return running(t, e, s)
	}
	api := on("api", "one", "api")
	client := on("client", "one")
	stranger := on("stranger", "two")
	fetch := func(from brt.Pod, u string) string {
		_, body := get(t, from.Addr, "/fetch?url="+u)
		return body
	}
	// Started is not listening: the app binds its port a moment later, as
	// a container's does (get waits for it on the published port).
	_, who := get(t, api.Addr, "/env/WHO")
	require.Equal(t, "api", who)
	assert.Equal(t, "200\napi", fetch(client, "http://api:8080/env/WHO"))
	assert.Equal(t, "200\napi", fetch(client, "http://API:8080/env/WHO"), "names are case-insensitive")
	assert.Equal(t, "200\napi", fetch(client, "http://api:8080/env/WHO"))
	assert.Contains(t, fetch(stranger, "http://api:8080/env/WHO"), "no such host", "another network does not resolve it")
	assert.Contains(t, fetch(client, "http://api:9999/"), "connection refused")
	assert.Contains(t, fetch(client, "http://example.com/"), "no such host", "the fake reaches no outside host")

	require.NoError(t, e.Suspend(ctx(t), api.ID))
	assert.Contains(t, fetch(client, "http://api:8080/env/WHO"), "no such host", "a suspended pod is off its network")
	_, err := e.Resume(ctx(t), api.ID)
	require.NoError(t, err)
	assert.Equal(t, "200\napi", fetch(client, "http://api:8080/env/WHO"))

	require.NoError(t, e.RemoveNetworkBehindBack("one"))
	assert.Contains(t, fetch(client, "http://api:8080/env/WHO"), "no such host", "a removed network resolves nothing")
}

func TestKillWhileSuspended(t *testing.T) {
	e := newEngine(t)
	s := spec("frozen", nil)
	s.Sidecars = []brt.SidecarSpec{{ContainerSpec: brt.ContainerSpec{Name: "side", Image: fake.TestApp, Command: []string{"/testapp", "sleep", "1h"}}}}
	p := running(t, e, s)
	require.NoError(t, e.Suspend(ctx(t), p.ID))
	require.NoError(t, e.Kill(p.ID), "SIGKILL reaches a frozen process")
	p = waitExited(t, e, p.ID)
	assert.Equal(t, 137, p.ExitCode)
}

// TestSuspendHoldsExits checks that a frozen process does not exit until
// it is resumed.
func TestSuspendHoldsExits(t *testing.T) {
	e := newEngine(t)
	p := running(t, e, spec("frozen", map[string]string{"CRASH_AFTER": "50ms"}))
	require.NoError(t, e.Suspend(ctx(t), p.ID))
	time.Sleep(150 * time.Millisecond)
	p, err := e.InspectPod(ctx(t), p.ID)
	require.NoError(t, err)
	assert.Equal(t, brt.PodSuspended, p.State, "a frozen process makes no exit")
	_, err = e.Resume(ctx(t), p.ID)
	require.NoError(t, err)
	p = waitExited(t, e, p.ID)
	assert.Equal(t, 3, p.ExitCode)
}

func TestStopWhileStarting(t *testing.T) {
	e := newEngine(t)
	p, err := e.CreatePod(ctx(t), spec("slow", nil))
	require.NoError(t, err)
	healthy := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		_, err := e.StartPod(ctx(t), p.ID, brt.StartOptions{Healthy: func(ctx context.Context, addr string) error {
			close(healthy)
			<-ctx.Done()
			return ctx.Err()
		}})
		errc <- err
	}()
	<-healthy
	require.NoError(t, e.StopPod(ctx(t), p.ID, time.Second))
	var se *brt.StartError
	require.ErrorAs(t, <-errc, &se)
	waitExited(t, e, p.ID)
}

// TestConcurrentUse runs pods from many goroutines (go test -race).
func TestConcurrentUse(t *testing.T) {
	e := newEngine(t)
	evs, _ := e.Events(ctx(t))
	go func() {
		for range evs {
		}
	}()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := spec(fmt.Sprintf("p%d", i), nil)
			s.Sidecars = []brt.SidecarSpec{{ContainerSpec: brt.ContainerSpec{Name: "side", Image: fake.TestApp, Command: []string{"/testapp", "lines", "3"}}}}
			p, err := e.CreatePod(ctx(t), s)
			if !assert.NoError(t, err) {
				return
			}
			p, err = e.StartPod(ctx(t), p.ID, brt.StartOptions{})
			if !assert.NoError(t, err) {
				return
			}
			get(t, p.Addr, "/healthz")
			_, _ = e.ListPods(ctx(t), nil)
			assert.NoError(t, e.StopPod(ctx(t), p.ID, time.Second))
			assert.NoError(t, e.RemovePod(ctx(t), p.ID))
		}()
	}
	wg.Wait()
}

// TestCloseLeavesNoGoroutine checks that Close ends every process,
// listener, forwarded connection and subscription.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	e := fake.New()
	_, _ = e.Events(context.Background()) // never read, never cancelled
	p, err := e.CreatePod(ctx(t), spec("p", nil))
	require.NoError(t, err)
	p, err = e.StartPod(ctx(t), p.ID, brt.StartOptions{})
	require.NoError(t, err)
	get(t, p.Addr, "/healthz")
	client := &http.Client{}
	resp, err := client.Get("http://" + p.Addr + "/sse?n=1000&every=10ms") // a stream still open at Close
	require.NoError(t, err)
	defer resp.Body.Close()
	q, err := e.CreatePod(ctx(t), spec("q", nil, "sleep", "1h"))
	require.NoError(t, err)
	_, err = e.StartPod(ctx(t), q.ID, brt.StartOptions{})
	require.NoError(t, err)

	require.NoError(t, e.Close())
	client.CloseIdleConnections()
	_, _ = io.Copy(io.Discard, resp.Body)
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, err = e.InspectPod(ctx(t), p.ID)
	require.Error(t, err, "a closed engine answers nothing")
}
