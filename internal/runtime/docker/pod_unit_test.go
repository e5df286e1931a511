package docker

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/runtime"
)

func TestLayoutOf(t *testing.T) {
	img := runtime.ContainerSpec{Image: "app"}
	side := func(name string, essential bool, deps map[string]runtime.Condition) runtime.SidecarSpec {
		return runtime.SidecarSpec{ContainerSpec: runtime.ContainerSpec{Name: name, Image: "side"}, Essential: essential, DependsOn: deps}
	}
	main := runtime.ContainerSpec{Name: "web", Image: "app"}
	tests := []struct {
		name    string
		spec    runtime.PodSpec
		wantErr string
		check   func(t *testing.T, l podLayout)
	}{
		{name: "lone", spec: runtime.PodSpec{Name: "p", Main: img}, check: func(t *testing.T, l podLayout) {
			assert.False(t, l.Holder, "a lone container needs no holder")
			assert.Equal(t, 1, l.size())
		}},
		{name: "sidecars", spec: runtime.PodSpec{Name: "p", Main: main,
			MainDependsOn: map[string]runtime.Condition{"migrate": runtime.ConditionSuccess, "proxy": runtime.ConditionStart},
			Sidecars: []runtime.SidecarSpec{
				side("migrate", false, nil),
				side("proxy", true, nil),
				side("ship", false, map[string]runtime.Condition{"web": runtime.ConditionHealthy}),
			}}, check: func(t *testing.T, l podLayout) {
			assert.True(t, l.Holder)
			assert.Equal(t, []string{"web", "migrate", "proxy", "ship"}, []string{l.name(0), l.name(1), l.name(2), l.name(3)})
			assert.True(t, l.Sidecars[0].Init, "waited on to succeed: an init container")
			assert.False(t, l.Sidecars[1].Init)
			assert.Equal(t, [][]int{{3}, {0}, {0}, nil}, l.dependents())
		}},
		{name: "no name", spec: runtime.PodSpec{Main: img}, wantErr: "needs a name"},
		{name: "no image", spec: runtime.PodSpec{Name: "p"}, wantErr: "needs an image"},
		{name: "unknown dependency", spec: runtime.PodSpec{Name: "p", Main: main, MainDependsOn: map[string]runtime.Condition{"db": runtime.ConditionStart}},
			wantErr: `web depends on unknown container "db"`},
		{name: "same names", spec: runtime.PodSpec{Name: "p", Main: main, Sidecars: []runtime.SidecarSpec{side("web", true, nil)}},
			wantErr: `two containers are named "web"`},
		{name: "holder's name", spec: runtime.PodSpec{Name: "p", Main: main, Sidecars: []runtime.SidecarSpec{side(holderName, true, nil)}},
			wantErr: "cannot be named"},
		{name: "unknown condition", spec: runtime.PodSpec{Name: "p", Main: main, MainDependsOn: map[string]runtime.Condition{"a": "ready"},
			Sidecars: []runtime.SidecarSpec{side("a", true, nil)}}, wantErr: `unknown condition "ready"`},
		{name: "cycle", spec: runtime.PodSpec{Name: "p", Main: main, MainDependsOn: map[string]runtime.Condition{"a": runtime.ConditionStart},
			Sidecars: []runtime.SidecarSpec{
				side("a", true, map[string]runtime.Condition{"b": runtime.ConditionStart}),
				side("b", true, map[string]runtime.Condition{"web": runtime.ConditionStart}),
			}}, wantErr: "cycle web -> a -> b -> web"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := layoutOf(tt.spec)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, ErrInvalidPod)
				assert.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.check(t, l)
		})
	}
}

// podAt builds a pod as inspected: the main container and sidecars in the
// given states, the holder started at holderStart (zero: never).
func podAt(holderStart time.Time, main state, sidecars map[string]state) podInfo {
	l := podLayout{Main: "web", Holder: true}
	for _, n := range []string{"proxy", "ship", "migrate"} {
		l.Sidecars = append(l.Sidecars, layoutSidecar{Name: n, Essential: n != "ship" && n != "migrate", Init: n == "migrate"})
	}
	h := inspected("holder", state{running: !holderStart.IsZero(), started: holderStart})
	pi := podInfo{main: inspected("main", main), layout: l, holder: &h, sidecars: map[string]container.InspectResponse{}}
	for n, s := range sidecars {
		pi.sidecars[n] = inspected(n, s)
	}
	return pi
}

