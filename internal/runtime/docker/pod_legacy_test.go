package docker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/docker"
	"github.com/berth-dev/berth/internal/testutil"
)

// The containers a berth from before pods made, made as it made them: its
// control plane's containerSpec, holderSpec, sidecarSpec, task container
// and task network holder (git show 0483b00:internal/controlplane/), through
// the container-level Create it called (container.go is unchanged since),
// with the labels it put on them, and started in the order it started
// them. None carries a pod layout.

// legacySidecar is a sidecar of a pre-pod instance: its name and argv.
type legacySidecar struct {
	name string
	argv []string
	env  map[string]string
}

// legacyMade is what legacyInstance made: the instance's own container,
// its holder (nil without sidecars) and its sidecars, in order.
type legacyMade struct {
	main     docker.Container
	holder   *docker.Container
	sidecars []docker.Container
}

// legacyCreate creates a container as the old control plane did, removed
// when the test ends.
func legacyCreate(tb testing.TB, e *docker.Engine, spec runtime.ContainerSpec) docker.Container {
	tb.Helper()
	c, err := e.Create(ctx(tb), spec)
	require.NoError(tb, err)
	tb.Cleanup(func() {
		c2, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.Remove(c2, c.ID); err != nil {
			tb.Logf("cleanup: %v", err)
		}
	})
	return c
}

// legacyInstance makes and starts an instance of service web, revision 1,
// of appName on net, as a berth from before pods did: its container
// serving on 8080 and, with sidecars, its network holder (which has the
// network, the alias and the port) and the sidecars joining it. Each
// sidecar is started before the main container when it is the first (an
// init container), after it otherwise.
func legacyInstance(tb testing.TB, e *docker.Engine, appName, net string, sidecars ...legacySidecar) legacyMade {
	tb.Helper()
	inst := strings.TrimPrefix(testutil.UniqueName(tb, ""), "bt-")
	name := "berth-" + appName + "-web-1-" + inst
	labels := func(role runtime.Role, sidecar string) map[string]string {
		l := map[string]string{
			runtime.LabelApp: appName, runtime.LabelService: "web", runtime.LabelRevision: "1",
			runtime.LabelInstance: inst, runtime.LabelRole: string(role), "berth.test": "1",
		}
		if sidecar != "" {
			l[runtime.LabelSidecar] = sidecar
		}
		return l
	}
	main := runtime.ContainerSpec{
		Name: name, Image: testutil.TestAppImage(tb), Env: map[string]string{"PORT": "8080"},
		Labels: labels(runtime.RoleInstance, ""),
		Port:   8080, Network: net, Aliases: []string{"web"}, StopGrace: 5 * time.Second,
	}
	var m legacyMade
	if len(sidecars) == 0 {
		m.main = legacyCreate(tb, e, main)
		m.main = start(tb, e, m.main.ID)
		return m
	}
	image, err := e.HolderImage(ctx(tb))
	require.NoError(tb, err)
	h := legacyCreate(tb, e, runtime.ContainerSpec{
		Name: name + "_net", Image: image, Labels: labels(runtime.RoleSidecar, "_net"),
		Port: 8080, Network: net, Aliases: []string{"web"}, PidsLimit: 16, StopGrace: time.Second,
	})
	m.holder = &h
	main.JoinContainer, main.Network, main.Aliases, main.Port = h.ID, "", nil, 0
	m.main = legacyCreate(tb, e, main)
	for _, s := range sidecars {
		m.sidecars = append(m.sidecars, legacyCreate(tb, e, runtime.ContainerSpec{
			Name: name + "-" + s.name, Image: testutil.TestAppImage(tb), Command: s.argv, Env: s.env,
			Labels: labels(runtime.RoleSidecar, s.name), JoinContainer: h.ID, StopGrace: 5 * time.Second,
		}))
	}
	h, err = e.Start(ctx(tb), h.ID)
	require.NoError(tb, err)
	m.holder = &h
	_, err = e.Start(ctx(tb), m.sidecars[0].ID)
	require.NoError(tb, err)
	_, err = e.Start(ctx(tb), m.main.ID)
	require.NoError(tb, err)
	testutil.WaitHTTP(tb, "http://"+h.HostAddr+"/healthz", 30*time.Second)
	for _, s := range m.sidecars[1:] {
		_, err = e.Start(ctx(tb), s.ID)
		require.NoError(tb, err)
	}
	return m
}

