package docker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/docker"
	"github.com/berth-dev/berth/internal/testutil"
)

// newPods returns the pod engine on the real Docker Engine, acting for a
// fresh owner, closed when the test ends.
func newPods(tb testing.TB) *docker.Engine {
	tb.Helper()
	return newPodsOf(tb, runtime.Owner{ID: testutil.UniqueName(tb, "owner"), Dir: tb.TempDir()})
}

func newPodsOf(tb testing.TB, o runtime.Owner) *docker.Engine {
	tb.Helper()
	testutil.RequireDocker(tb)
	e, err := docker.New(slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NoError(tb, err)
	e.SetOwner(o)
	tb.Cleanup(func() { _ = e.Close() })
	return e
}

// podSpec is a pod of the testapp named web serving on 8080, labelled for
// the test's app, on net when given.
func podSpec(tb testing.TB, appName, net string) runtime.PodSpec {
	tb.Helper()
	s := runtime.PodSpec{
		Name:   testutil.UniqueName(tb, tb.Name()),
		Labels: map[string]string{runtime.LabelApp: appName, runtime.LabelService: "web", runtime.LabelRole: string(runtime.RoleInstance), "berth.test": "1"},
		Port:   8080,
		Main: runtime.ContainerSpec{
			Name: "web", Image: testutil.TestAppImage(tb),
			Env: map[string]string{"PORT": "8080"}, StopGrace: 5 * time.Second,
		},
	}
	if net != "" {
		s.Network, s.Aliases = net, []string{"web"}
	}
	return s
}

// sidecar is a testapp sidecar running argv (nil: serving on port).
func sidecar(tb testing.TB, name string, essential bool, port int, argv ...string) runtime.SidecarSpec {
	tb.Helper()
	return runtime.SidecarSpec{
		ContainerSpec: runtime.ContainerSpec{
			Name: name, Image: testutil.TestAppImage(tb), Command: argv,
			Env: map[string]string{"PORT": fmt.Sprint(port)}, StopGrace: 5 * time.Second,
		},
		Essential: essential,
	}
}

// createPod creates a pod, removed when the test ends.
func createPod(tb testing.TB, p *docker.Engine, spec runtime.PodSpec) runtime.Pod {
	tb.Helper()
	pod, err := p.CreatePod(ctx(tb), spec)
	require.NoError(tb, err)
	tb.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := p.RemovePod(c, pod.ID); err != nil {
			tb.Logf("cleanup: %v", err)
		}
	})
	return pod
}

// healthy is a StartOptions whose check is the testapp's /healthz.
func healthy() runtime.StartOptions {
	return runtime.StartOptions{Healthy: func(ctx context.Context, addr string) error {
		client := &http.Client{Timeout: 2 * time.Second}
		for {
			resp, err := client.Get("http://" + addr + "/healthz")
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("never healthy: %w (%w)", err, context.Cause(ctx))
			case <-time.After(25 * time.Millisecond):
			}
		}
	}}
}

