package docker

import (
	"context"
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

// Events streams start, die and oom events of berth's containers (those
// labelled berth.app) until ctx ends, then closes the event channel. An
// engine error is sent on the error channel (buffered, at most one) and also
// closes the event channel; the caller re-subscribes and re-lists, since
// events in between are lost.
func (e *Engine) Events(ctx context.Context) (<-chan runtime.Event, <-chan error) {
	args := filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("label", runtime.LabelApp),
		filters.Arg("event", string(events.ActionStart)),
		filters.Arg("event", string(events.ActionDie)),
		filters.Arg("event", string(events.ActionOOM)),
	)
	e.negotiate(ctx)
	msgs, errs := e.cli.Events(ctx, events.ListOptions{Filters: args})
	out := make(chan runtime.Event)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		for {
			select {
			case m := <-msgs:
				ev := toEvent(m)
				if !e.owner.Owns(ev.Labels) {
					continue // another berth server's (owner.go)
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

func toEvent(m events.Message) runtime.Event {
	ev := runtime.Event{ContainerID: m.Actor.ID, Action: string(m.Action), Labels: map[string]string{}}
	for k, v := range m.Actor.Attributes {
		if !eventAttributes[k] {
			ev.Labels[k] = v
		}
	}
	if code, err := strconv.Atoi(m.Actor.Attributes["exitCode"]); err == nil {
		ev.ExitCode = code
	}
	return ev
}

// negotiate has the client negotiate its API version, unless it did: its
// Events reads the version without the lock the other calls take, so a
// first call racing another would read it while that one writes it.
func (e *Engine) negotiate(ctx context.Context) {
	_, _ = e.hostPlatform(ctx)
}