// serves asserts that a pod answers on its Addr.
func serves(tb testing.TB, pod runtime.Pod) {
	tb.Helper()
	require.NotEmpty(tb, pod.Addr, "a running pod has an Addr")
	code, _ := get(tb, "http://"+pod.Addr+"/healthz")
	assert.Equal(tb, 200, code)
}

// gone asserts that a container no longer exists.
func gone(tb testing.TB, id, what string) {
	tb.Helper()
	_, err := testutil.DockerClient(tb).ContainerInspect(ctx(tb), id)
	assert.Truef(tb, cerrdefs.IsNotFound(err), "%s is removed (err %v)", what, err)
}

// runs reports whether a container runs.
func runs(tb testing.TB, id string) bool {
	tb.Helper()
	info, err := testutil.DockerClient(tb).ContainerInspect(ctx(tb), id)
	require.NoError(tb, err)
	return info.State.Running
}

func TestLegacyInstanceIsAPod(t *testing.T) {
	t.Parallel()
	p := newPods(t)
	appName := app(t)
	net := network(t, p)
	m := legacyInstance(t, p, appName, net)

	pods, err := p.ListPods(ctx(t), map[string]string{runtime.LabelApp: appName})
	require.NoError(t, err)
	require.Len(t, pods, 1, "its container is a pod")
	pod := pods[0]
	assert.Equal(t, m.main.ID, pod.ID, "the pod's ID is its container's")
	assert.Equal(t, m.main.Name, pod.Name)
	assert.Equal(t, runtime.PodRunning, pod.State)
	assert.Equal(t, "1", pod.Labels[runtime.LabelRevision])
	assert.Equal(t, m.main.HostAddr, pod.Addr)
	assert.Equal(t, []runtime.ContainerStatus{{Name: "web", ID: m.main.ID, Main: true, Running: true, StartedAt: pod.Containers[0].StartedAt}}, pod.Containers)
	serves(t, pod)
	byRole, err := p.ListPods(ctx(t), map[string]string{runtime.LabelRole: string(runtime.RoleInstance), runtime.LabelApp: appName})
	require.NoError(t, err)
	require.Len(t, byRole, 1)
	assert.Equal(t, pod.ID, byRole[0].ID)

	on, err := p.Deregister(ctx(t), pod.ID)
	require.NoError(t, err)
	assert.True(t, on, "it served under its service's name")
	pod, err = p.InspectPod(ctx(t), pod.ID)
	require.NoError(t, err)
	serves(t, pod)

	require.NoError(t, p.Suspend(ctx(t), pod.ID))
	pod, err = p.InspectPod(ctx(t), pod.ID)
	require.NoError(t, err)
	assert.Equal(t, runtime.PodSuspended, pod.State)
	pod, err = p.Resume(ctx(t), pod.ID)
	require.NoError(t, err)
	assert.Equal(t, runtime.PodRunning, pod.State)
	serves(t, pod)

	require.NoError(t, p.StopPod(ctx(t), pod.ID, 5*time.Second))
	pod, err = p.InspectPod(ctx(t), pod.ID)
	require.NoError(t, err)
	assert.Equal(t, runtime.PodExited, pod.State)
	assert.Empty(t, pod.Addr)

	// A rollback target.
	pod, err = p.StartPod(ctx(t), pod.ID, healthy())
	require.NoError(t, err)
	assert.Equal(t, runtime.PodRunning, pod.State)
	serves(t, pod)

	require.NoError(t, p.RemovePod(ctx(t), pod.ID))
	_, err = p.InspectPod(ctx(t), pod.ID)
	require.ErrorIs(t, err, runtime.ErrNotFound)
	gone(t, m.main.ID, "its container")
}