// eventually waits until cond holds for the pod, and returns it.
func eventually(tb testing.TB, p *docker.Engine, id string, within time.Duration, what string, cond func(runtime.Pod) bool) runtime.Pod {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		pod, err := p.InspectPod(ctx(tb), id)
		require.NoError(tb, err)
		if cond(pod) {
			return pod
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %s: %+v", what, within, pod)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func exited(p runtime.Pod) bool { return p.State == runtime.PodExited }

func TestPodSidecarsShareANamespaceAndStartInOrder(t *testing.T) {
	t.Parallel()
	p := newPods(t)
	appName := app(t)
	net := network(t, p)
	spec := podSpec(t, appName, net)
	spec.InternalNames = []string{"api.shop.internal"}
	// before starts first; the main container once before started; after
	// once the main container is healthy.
	spec.MainDependsOn = map[string]runtime.Condition{"before": runtime.ConditionStart}
	before := sidecar(t, "before", true, 9090)
	after := sidecar(t, "after", false, 9091)
	after.DependsOn = map[string]runtime.Condition{"web": runtime.ConditionHealthy}
	shell := runtime.SidecarSpec{ContainerSpec: runtime.ContainerSpec{Name: "sh", Image: testutil.BusyboxImage(t), Command: []string{"sleep", "600"}}}
	spec.Sidecars = []runtime.SidecarSpec{before, after, shell}
	pod := createPod(t, p, spec)
	assert.Equal(t, runtime.PodCreated, pod.State)

	var healthyAt time.Time
	opts := healthy()
	check := opts.Healthy
	opts.Healthy = func(ctx context.Context, addr string) error {
		err := check(ctx, addr)
		healthyAt = time.Now()
		return err
	}
	pod, err := p.StartPod(ctx(t), pod.ID, opts)
	require.NoError(t, err)
	require.Len(t, pod.Containers, 4)
	for i, name := range []string{"web", "before", "after", "sh"} {
		assert.Equal(t, name, pod.Containers[i].Name)
		assert.True(t, pod.Containers[i].Running, name)
	}
	started := func(name string) time.Time { c, _ := pod.Container(name); return c.StartedAt }
	assert.False(t, started("web").Before(started("before")), "web waits for before to start")
	assert.True(t, started("after").After(healthyAt.Add(-time.Second)) && !started("after").Before(started("web")),
		"after waits for web to be healthy")

	// One network identity: the main container reaches its sidecars on
	// localhost, and the published port is the main container's.
	status, body := get(t, "http://"+pod.Addr+"/fetch?url=http://localhost:9090/healthz")
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "ok")
	// The internal names point at the app network's gateway.
	gw, _, err := p.NetworkAddrs(ctx(t), net)
	require.NoError(t, err)
	sess, err := p.ExecPod(ctx(t), pod.ID, "sh", []string{"cat", "/etc/hosts"}, false)
	require.NoError(t, err)
	hosts, err := io.ReadAll(sess.Stdout())
	require.NoError(t, err)
	code, err := sess.Wait(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, 0, code)
	assert.Regexp(t, gw+`\s+api\.shop\.internal`, string(hosts))

	// Another pod on the app network reaches this one by its alias.
	other := podSpec(t, appName, net)
	other.Aliases = []string{"client"}
	op := createPod(t, p, other)
	op, err = p.StartPod(ctx(t), op.ID, healthy())
	require.NoError(t, err)
	status, body = get(t, "http://"+op.Addr+"/fetch?url=http://web:8080/")
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "hello from v1")

	// Logs by container; the engine's own containers are no pod's.
	var lines []string
	require.NoError(t, p.Logs(ctx(t), pod.ID, "before", runtime.LogOptions{}, func(l runtime.LogLine) { lines = append(lines, l.Text) }))
	assert.Contains(t, lines, "listening on :9090")
	require.ErrorIs(t, p.Logs(ctx(t), pod.ID, "_net", runtime.LogOptions{}, func(runtime.LogLine) {}), runtime.ErrNotFound)

	// Stopped in reverse order: after (depends on web) before web, web
	// before before.
	require.NoError(t, p.StopPod(ctx(t), pod.ID, 5*time.Second))
	pod, err = p.InspectPod(ctx(t), pod.ID)
	require.NoError(t, err)
	assert.Equal(t, runtime.PodExited, pod.State)
	finished := func(name string) time.Time { c, _ := pod.Container(name); return c.FinishedAt }
	for _, c := range pod.Containers {
		assert.False(t, c.Running, c.Name)
	}
	assert.False(t, finished("web").Before(finished("after")), "web stops after what depends on it")
	assert.False(t, finished("before").Before(finished("web")), "before stops after web")
}