type state struct {
	running, paused bool
	created         bool
	code            int
	started         time.Time
	finished        time.Time
}

func inspected(id string, s state) container.InspectResponse {
	st := &container.State{Running: s.running || s.paused, Paused: s.paused, ExitCode: s.code, Status: container.StateExited}
	switch {
	case s.created:
		st.Status = container.StateCreated
	case s.paused:
		st.Status = container.StatePaused
	case s.running:
		st.Status = container.StateRunning
	}
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "0001-01-01T00:00:00Z"
		}
		return t.Format(time.RFC3339Nano)
	}
	st.StartedAt, st.FinishedAt = ts(s.started), ts(s.finished)
	return container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: id, Name: "/" + id, State: st, HostConfig: &container.HostConfig{}},
		Config:            &container.Config{Labels: map[string]string{}},
	}
}

func TestVerdict(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	runs := state{running: true, started: at(1)}
	tests := []struct {
		name string
		pod  podInfo
		stop bool
		why  string
	}{
		{name: "all run", pod: podAt(t0, runs, map[string]state{"proxy": runs, "ship": runs})},
		{name: "main exited in this run", pod: podAt(t0, state{code: 3, started: at(1), finished: at(5)}, map[string]state{"proxy": runs}),
			stop: true, why: "its main container exited with code 3"},
		{name: "essential sidecar died in this run", pod: podAt(t0, runs, map[string]state{"proxy": {code: 1, started: at(1), finished: at(9)}}),
			stop: true, why: "its essential sidecar proxy exited with code 1"},
		{name: "non-essential sidecar died", pod: podAt(t0, runs, map[string]state{"proxy": runs, "ship": {code: 1, started: at(1), finished: at(9)}})},
		{name: "init container completed", pod: podAt(t0, runs, map[string]state{"proxy": runs, "migrate": {started: at(1), finished: at(2)}})},
		{name: "a restart under way: the main container exited in the previous run",
			pod: podAt(at(100), state{code: 0, started: at(1), finished: at(50)}, map[string]state{"migrate": {running: true, started: at(100)}})},
		{name: "a restart under way: an essential sidecar not started again yet",
			pod: podAt(at(100), state{running: true, started: at(101)}, map[string]state{"proxy": {started: at(1), finished: at(50)}})},
		{name: "all stopped", pod: func() podInfo {
			pi := podAt(t0, state{code: 137, started: at(1), finished: at(5)}, map[string]state{"proxy": {code: 137, started: at(1), finished: at(5)}})
			pi.holder.State.Running = false
			return pi
		}()},
		{name: "suspended", pod: podAt(t0, state{paused: true, started: at(1)}, map[string]state{"proxy": {paused: true, started: at(1)}})},
		{name: "a lone container", pod: podInfo{main: inspected("main", state{code: 1, started: at(1), finished: at(2)})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stop, why := verdict(tt.pod)
			assert.Equal(t, tt.stop, stop)
			assert.Equal(t, tt.why, why)
		})
	}
}

func TestHolderLinger(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	task := func(main state) podInfo {
		h := inspected("holder", state{running: true, started: t0})
		return podInfo{main: inspected("main", main), layout: podLayout{Main: "job", Holder: true}, holder: &h}
	}
	exitedAt := func(ms int) state { return state{started: at(10), finished: at(ms)} }
	tests := []struct {
		name string
		pod  podInfo
		now  time.Time
		want time.Duration
	}{
		{"a task just exited: its removal is on its way", task(exitedAt(100)), at(600), 1500 * time.Millisecond},
		{"a task that exited long ago: stopped now", task(exitedAt(100)), at(2100), 0},
		{"a task still running", task(state{running: true, started: at(10)}), at(600), 0},
		{"a pod with sidecars: stopped at once", podAt(t0, exitedAt(100), nil), at(600), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, holderLinger(tt.pod, tt.now))
		})
	}
}

