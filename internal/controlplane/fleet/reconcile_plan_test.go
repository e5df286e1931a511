package fleet

import (
	"reflect"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
)

// TestPlanReconcile checks every rule of the reconciler's decisions with no
// engine: what is dead and why, what is restarted alone, how many
// replacements start and when the crash-loop backoff holds them back.
func TestPlanReconcile(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	listed := now.Add(-10 * time.Millisecond)
	old := now.Add(-time.Hour) // started long before the listing

	// A pod's containers: the main one (named web), then sidecars.
	mainUp := runtime.ContainerStatus{Name: "web", Main: true, Running: true}
	up := func(name string) runtime.ContainerStatus { return runtime.ContainerStatus{Name: name, Running: true} }
	exited := func(name string, code int, at time.Time) runtime.ContainerStatus {
		return runtime.ContainerStatus{Name: name, Main: name == "web", ExitCode: code, FinishedAt: at}
	}
	pod := func(id string, state runtime.PodState, cs ...runtime.ContainerStatus) runtime.Pod {
		return runtime.Pod{ID: "p-" + id, State: state, Containers: cs}
	}
	pods := func(ps ...runtime.Pod) map[string]runtime.Pod {
		out := map[string]runtime.Pod{}
		for _, p := range ps {
			out[p.ID] = p
		}
		return out
	}
	running := func(ids ...string) map[string]runtime.Pod {
		out := map[string]runtime.Pod{}
		for _, id := range ids {
			out["p-"+id] = pod(id, runtime.PodRunning, mainUp)
		}
		return out
	}
	grouped := func(id string, ms ...*member) *Instance {
		return &Instance{id: id, podID: "p-" + id, state: StateHealthy, startedAt: old, sidecars: ms}
	}
	plain := func(id string) *Instance {
		return &Instance{id: id, podID: "p-" + id, state: StateHealthy, startedAt: old}
	}
	logShipper := func(started time.Time, restarts int) *member {
		return &member{name: "logs", startedAt: started, restarts: restarts}
	}
	proxy := &member{name: "proxy", essential: true, startedAt: old}
	migrate := &member{name: "migrate", once: true, startedAt: old}
	withProxy := &spec.Service{Name: "web", Instances: 1, Sidecars: map[string]*spec.Sidecar{"proxy": {Name: "proxy", Essential: true}}}

	type want struct {
		dead     map[string]string // instance → why
		restarts map[string]string // sidecar → why
		settled  []string
		forget   bool
		start    int
		armIn    time.Duration
		next     time.Time
	}
	tests := []struct {
		name string
		svc  *Service
		seen sighting
		want want
	}{{
		name: "no revision yet: nothing",
		svc:  &Service{},
		seen: sighting{at: listed, pods: pods()},
	}, {
		name: "paused: nothing, not even a dead instance",
		svc:  &Service{rev: 1, paused: true, instances: []*Instance{plain("a")}},
		seen: sighting{at: listed, pods: pods()},
	}, {
		name: "all running at the desired count: nothing",
		svc:  &Service{rev: 1, spec: &spec.Service{Instances: 2}, instances: []*Instance{plain("a"), plain("b")}},
		seen: sighting{at: listed, pods: running("a", "b")},
	}, {
		name: "a pod gone from the engine: dead, its first crash replaced at once",
		svc:  &Service{rev: 1, spec: &spec.Service{Instances: 2}, instances: []*Instance{plain("a"), plain("b")}},
		seen: sighting{at: listed, pods: running("a")},
		want: want{dead: map[string]string{"b": "disappeared from the engine"}, start: 1, next: now},
	}, {
		name: "started after the listing: not in it, left be",
		svc:  &Service{rev: 1, spec: &spec.Service{Instances: 1}, instances: []*Instance{{id: "n", podID: "p-n", startedAt: now}}},
		seen: sighting{at: listed, pods: pods()},
	}, {
		name: "unhealthy: dead, with the reason adopt gave it",
		svc:  &Service{rev: 1, spec: &spec.Service{Instances: 1}, instances: []*Instance{{id: "u", podID: "p-u", state: StateUnhealthy, startedAt: old, crashWhy: "lost its network holder while the daemon was down"}}},
		seen: sighting{at: listed, pods: running("u")},
		want: want{dead: map[string]string{"u": "lost its network holder while the daemon was down"}, start: 1, next: now},
	}, {
		name: "lost its network (the engine says the pod is broken): dead",
		svc:  &Service{rev: 1, spec: withProxy, instances: []*Instance{grouped("g", proxy)}},
		seen: sighting{at: listed, pods: pods(runtime.Pod{ID: "p-g", State: runtime.PodRunning, Broken: "its network holder is gone", Containers: []runtime.ContainerStatus{mainUp, up("proxy")}})},
		want: want{dead: map[string]string{"g": "lost its network (its network holder is gone)"}, start: 1, next: now},
	}, {
		name: "essential sidecar exited, pod still up: dead, naming it and its code",
		svc:  &Service{rev: 1, spec: withProxy, instances: []*Instance{grouped("g", proxy)}},
		seen: sighting{at: listed, pods: pods(pod("g", runtime.PodRunning, mainUp, exited("proxy", 2, old)))},
		want: want{dead: map[string]string{"g": "lost its essential sidecar proxy, which exited with code 2"}, start: 1, next: now},
	}, {
		name: "the engine stopped the pod for its essential sidecar: the sidecar, which ended first, is named",
		svc:  &Service{rev: 1, spec: withProxy, instances: []*Instance{grouped("g", proxy)}},
		seen: sighting{at: listed, pods: pods(pod("g", runtime.PodExited, exited("web", 143, old.Add(time.Second)), exited("proxy", 2, old)))},
		want: want{dead: map[string]string{"g": "lost its essential sidecar proxy, which exited with code 2"}, start: 1, next: now},
	}, {
		name: "the service's own container ended first: its exit is the reason",
		svc:  &Service{rev: 1, spec: withProxy, instances: []*Instance{grouped("g", proxy)}},
		seen: sighting{at: listed, pods: pods(pod("g", runtime.PodExited, exited("web", 3, old), exited("proxy", 143, old.Add(time.Second))))},
		want: want{dead: map[string]string{"g": "exited with code 3"}, start: 1, next: now},
	}, {
		name: "killed for memory",
		svc:  &Service{rev: 1, spec: &spec.Service{Name: "web", Instances: 1}, instances: []*Instance{plain("a")}},
		seen: sighting{at: listed, pods: pods(pod("a", runtime.PodExited, runtime.ContainerStatus{Name: "web", Main: true, ExitCode: 137, OOMKilled: true}))},
		want: want{dead: map[string]string{"a": "was killed: out of memory (raise memory in berth.yaml)"}, start: 1, next: now},
	}, {
		name: "non-essential sidecar exited: restarted alone, the instance lives",
		svc:  &Service{rev: 1, spec: &spec.Service{Instances: 1}, instances: []*Instance{grouped("g", logShipper(old, 0))}},
		seen: sighting{at: listed, pods: pods(pod("g", runtime.PodRunning, mainUp, exited("logs", 1, old)))},
		want: want{restarts: map[string]string{"logs": "exited with code 1"}},
	}, {
		name: "non-essential sidecar missing from the pod: restarted alone",
		svc:  &Service{rev: 1, spec: &spec.Service{Instances: 1}, instances: []*Instance{grouped("g", logShipper(old, 0))}},
		seen: sighting{at: listed, pods: pods(pod("g", runtime.PodRunning, mainUp))},
		want: want{restarts: map[string]string{"logs": "disappeared from the engine"}},
	}, {
		name: "non-essential sidecar already restarting: left to its restart",
		svc: &Service{rev: 1, spec: &spec.Service{Instances: 1}, instances: []*Instance{grouped("g", &member{
			name: "logs", startedAt: old, restarting: true,
		})}},
		seen: sighting{at: listed, pods: pods(pod("g", runtime.PodRunning, mainUp, exited("logs", 1, old)))},
	}, {
		name: "init container exited: it ran once, nothing to do",
		svc:  &Service{rev: 1, spec: &spec.Service{Instances: 1}, instances: []*Instance{grouped("g", migrate)}},
		seen: sighting{at: listed, pods: pods(pod("g", runtime.PodRunning, mainUp, exited("migrate", 0, old)))},
	}, {
		name: "a sidecar that ran for crashReset forgets its restarts",
		svc:  &Service{rev: 1, spec: &spec.Service{Instances: 1}, instances: []*Instance{grouped("g", logShipper(now.Add(-crashReset-time.Second), 3))}},
		seen: sighting{at: listed, pods: pods(pod("g", runtime.PodRunning, mainUp, up("logs")))},
		want: want{settled: []string{"logs"}},
	}, {
		name: "crash loop: the backoff holds the replacement back and arms a timer",
		svc:  &Service{rev: 1, spec: &spec.Service{Instances: 1}, crashes: 3, lastCrash: now.Add(-time.Second)},
		seen: sighting{at: listed, pods: pods()},
		want: want{armIn: backoff(3) - time.Second, next: now.Add(-time.Second).Add(backoff(3))},
	}, {
		name: "crash loop with a timer armed already: wait, no second timer",
		svc:  &Service{rev: 1, spec: &spec.Service{Instances: 1}, crashes: 3, lastCrash: now.Add(-time.Second), restartArmed: true},
		seen: sighting{at: listed, pods: pods()},
		want: want{next: now.Add(-time.Second).Add(backoff(3))},
	}, {
		name: "crash loop: a new death counts and restarts the backoff",
		svc:  &Service{rev: 1, spec: &spec.Service{Instances: 2}, crashes: 1, lastCrash: now.Add(-time.Hour), instances: []*Instance{plain("a"), plain("b")}},
		seen: sighting{at: listed, pods: running("a")},
		want: want{dead: map[string]string{"b": "disappeared from the engine"}, armIn: backoff(2), next: now.Add(backoff(2))},
	}, {
		name: "healthy for crashReset at the desired count: crashes forgotten",
		svc:  &Service{rev: 1, spec: &spec.Service{Instances: 1}, crashes: 4, lastCrash: now.Add(-crashReset - time.Second), instances: []*Instance{plain("a")}},
		seen: sighting{at: listed, pods: running("a")},
		want: want{forget: true},
	}, {
		name: "busy: the dead are taken out, the operation owns the count",
		svc:  &Service{rev: 1, busy: "deploy", spec: &spec.Service{Instances: 2}, instances: []*Instance{plain("a"), plain("b")}},
		seen: sighting{at: listed, pods: running("a")},
		want: want{dead: map[string]string{"b": "disappeared from the engine"}},
	}, {
		name: "replacements being started count",
		svc:  &Service{rev: 1, spec: &spec.Service{Instances: 3}, pending: 1, instances: []*Instance{plain("a")}},
		seen: sighting{at: listed, pods: running("a")},
		want: want{start: 1, next: time.Time{}},
	}, {
		name: "berth scale overrides the spec's count",
		svc:  &Service{rev: 1, desired: 3, spec: &spec.Service{Instances: 1}, instances: []*Instance{plain("a")}},
		seen: sighting{at: listed, pods: running("a")},
		want: want{start: 2},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := planReconcile(tc.svc, tc.seen, now)
			got := want{forget: p.forgetCrashes, start: p.start, armIn: p.armIn, next: p.nextRestart}
			for _, d := range p.dead {
				if got.dead == nil {
					got.dead = map[string]string{}
				}
				got.dead[d.in.id] = d.why
			}
			for _, r := range p.restarts {
				if got.restarts == nil {
					got.restarts = map[string]string{}
				}
				got.restarts[r.m.name] = r.why
			}
			for _, m := range p.settled {
				got.settled = append(got.settled, m.name)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("plan:\n got  %+v\n want %+v", got, tc.want)
			}
		})
	}
}