// nothingRuns waits until none of the pod's containers (its holder
// included) runs.
func nothingRuns(tb testing.TB, appName, pod string) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := running(tb, appName, pod)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("still running: %v", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// running lists the names of an app's running containers whose names
// start with prefix.
func running(tb testing.TB, appName, prefix string) []string {
	tb.Helper()
	var out []string
	for id, st := range testutil.AppContainers(tb, appName) {
		if st != "running" {
			continue
		}
		info, err := testutil.DockerClient(tb).ContainerInspect(ctx(tb), id)
		if err != nil {
			continue // removed since the listing
		}
		if name := strings.TrimPrefix(info.Name, "/"); strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	return out
}

func TestPodStartFailures(t *testing.T) {
	t.Parallel()
	p := newPods(t)
	appName := app(t)
	t.Run("main exits while starting", func(t *testing.T) {
		t.Parallel()
		spec := podSpec(t, appName, "")
		spec.Main.Env["CRASH"] = "1"
		spec.Sidecars = []runtime.SidecarSpec{sidecar(t, "side", true, 9090)}
		pod := createPod(t, p, spec)
		_, err := p.StartPod(ctx(t), pod.ID, healthy())
		var se *runtime.StartError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "web", se.Container)
		require.ErrorIs(t, err, runtime.ErrExited)
		assert.ErrorContains(t, err, "code 1")
		assert.Empty(t, running(t, appName, pod.Name), "nothing of it runs")
	})
	t.Run("essential sidecar dies while starting", func(t *testing.T) {
		t.Parallel()
		spec := podSpec(t, appName, "")
		spec.Main.Env["START_DELAY"] = "3s"
		spec.Sidecars = []runtime.SidecarSpec{sidecar(t, "side", true, 0, "/testapp", "exit", "4")}
		pod := createPod(t, p, spec)
		_, err := p.StartPod(ctx(t), pod.ID, healthy())
		var se *runtime.StartError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "side", se.Container)
		assert.ErrorContains(t, err, "code 4")
		pod, err = p.InspectPod(ctx(t), pod.ID)
		require.NoError(t, err)
		assert.Equal(t, runtime.PodExited, pod.State)
	})
	t.Run("without a health check a main container that exits is a pod that ran", func(t *testing.T) {
		t.Parallel()
		spec := podSpec(t, appName, "")
		spec.Port = 0
		spec.Main.Command = []string{"/testapp", "exit", "7"}
		spec.Sidecars = []runtime.SidecarSpec{sidecar(t, "side", false, 9090)}
		pod := createPod(t, p, spec)
		_, err := p.StartPod(ctx(t), pod.ID, runtime.StartOptions{})
		require.NoError(t, err)
		code, err := p.WaitPod(ctx(t), pod.ID)
		require.NoError(t, err)
		assert.Equal(t, 7, code)
		pod = eventually(t, p, pod.ID, 30*time.Second, "the pod is exited, its sidecar stopped", func(p runtime.Pod) bool {
			side, _ := p.Container("side")
			return exited(p) && !side.Running
		})
		assert.Equal(t, 7, pod.ExitCode)
	})
	t.Run("port in use", func(t *testing.T) {
		t.Parallel()
		spec := podSpec(t, appName, "")
		spec.HostPort = testutil.FreePort(t)
		first := createPod(t, p, spec)
		_, err := p.StartPod(ctx(t), first.ID, healthy())
		require.NoError(t, err)
		spec.Name = testutil.UniqueName(t, "second")
		spec.Sidecars = []runtime.SidecarSpec{sidecar(t, "side", true, 9090)}
		second := createPod(t, p, spec)
		_, err = p.StartPod(ctx(t), second.ID, healthy())
		require.ErrorIs(t, err, runtime.ErrPortInUse)
		var se *runtime.StartError
		require.ErrorAs(t, err, &se)
		pod, err := p.InspectPod(ctx(t), second.ID)
		require.NoError(t, err)
		assert.Equal(t, runtime.PodExited, pod.State)
	})
}

