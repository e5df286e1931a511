package docker

// Events: what the engine reports of the owner's pods' containers
// (runtime.PodEngine.Events). The supervisor (pod_supervise.go) follows
// the engine's die events itself, for every pod of the owner, whoever
// listens here.

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/berth-dev/berth/internal/runtime"
)

// eventAttributes are the attributes the engine adds to a container event
// besides the container's labels.
var eventAttributes = map[string]bool{
	"image": true, "name": true, "exitCode": true, "signal": true,
	"execID": true, "execDuration": true,
}

// Events streams start, die and oom events of the owner's pods' containers
// until ctx ends, then closes the event channel. The holder's are not
// reported: it is no container of the pod (its loss shows as Pod.Broken).
// An engine error is sent on the error channel (buffered, at most one) and
// closes the event channel; the caller subscribes again and lists the
// pods, since the events in between are lost.
func (e *Engine) Events(ctx context.Context) (<-chan runtime.PodEvent, <-chan error) {
	e.supervise()
	args := filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("event", string(events.ActionStart)),
		filters.Arg("event", string(events.ActionDie)),
		filters.Arg("event", string(events.ActionOOM)),
	)
	e.negotiate(ctx)
	msgs, errs := e.cli.Events(ctx, events.ListOptions{Filters: args})
	out := make(chan runtime.PodEvent)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		// The main containers of the pods made before pods whose
		// sidecars had events, by legacyKey (pod_legacy.go).
		legacyMains := map[string]string{}
		for {
			select {
			case m := <-msgs:
				ev, ok := podEvent(m)
				if !ok || !e.owner.Owns(ev.Labels) {
					continue
				}
				if ev.PodID == "" {
					k := legacyKey(ev.Labels)
					if legacyMains[k] == "" {
						id, err := e.legacyMainOf(ctx, ev.Labels)
						if err != nil || id == "" {
							continue // gone: no pod's
						}
						legacyMains[k] = id
					}
					ev.PodID = legacyMains[k]
				}
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			case err := <-errs:
				if ctx.Err() == nil {
					errc <- fmt.Errorf("docker events: %w", err)
				}
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, errc
}

// podEvent reads a container event as a pod's (false: no pod's container).
// A sidecar's of a pod made before pods has no PodID: its labels do not
// say it (pod_legacy.go).
func podEvent(m events.Message) (runtime.PodEvent, bool) {
	a := m.Actor.Attributes
	labels := map[string]string{}
	for k, v := range a {
		if !eventAttributes[k] {
			labels[k] = v
		}
	}
	ev := runtime.PodEvent{Action: string(m.Action), Labels: publicLabels(labels)}
	if code, err := strconv.Atoi(a["exitCode"]); err == nil {
		ev.ExitCode = code
	}
	switch {
	case a[labelPodLayout] != "":
		var l podLayout
		if err := json.Unmarshal([]byte(a[labelPodLayout]), &l); err != nil {
			return ev, false
		}
		ev.PodID, ev.Container = m.Actor.ID, l.Main
	case a[labelPodID] != "":
		ev.PodID, ev.Container = a[labelPodID], a[runtime.LabelSidecar]
		// The pod's labels: a sidecar's say "sidecar" and its name.
		delete(ev.Labels, runtime.LabelSidecar)
		if role, ok := a[labelPodRole]; ok {
			ev.Labels[runtime.LabelRole] = role
		} else {
			delete(ev.Labels, runtime.LabelRole)
		}
	case legacyMain(a):
		ev.PodID, ev.Container = m.Actor.ID, a[runtime.LabelService]
	case legacyMember(a) && a[runtime.LabelSidecar] != holderName:
		ev.Container = a[runtime.LabelSidecar]
		delete(ev.Labels, runtime.LabelSidecar)
		ev.Labels[runtime.LabelRole] = string(runtime.RoleInstance)
	default:
		return ev, false
	}
	return ev, true
}

// negotiate has the client negotiate its API version, unless it did: its
// Events reads the version without the lock the other calls take, so a
// first call racing another would read it while that one writes it.
func (e *Engine) negotiate(ctx context.Context) {
	_, _ = e.hostPlatform(ctx)
}