func TestPodState(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	created := state{created: true}
	tests := []struct {
		name   string
		pod    podInfo
		want   runtime.PodState
		broken string
	}{
		{name: "created", pod: podAt(time.Time{}, created, map[string]state{"proxy": created}), want: runtime.PodCreated},
		{name: "starting: the holder runs", pod: podAt(t0, created, map[string]state{"proxy": {running: true, started: t0}}), want: runtime.PodCreated},
		{name: "running", pod: podAt(t0, state{running: true, started: t0}, nil), want: runtime.PodRunning},
		{name: "suspended", pod: podAt(t0, state{paused: true, started: t0}, nil), want: runtime.PodSuspended},
		{name: "a failed start: an init container ran, the main one never did", pod: func() podInfo {
			pi := podAt(t0, created, map[string]state{"migrate": {code: 3, started: t0, finished: t0}})
			pi.holder.State.Running = false
			return pi
		}(), want: runtime.PodExited},
		{name: "holder gone while the main container runs", pod: func() podInfo {
			pi := podAt(t0, state{running: true, started: t0}, nil)
			pi.holder = nil
			return pi
		}(), want: runtime.PodRunning, broken: "its network holder is gone"},
		{name: "holder exited while the main container runs", pod: func() podInfo {
			pi := podAt(t0, state{running: true, started: t0}, nil)
			pi.holder.State.Running, pi.holder.State.ExitCode = false, 137
			return pi
		}(), want: runtime.PodRunning, broken: "its network holder exited with code 137"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.pod.pod()
			assert.Equal(t, tt.want, p.State)
			assert.Equal(t, tt.broken, p.Broken)
			if tt.broken != "" {
				assert.Empty(t, p.Addr, "a broken pod has no address")
			}
			assert.Equal(t, "web", p.Containers[0].Name)
			assert.True(t, p.Containers[0].Main)
		})
	}
}

func TestPodEvent(t *testing.T) {
	layout, err := json.Marshal(podLayout{Main: "web", Holder: true})
	require.NoError(t, err)
	msg := func(id string, attrs map[string]string) events.Message {
		return events.Message{Action: events.ActionDie, Actor: events.Actor{ID: id, Attributes: attrs}}
	}
	t.Run("main", func(t *testing.T) {
		ev, ok := podEvent(msg("m1", map[string]string{labelPodLayout: string(layout), runtime.LabelApp: "a", runtime.LabelRole: "instance", "exitCode": "3", "name": "pod"}))
		require.True(t, ok)
		assert.Equal(t, runtime.PodEvent{PodID: "m1", Container: "web", Action: "die", ExitCode: 3,
			Labels: map[string]string{runtime.LabelApp: "a", runtime.LabelRole: "instance"}}, ev)
	})
	t.Run("sidecar", func(t *testing.T) {
		ev, ok := podEvent(msg("s1", map[string]string{labelPodID: "m1", runtime.LabelSidecar: "proxy", labelPodRole: "instance",
			runtime.LabelRole: "sidecar", runtime.LabelApp: "a", "exitCode": "1"}))
		require.True(t, ok)
		assert.Equal(t, runtime.PodEvent{PodID: "m1", Container: "proxy", Action: "die", ExitCode: 1,
			Labels: map[string]string{runtime.LabelApp: "a", runtime.LabelRole: "instance"}}, ev, "the pod's labels, not the sidecar's")
	})
	t.Run("holder or another container", func(t *testing.T) {
		_, ok := podEvent(msg("h1", map[string]string{runtime.LabelSidecar: holderName, runtime.LabelRole: "sidecar"}))
		assert.False(t, ok)
		_, ok = podEvent(msg("x", map[string]string{runtime.LabelApp: "a"}))
		assert.False(t, ok)
	})
}