func TestPodDiesWithItsEssentialContainers(t *testing.T) {
	t.Parallel()
	p := newPods(t)
	appName := app(t)
	t.Run("essential sidecar", func(t *testing.T) {
		t.Parallel()
		spec := podSpec(t, appName, "")
		crash := sidecar(t, "side", true, 9090)
		crash.Env["CRASH_AFTER"] = "2s"
		spec.Sidecars = []runtime.SidecarSpec{crash}
		pod := createPod(t, p, spec)
		_, err := p.StartPod(ctx(t), pod.ID, healthy())
		require.NoError(t, err)
		pod = eventually(t, p, pod.ID, 30*time.Second, "the pod stops", exited)
		web, _ := pod.Container("web")
		assert.False(t, web.Running)
		nothingRuns(t, appName, pod.Name)
	})
	t.Run("non-essential sidecar", func(t *testing.T) {
		t.Parallel()
		spec := podSpec(t, appName, "")
		crash := sidecar(t, "side", false, 9090)
		crash.Env["CRASH_AFTER"] = "1s"
		spec.Sidecars = []runtime.SidecarSpec{crash}
		pod := createPod(t, p, spec)
		_, err := p.StartPod(ctx(t), pod.ID, healthy())
		require.NoError(t, err)
		pod = eventually(t, p, pod.ID, 30*time.Second, "the sidecar exits", func(p runtime.Pod) bool {
			side, _ := p.Container("side")
			return !side.Running
		})
		time.Sleep(time.Second)
		pod, err = p.InspectPod(ctx(t), pod.ID)
		require.NoError(t, err)
		assert.Equal(t, runtime.PodRunning, pod.State, "the control plane restarts a non-essential sidecar, not the engine")
		require.NoError(t, p.RestartContainer(ctx(t), pod.ID, "side"))
		pod, err = p.InspectPod(ctx(t), pod.ID)
		require.NoError(t, err)
		side, _ := pod.Container("side")
		assert.True(t, side.Running)
		assert.Error(t, p.RestartContainer(ctx(t), pod.ID, "web"), "the main container is not restarted alone")
		require.ErrorIs(t, p.RestartContainer(ctx(t), pod.ID, "nope"), runtime.ErrNotFound)
	})
	t.Run("main container", func(t *testing.T) {
		t.Parallel()
		spec := podSpec(t, appName, "")
		spec.Main.Env["CRASH_AFTER"] = "2s"
		spec.Sidecars = []runtime.SidecarSpec{sidecar(t, "side", false, 9090)}
		pod := createPod(t, p, spec)
		_, err := p.StartPod(ctx(t), pod.ID, healthy())
		require.NoError(t, err)
		pod = eventually(t, p, pod.ID, 30*time.Second, "the pod stops", func(p runtime.Pod) bool {
			side, _ := p.Container("side")
			return exited(p) && !side.Running
		})
		assert.Equal(t, 3, pod.ExitCode)
		nothingRuns(t, appName, pod.Name)
	})
}

func TestPodBrokenWhenItsHolderIsGone(t *testing.T) {
	t.Parallel()
	p := newPods(t)
	spec := podSpec(t, app(t), network(t, p))
	spec.Sidecars = []runtime.SidecarSpec{sidecar(t, "side", true, 9090)}
	pod := createPod(t, p, spec)
	pod, err := p.StartPod(ctx(t), pod.ID, healthy())
	require.NoError(t, err)
	require.Empty(t, pod.Broken)
	require.NoError(t, testutil.DockerClient(t).ContainerRemove(ctx(t), spec.Name+"_net", container.RemoveOptions{Force: true}))
	pod, err = p.InspectPod(ctx(t), pod.ID)
	require.NoError(t, err)
	assert.Equal(t, runtime.PodRunning, pod.State)
	assert.Contains(t, pod.Broken, "network holder")
	assert.Empty(t, pod.Addr, "a broken pod has no address to send traffic to")
}

