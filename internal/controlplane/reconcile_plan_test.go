package controlplane

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

	up := func(id string) runtime.Container { return runtime.Container{ID: id, Running: true} }
	exited := func(id string, code int) runtime.Container { return runtime.Container{ID: id, ExitCode: code} }
	members := func(cs ...runtime.Container) map[string]runtime.Container {
		out := map[string]runtime.Container{}
		for _, c := range cs {
			out[c.ID] = c
		}
		return out
	}
	// grouped is an instance with a holder h-ID and the given sidecars.
	grouped := func(id string, ms ...*member) *instance {
		return &instance{id: id, containerID: "c-" + id, state: stateHealthy, startedAt: old, group: &group{holderID: "h-" + id, members: ms}}
	}
	plain := func(id string) *instance {
		return &instance{id: id, containerID: "c-" + id, state: stateHealthy, startedAt: old}
	}
	logShipper := func(started time.Time, restarts int) *member {
		return &member{name: "logs", containerID: "s-logs", startedAt: started, restarts: restarts}
	}
	proxy := &member{name: "proxy", containerID: "s-proxy", essential: true, startedAt: old}
	migrate := &member{name: "migrate", containerID: "s-migrate", once: true, startedAt: old}

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
		svc  *service
		seen sighting
		want want
	}{{
		name: "no revision yet: nothing",
		svc:  &service{},
		seen: sighting{at: listed, running: map[string]bool{}},
	}, {
		name: "paused: nothing, not even a dead instance",
		svc:  &service{rev: 1, paused: true, instances: []*instance{plain("a")}},
		seen: sighting{at: listed, running: map[string]bool{}},
	}, {
		name: "all running at the desired count: nothing",
		svc:  &service{rev: 1, spec: &spec.Service{Instances: 2}, instances: []*instance{plain("a"), plain("b")}},
		seen: sighting{at: listed, running: map[string]bool{"c-a": true, "c-b": true}},
	}, {
		name: "a main container that stopped: dead, its first crash replaced at once",
		svc:  &service{rev: 1, spec: &spec.Service{Instances: 2}, instances: []*instance{plain("a"), plain("b")}},
		seen: sighting{at: listed, running: map[string]bool{"c-a": true}},
		want: want{dead: map[string]string{"b": ""}, start: 1, next: now},
	}, {
		name: "started after the listing: not in it, left be",
		svc:  &service{rev: 1, spec: &spec.Service{Instances: 1}, instances: []*instance{{id: "n", containerID: "c-n", startedAt: now}}},
		seen: sighting{at: listed, running: map[string]bool{}},
	}, {
		name: "unhealthy: dead, with the reason adopt gave it",
		svc:  &service{rev: 1, spec: &spec.Service{Instances: 1}, instances: []*instance{{id: "u", containerID: "c-u", state: stateUnhealthy, startedAt: old, crashWhy: "lost its network holder while the daemon was down"}}},
		seen: sighting{at: listed, running: map[string]bool{"c-u": true}},
		want: want{dead: map[string]string{"u": "lost its network holder while the daemon was down"}, start: 1, next: now},
	}, {
		name: "holder gone: dead",
		svc:  &service{rev: 1, spec: &spec.Service{Instances: 1}, instances: []*instance{grouped("g", proxy)}},
		seen: sighting{at: listed, running: map[string]bool{"c-g": true}, members: members(up("s-proxy")), membersAt: listed},
		want: want{dead: map[string]string{"g": "lost its network holder (disappeared from the engine)"}, start: 1, next: now},
	}, {
		name: "essential sidecar exited: dead, naming it and its code",
		svc:  &service{rev: 1, spec: &spec.Service{Instances: 1}, instances: []*instance{grouped("g", proxy)}},
		seen: sighting{at: listed, running: map[string]bool{"c-g": true}, members: members(up("h-g"), exited("s-proxy", 2)), membersAt: listed},
		want: want{dead: map[string]string{"g": "lost its essential sidecar proxy, which exited with code 2"}, start: 1, next: now},
	}, {
		name: "non-essential sidecar exited: restarted alone, the instance lives",
		svc:  &service{rev: 1, spec: &spec.Service{Instances: 1}, instances: []*instance{grouped("g", logShipper(old, 0))}},
		seen: sighting{at: listed, running: map[string]bool{"c-g": true}, members: members(up("h-g"), exited("s-logs", 1)), membersAt: listed},
		want: want{restarts: map[string]string{"logs": "exited with code 1"}},
	}, {
		name: "non-essential sidecar already restarting: left to its restart",
		svc: &service{rev: 1, spec: &spec.Service{Instances: 1}, instances: []*instance{grouped("g", &member{
			name: "logs", containerID: "s-logs", startedAt: old, restarting: true,
		})}},
		seen: sighting{at: listed, running: map[string]bool{"c-g": true}, members: members(up("h-g"), exited("s-logs", 1)), membersAt: listed},
	}, {
		name: "init container exited: it ran once, nothing to do",
		svc:  &service{rev: 1, spec: &spec.Service{Instances: 1}, instances: []*instance{grouped("g", migrate)}},
		seen: sighting{at: listed, running: map[string]bool{"c-g": true}, members: members(up("h-g"), exited("s-migrate", 0)), membersAt: listed},
	}, {
		name: "sidecar listing failed: sidecars not judged",
		svc:  &service{rev: 1, spec: &spec.Service{Instances: 1}, instances: []*instance{grouped("g", proxy)}},
		seen: sighting{at: listed, running: map[string]bool{"c-g": true}, members: nil, membersAt: listed},
	}, {
		name: "a sidecar that ran for crashReset forgets its restarts",
		svc:  &service{rev: 1, spec: &spec.Service{Instances: 1}, instances: []*instance{grouped("g", logShipper(now.Add(-crashReset-time.Second), 3))}},
		seen: sighting{at: listed, running: map[string]bool{"c-g": true}, members: members(up("h-g"), up("s-logs")), membersAt: listed},
		want: want{settled: []string{"logs"}},
	}, {
		name: "crash loop: the backoff holds the replacement back and arms a timer",
		svc:  &service{rev: 1, spec: &spec.Service{Instances: 1}, crashes: 3, lastCrash: now.Add(-time.Second)},
		seen: sighting{at: listed, running: map[string]bool{}},
		want: want{armIn: backoff(3) - time.Second, next: now.Add(-time.Second).Add(backoff(3))},
	}, {
		name: "crash loop with a timer armed already: wait, no second timer",
		svc:  &service{rev: 1, spec: &spec.Service{Instances: 1}, crashes: 3, lastCrash: now.Add(-time.Second), restartArmed: true},
		seen: sighting{at: listed, running: map[string]bool{}},
		want: want{next: now.Add(-time.Second).Add(backoff(3))},
	}, {
		name: "crash loop: a new death counts and restarts the backoff",
		svc:  &service{rev: 1, spec: &spec.Service{Instances: 2}, crashes: 1, lastCrash: now.Add(-time.Hour), instances: []*instance{plain("a"), plain("b")}},
		seen: sighting{at: listed, running: map[string]bool{"c-a": true}},
		want: want{dead: map[string]string{"b": ""}, armIn: backoff(2), next: now.Add(backoff(2))},
	}, {
		name: "healthy for crashReset at the desired count: crashes forgotten",
		svc:  &service{rev: 1, spec: &spec.Service{Instances: 1}, crashes: 4, lastCrash: now.Add(-crashReset - time.Second), instances: []*instance{plain("a")}},
		seen: sighting{at: listed, running: map[string]bool{"c-a": true}},
		want: want{forget: true},
	}, {
		name: "busy: the dead are taken out, the operation owns the count",
		svc:  &service{rev: 1, busy: "deploy", spec: &spec.Service{Instances: 2}, instances: []*instance{plain("a"), plain("b")}},
		seen: sighting{at: listed, running: map[string]bool{"c-a": true}},
		want: want{dead: map[string]string{"b": ""}},
	}, {
		name: "replacements being started count",
		svc:  &service{rev: 1, spec: &spec.Service{Instances: 3}, pending: 1, instances: []*instance{plain("a")}},
		seen: sighting{at: listed, running: map[string]bool{"c-a": true}},
		want: want{start: 1, next: time.Time{}},
	}, {
		name: "berth scale overrides the spec's count",
		svc:  &service{rev: 1, desired: 3, spec: &spec.Service{Instances: 1}, instances: []*instance{plain("a")}},
		seen: sighting{at: listed, running: map[string]bool{"c-a": true}},
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