func TestPodEventLegacy(t *testing.T) {
	msg := func(id string, attrs map[string]string) events.Message {
		return events.Message{Action: events.ActionDie, Actor: events.Actor{ID: id, Attributes: attrs}}
	}
	instance := map[string]string{runtime.LabelApp: "a", runtime.LabelService: "web", runtime.LabelRevision: "3", runtime.LabelInstance: "i1"}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range instance {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	t.Run("instance", func(t *testing.T) {
		ev, ok := podEvent(msg("m1", with(map[string]string{runtime.LabelRole: "instance", "exitCode": "3", "name": "berth-a-web-3-i1"})))
		require.True(t, ok)
		assert.Equal(t, runtime.PodEvent{PodID: "m1", Container: "web", Action: "die", ExitCode: 3,
			Labels: with(map[string]string{runtime.LabelRole: "instance"})}, ev)
	})
	t.Run("task", func(t *testing.T) {
		ev, ok := podEvent(msg("t1", map[string]string{runtime.LabelApp: "a", runtime.LabelService: "web", runtime.LabelTask: "x1",
			runtime.LabelRole: "task", labelTaskNet: "h1"}))
		require.True(t, ok)
		assert.Equal(t, runtime.PodEvent{PodID: "t1", Container: "web", Action: "die",
			Labels: map[string]string{runtime.LabelApp: "a", runtime.LabelService: "web", runtime.LabelTask: "x1", runtime.LabelRole: "task"}}, ev,
			"the holder it joined is the engine's business")
	})
	t.Run("sidecar", func(t *testing.T) {
		ev, ok := podEvent(msg("s1", with(map[string]string{runtime.LabelRole: "sidecar", runtime.LabelSidecar: "proxy"})))
		require.True(t, ok)
		assert.Equal(t, runtime.PodEvent{Container: "proxy", Action: "die", Labels: with(map[string]string{runtime.LabelRole: "instance"})}, ev,
			"the pod's labels; its ID is looked up by them")
	})
	t.Run("holders", func(t *testing.T) {
		_, ok := podEvent(msg("h1", with(map[string]string{runtime.LabelRole: "sidecar", runtime.LabelSidecar: holderName})))
		assert.False(t, ok)
		_, ok = podEvent(msg("h2", map[string]string{runtime.LabelApp: "a", runtime.LabelRole: "tasknet"}))
		assert.False(t, ok)
	})
}

func TestFillLegacy(t *testing.T) {
	at := func(s int) string { return time.Unix(1_700_000_000+int64(s), 0).UTC().Format(time.RFC3339Nano) }
	member := func(id, name, created string) container.InspectResponse {
		return container.InspectResponse{
			ContainerJSONBase: &container.ContainerJSONBase{ID: id, Name: "/c-" + id, Created: created},
			Config:            &container.Config{Labels: map[string]string{runtime.LabelRole: "sidecar", runtime.LabelSidecar: name}},
		}
	}
	main := container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: "m1", Name: "/pod", HostConfig: &container.HostConfig{NetworkMode: "container:h1"}},
		Config:            &container.Config{Labels: map[string]string{runtime.LabelRole: "instance", runtime.LabelService: "web", runtime.LabelInstance: "i1"}},
	}
	l, ok := legacyLayout(main)
	require.True(t, ok)
	assert.Equal(t, podLayout{Main: "web", Holder: true}, l)
	holder := member("h1", holderName, at(0))
	pi := podInfo{main: main, layout: l, legacy: true, holder: &holder}
	(&Engine{}).fillLegacy(t.Context(), &pi, []container.InspectResponse{
		member("p1", "proxy", at(2)), holder, member("s1", "ship", at(1)), member("p2", "proxy", at(3)), member("h9", holderName, at(4)),
	})
	assert.Equal(t, []layoutSidecar{{Name: "ship"}, {Name: "proxy"}}, pi.layout.Sidecars, "in the order they were made, none essential")
	assert.Equal(t, "p1", pi.sidecars["proxy"].ID)
	assert.Equal(t, []string{"p2", "h9"}, pi.strays, "what fits nowhere goes with the pod")
	assert.Equal(t, []string{"web", "ship", "proxy"}, []string{pi.pod().Containers[0].Name, pi.pod().Containers[1].Name, pi.pod().Containers[2].Name})

	_, ok = legacyLayout(member("s1", "ship", at(1)))
	assert.False(t, ok, "a sidecar is no pod")
}

func TestWarmAfter(t *testing.T) {
	var tn taskNets
	warmed := 0
	h := inspected("holder", state{running: true})
	tn.warmAfter("pod1", &h, func() { warmed++ })
	assert.Equal(t, &h, tn.joined("pod1"), "until its start, the pod's holder runs as it was taken")
	assert.Nil(t, tn.joined("other"))
	tn.warmPending("other")
	assert.Equal(t, 0, warmed, "another pod's start warms nothing")
	tn.warmPending("pod1")
	assert.Equal(t, 1, warmed, "the pod's start (or removal) warms the next holder")
	assert.Nil(t, tn.joined("pod1"), "its holder is inspected from then on")
	tn.warmPending("pod1")
	assert.Equal(t, 1, warmed, "once")
}