func TestPodsReadoptedByANewEngine(t *testing.T) {
	t.Parallel()
	owner := runtime.Owner{ID: testutil.UniqueName(t, "owner"), Dir: t.TempDir()}
	first := newPodsOf(t, owner)
	appName := app(t)
	spec := podSpec(t, appName, network(t, first))
	side := sidecar(t, "side", true, 9090)
	spec.Sidecars = []runtime.SidecarSpec{side}
	spec.MainDependsOn = map[string]runtime.Condition{"side": runtime.ConditionStart}
	pod := createPod(t, first, spec)
	pod, err := first.StartPod(ctx(t), pod.ID, healthy())
	require.NoError(t, err)
	require.NoError(t, first.Close()) // the daemon stops; the pod runs on

	second := newPodsOf(t, owner)
	pods, err := second.ListPods(ctx(t), map[string]string{runtime.LabelApp: appName})
	require.NoError(t, err)
	require.Len(t, pods, 1)
	got := pods[0]
	assert.Equal(t, pod.ID, got.ID)
	assert.Equal(t, runtime.PodRunning, got.State)
	assert.Equal(t, pod.Addr, got.Addr)
	assert.Equal(t, pod.Labels, got.Labels)
	require.Len(t, got.Containers, 2)
	assert.Equal(t, []string{"web", "side"}, []string{got.Containers[0].Name, got.Containers[1].Name})
	status, _ := get(t, "http://"+got.Addr+"/healthz")
	assert.Equal(t, http.StatusOK, status)

	// Another owner sees none of it.
	peer := newPods(t)
	pods, err = peer.ListPods(ctx(t), map[string]string{runtime.LabelApp: appName})
	require.NoError(t, err)
	assert.Empty(t, pods)
	_, err = peer.InspectPod(ctx(t), pod.ID)
	require.ErrorIs(t, err, runtime.ErrNotFound)

	// The new engine supervises the adopted pod: its essential sidecar's
	// death stops it.
	sideID := got.Containers[1].ID
	require.NoError(t, testutil.DockerClient(t).ContainerKill(ctx(t), sideID, "KILL"))
	eventually(t, second, pod.ID, 30*time.Second, "the adopted pod stops", exited)

	// And starts it again, sidecar first.
	pod, err = second.StartPod(ctx(t), pod.ID, healthy())
	require.NoError(t, err)
	status, _ = get(t, "http://"+pod.Addr+"/healthz")
	assert.Equal(t, http.StatusOK, status)
}

func TestPodSuspendAndResume(t *testing.T) {
	t.Parallel()
	p := newPods(t)
	appName := app(t)
	net := network(t, p)
	for _, withSidecar := range []bool{false, true} {
		t.Run(fmt.Sprintf("sidecars=%v", withSidecar), func(t *testing.T) {
			t.Parallel()
			spec := podSpec(t, appName, net)
			if withSidecar {
				spec.Sidecars = []runtime.SidecarSpec{sidecar(t, "side", true, 9090)}
			}
			pod := createPod(t, p, spec)
			pod, err := p.StartPod(ctx(t), pod.ID, healthy())
			require.NoError(t, err)

			require.NoError(t, p.Suspend(ctx(t), pod.ID))
			require.NoError(t, p.Suspend(ctx(t), pod.ID), "a suspended pod is left")
			susp, err := p.InspectPod(ctx(t), pod.ID)
			require.NoError(t, err)
			assert.Equal(t, runtime.PodSuspended, susp.State)
			assert.Empty(t, susp.Addr)
			// Suspended for a while: the supervisor sees nothing die.
			time.Sleep(500 * time.Millisecond)

			back, err := p.Resume(ctx(t), pod.ID)
			require.NoError(t, err)
			assert.Equal(t, runtime.PodRunning, back.State)
			require.NotEmpty(t, back.Addr)
			testutil.WaitHTTP(t, "http://"+back.Addr+"/healthz", 30*time.Second)
			for _, c := range back.Containers {
				assert.True(t, c.Running, c.Name)
			}
			_, err = p.Resume(ctx(t), pod.ID)
			assert.Error(t, err, "a running pod is not suspended")

			// Stopped while suspended, it starts again.
			require.NoError(t, p.Suspend(ctx(t), pod.ID))
			require.NoError(t, p.StopPod(ctx(t), pod.ID, 0))
			st, err := p.InspectPod(ctx(t), pod.ID)
			require.NoError(t, err)
			assert.Equal(t, runtime.PodExited, st.State)
			again, err := p.StartPod(ctx(t), pod.ID, healthy())
			require.NoError(t, err)
			status, _ := get(t, "http://"+again.Addr+"/healthz")
			assert.Equal(t, http.StatusOK, status)
		})
	}
}