func TestLegacyInstanceWithSidecarsIsAPod(t *testing.T) {
	t.Parallel()
	p := newPods(t)
	appName := app(t)
	net := network(t, p)
	m := legacyInstance(t, p, appName, net,
		legacySidecar{name: "migrate", argv: []string{"/testapp", "migrate"}},
		legacySidecar{name: "proxy", env: map[string]string{"PORT": "9090"}},
	)
	migrate, proxy := m.sidecars[0], m.sidecars[1]
	events, _ := p.Events(ctx(t))

	pods, err := p.ListPods(ctx(t), map[string]string{runtime.LabelApp: appName, runtime.LabelService: "web", runtime.LabelRole: string(runtime.RoleInstance)})
	require.NoError(t, err)
	require.Len(t, pods, 1, "its sidecars and holder are no pods of their own")
	pod := pods[0]
	assert.Equal(t, m.main.ID, pod.ID)
	assert.Equal(t, runtime.PodRunning, pod.State)
	assert.Equal(t, m.holder.HostAddr, pod.Addr, "the holder publishes the port")
	assert.Empty(t, pod.Broken)
	serves(t, pod)
	var names, ids []string
	for _, c := range pod.Containers {
		names, ids = append(names, c.Name), append(ids, c.ID)
	}
	assert.Equal(t, []string{"web", "migrate", "proxy"}, names, "the main container, then the sidecars in the order they were made")
	assert.Equal(t, []string{m.main.ID, migrate.ID, proxy.ID}, ids)

	// The init container ran and exited, as it was meant to: the pod
	// serves on (the supervisor has looked at it since ListPods).
	pod = eventually(t, p, pod.ID, 30*time.Second, "the init container exited", func(pod runtime.Pod) bool {
		c, ok := pod.Container("migrate")
		return ok && !c.Running && !c.FinishedAt.IsZero()
	})
	ran, _ := pod.Container("migrate")
	time.Sleep(2 * time.Second)
	pod, err = p.InspectPod(ctx(t), pod.ID)
	require.NoError(t, err)
	assert.Equal(t, runtime.PodRunning, pod.State, "an exited sidecar of a pod made before pods does not stop it")
	c, _ := pod.Container("proxy")
	assert.True(t, c.Running)
	var lines []string
	require.NoError(t, p.Logs(ctx(t), pod.ID, "migrate", runtime.LogOptions{}, func(l runtime.LogLine) { lines = append(lines, l.Text) }))
	assert.Contains(t, lines, "migrated")

	// A sidecar's death is the pod's event, under its name in the pod.
	cli := testutil.DockerClient(t)
	require.NoError(t, cli.ContainerKill(ctx(t), proxy.ID, "KILL"))
	deadline := time.After(time.Minute)
	for seen := false; !seen; {
		select {
		case ev, ok := <-events:
			require.True(t, ok, "events end")
			seen = ev.Action == "die" && ev.Container == "proxy"
			if seen {
				assert.Equal(t, pod.ID, ev.PodID)
				assert.Equal(t, string(runtime.RoleInstance), ev.Labels[runtime.LabelRole], "the pod's labels")
				assert.Equal(t, appName, ev.Labels[runtime.LabelApp])
			}
		case <-deadline:
			t.Fatal("no die event of the proxy sidecar")
		}
	}
	require.NoError(t, p.RestartContainer(ctx(t), pod.ID, "proxy"))
	pod, err = p.InspectPod(ctx(t), pod.ID)
	require.NoError(t, err)
	c, _ = pod.Container("proxy")
	assert.True(t, c.Running, "restarted")
	assert.Equal(t, runtime.PodRunning, pod.State)

	require.NoError(t, p.Suspend(ctx(t), pod.ID))
	pod, err = p.InspectPod(ctx(t), pod.ID)
	require.NoError(t, err)
	assert.Equal(t, runtime.PodSuspended, pod.State)
	pod, err = p.Resume(ctx(t), pod.ID)
	require.NoError(t, err)
	serves(t, pod)

	// Its main container dies: the engine stops the rest of the pod.
	require.NoError(t, cli.ContainerKill(ctx(t), m.main.ID, "KILL"))
	pod = eventually(t, p, pod.ID, time.Minute, "the pod is stopped whole", func(pod runtime.Pod) bool {
		c, _ := pod.Container("proxy")
		return pod.State == runtime.PodExited && !c.Running && !runs(t, m.holder.ID)
	})
	assert.Equal(t, 137, pod.ExitCode)

	// A rollback target: started again, its init container runs again.
	pod, err = p.StartPod(ctx(t), pod.ID, healthy())
	require.NoError(t, err)
	assert.Equal(t, runtime.PodRunning, pod.State)
	serves(t, pod)
	c, _ = pod.Container("proxy")
	assert.True(t, c.Running)
	again, _ := pod.Container("migrate")
	assert.True(t, again.StartedAt.After(ran.StartedAt), "migrate ran in this start")

	require.NoError(t, p.StopPod(ctx(t), pod.ID, 5*time.Second))
	pod, err = p.InspectPod(ctx(t), pod.ID)
	require.NoError(t, err)
	assert.Equal(t, runtime.PodExited, pod.State)
	assert.False(t, runs(t, m.holder.ID), "the holder is stopped with it")

	require.NoError(t, p.RemovePod(ctx(t), pod.ID))
	gone(t, m.main.ID, "its container")
	gone(t, migrate.ID, "sidecar migrate")
	gone(t, proxy.ID, "sidecar proxy")
	gone(t, m.holder.ID, "its network holder")
	pods, err = p.ListPods(ctx(t), map[string]string{runtime.LabelApp: appName})
	require.NoError(t, err)
	assert.Empty(t, pods)
}