func TestPodTaskJoinsAReadyNetworkHolder(t *testing.T) {
	t.Parallel()
	owner := runtime.Owner{ID: testutil.UniqueName(t, "owner"), Dir: t.TempDir()}
	p := newPodsOf(t, owner)
	appName := app(t)
	net := testutil.UniqueName(t, "net")
	require.NoError(t, p.EnsureNetwork(ctx(t), net, map[string]string{"berth.test": "1"}))
	t.Cleanup(func() { _ = p.RemoveNetwork(context.Background(), net) })
	web := podSpec(t, appName, net)
	wp := createPod(t, p, web)
	_, err := p.StartPod(ctx(t), wp.ID, healthy())
	require.NoError(t, err)

	labels := map[string]string{runtime.LabelApp: appName}
	names := []string{"api.shop.internal"}
	p.WarmTaskNet(net, labels, names)
	holders := func() []string {
		var out []string
		for id, st := range testutil.AppContainers(t, appName) {
			info, err := testutil.DockerClient(t).ContainerInspect(ctx(t), id)
			if err != nil {
				continue // removed since the listing
			}
			if info.Config.Labels[runtime.LabelRole] == string(runtime.RoleTaskNet) && st == "running" {
				out = append(out, id)
			}
		}
		return out
	}
	// ready waits until one holder runs, not one of not.
	ready := func(not ...string) []string {
		deadline := time.Now().Add(30 * time.Second)
		for {
			hs := holders()
			if len(hs) == 1 && !slices.Contains(not, hs[0]) {
				return hs
			}
			if time.Now().After(deadline) {
				t.Fatalf("task network holders running: %v, want one, not %v", hs, not)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	first := ready()

	task := runtime.PodSpec{
		Name:          testutil.UniqueName(t, "task"),
		Labels:        map[string]string{runtime.LabelApp: appName, runtime.LabelRole: string(runtime.RoleTask)},
		Network:       net,
		InternalNames: names,
		Main: runtime.ContainerSpec{Image: testutil.BusyboxImage(t), Command: []string{"sh", "-c",
			"grep -c api.shop.internal /etc/hosts; wget -qO- http://web:8080/"}},
	}
	tp := createPod(t, p, task)
	info, err := testutil.DockerClient(t).ContainerInspect(ctx(t), tp.ID)
	require.NoError(t, err)
	assert.Equal(t, "container:"+first[0], string(info.HostConfig.NetworkMode), "the task joined the ready holder")
	_, err = p.StartPod(ctx(t), tp.ID, runtime.StartOptions{})
	require.NoError(t, err)
	code, err := p.WaitPod(ctx(t), tp.ID)
	require.NoError(t, err)
	var out []string
	require.NoError(t, p.Logs(ctx(t), tp.ID, "", runtime.LogOptions{}, func(l runtime.LogLine) { out = append(out, l.Text) }))
	assert.Equal(t, 0, code, "output: %v", out)
	assert.Equal(t, []string{"1", "hello from v1"}, out, "the task resolves the internal name and reaches web by name")

	// The task's holder goes with it, and the next one is made.
	require.NoError(t, p.RemovePod(ctx(t), tp.ID))
	_, err = testutil.DockerClient(t).ContainerInspect(ctx(t), first[0])
	assert.Error(t, err, "the task's holder is removed with it")
	second := ready(first...)

	// One that lost its network is replaced.
	require.NoError(t, testutil.DockerClient(t).NetworkDisconnect(ctx(t), net, second[0], true))
	p.WarmTaskNet(net, labels, names)
	third := ready(second...)

	// A later daemon takes back the ready holder rather than making one.
	later := newPodsOf(t, owner)
	later.WarmTaskNet(net, labels, names)
	time.Sleep(2 * time.Second)
	assert.Equal(t, third, ready())

	// The network goes with its ready holder.
	require.NoError(t, p.RemovePod(ctx(t), wp.ID))
	require.NoError(t, later.RemoveNetwork(ctx(t), net))
	assert.Empty(t, holders())
}