func TestLegacyTaskIsAPod(t *testing.T) {
	t.Parallel()
	p := newPods(t)
	e := p
	appName := app(t)
	net := network(t, e)
	image, err := e.HolderImage(ctx(t))
	require.NoError(t, err)
	taskLabels := func(id string) map[string]string {
		return map[string]string{
			runtime.LabelApp: appName, runtime.LabelService: "web", runtime.LabelRevision: "1",
			runtime.LabelTask: id, runtime.LabelRole: string(runtime.RoleTask), "berth.test": "1",
		}
	}

	// One joined a ready task network holder, one the network itself.
	holder := legacyCreate(t, e, runtime.ContainerSpec{
		Name: "berth-" + appName + "-tasknet-" + strings.TrimPrefix(testutil.UniqueName(t, ""), "bt-"), Image: image,
		Labels:  map[string]string{runtime.LabelApp: appName, runtime.LabelRole: string(runtime.RoleTaskNet), "berth.tasknet.hosts": "", "berth.test": "1"},
		Network: net, PidsLimit: 16, StopGrace: time.Second,
	})
	_, err = e.Start(ctx(t), holder.ID)
	require.NoError(t, err)
	joined := taskLabels("t1")
	joined["berth.tasknet"] = holder.ID
	long := legacyCreate(t, e, runtime.ContainerSpec{
		Name: "berth-" + appName + "-task-t1", Image: testutil.TestAppImage(t), Command: []string{"/testapp", "sleep", "10m"},
		Labels: joined, JoinContainer: holder.ID, StopGrace: 5 * time.Second,
	})
	_, err = e.Start(ctx(t), long.ID)
	require.NoError(t, err)
	short := legacyCreate(t, e, runtime.ContainerSpec{
		Name: "berth-" + appName + "-task-t2", Image: testutil.TestAppImage(t), Command: []string{"/testapp", "exit", "3"},
		Labels: taskLabels("t2"), Network: net, StopGrace: 5 * time.Second,
	})
	_, err = e.Start(ctx(t), short.ID)
	require.NoError(t, err)

	code, err := p.WaitPod(ctx(t), short.ID)
	require.NoError(t, err)
	assert.Equal(t, 3, code)
	pods, err := p.ListPods(ctx(t), map[string]string{runtime.LabelRole: string(runtime.RoleTask), runtime.LabelApp: appName})
	require.NoError(t, err)
	require.Len(t, pods, 2, "the tasks are pods; the holder is none")
	assert.Equal(t, long.ID, pods[0].ID)
	assert.Equal(t, runtime.PodRunning, pods[0].State)
	assert.Empty(t, pods[0].Addr, "a task takes no traffic")
	assert.Empty(t, pods[0].Broken, "its holder runs")
	assert.Equal(t, "t1", pods[0].Labels[runtime.LabelTask])
	assert.NotContains(t, pods[0].Labels, "berth.tasknet", "the holder it joined is the engine's business")
	require.Len(t, pods[0].Containers, 1)
	assert.Equal(t, "web", pods[0].Containers[0].Name)
	assert.True(t, pods[0].Containers[0].Running)
	assert.Equal(t, short.ID, pods[1].ID)
	assert.Equal(t, runtime.PodExited, pods[1].State)
	assert.Equal(t, 3, pods[1].ExitCode)

	require.NoError(t, p.StopPod(ctx(t), long.ID, 0))
	code, err = p.WaitPod(ctx(t), long.ID)
	require.NoError(t, err)
	assert.Equal(t, 137, code)
	assert.False(t, runs(t, holder.ID), "its holder is stopped with it")

	require.NoError(t, p.RemovePod(ctx(t), long.ID))
	gone(t, long.ID, "the task's container")
	gone(t, holder.ID, "the task's network holder")
	require.NoError(t, p.RemovePod(ctx(t), short.ID))
	gone(t, short.ID, "the task's container")
	pods, err = p.ListPods(ctx(t), map[string]string{runtime.LabelApp: appName})
	require.NoError(t, err)
	assert.Empty(t, pods)
}
