package fake

import (
	"context"
	"maps"
	"sync"

	"github.com/berth-dev/berth/internal/runtime"
)

// subscriber is one Events call: events queue without bound, so the world
// never waits on a slow reader.
type subscriber struct {
	owner runtime.Owner

	mu     sync.Mutex
	queue  []runtime.PodEvent
	wake   chan struct{} // buffered 1
	ended  bool
	endErr error
}

func (s *subscriber) push(ev runtime.PodEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.queue = append(s.queue, ev)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// end ends the subscription once the queued events are delivered, with
// err (nil: none) on the error channel.
func (s *subscriber) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.ended, s.endErr = true, err
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Events streams the lifecycle events ("start", "die", "oom") of the
// owner's pods until ctx ends, the engine closes or BreakEvents.
func (e *Engine) Events(ctx context.Context) (<-chan runtime.PodEvent, <-chan error) {
	out := make(chan runtime.PodEvent)
	errc := make(chan error, 1)
	if err := e.w.fail(opEvents); err != nil {
		errc <- err
		close(out)
		return out, errc
	}
	s := &subscriber{owner: e.Owner(), wake: make(chan struct{}, 1)}
	w := e.w
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		errc <- errClosed
		close(out)
		return out, errc
	}
	w.subs[s] = struct{}{}
	w.wg.Add(1)
	w.mu.Unlock()
	go func() {
		defer w.wg.Done()
		defer close(out)
		defer func() {
			w.mu.Lock()
			delete(w.subs, s)
			w.mu.Unlock()
		}()
		for {
			s.mu.Lock()
			q := s.queue
			s.queue = nil
			ended, endErr := s.ended, s.endErr
			s.mu.Unlock()
			for _, ev := range q {
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				case <-w.done:
					return
				}
			}
			if len(q) > 0 {
				continue
			}
			if ended {
				if endErr != nil {
					errc <- endErr
				}
				return
			}
			select {
			case <-s.wake:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, errc
}

// emit sends an event of a pod's container to every subscriber whose
// owner owns the pod. The caller holds w.mu.
func (w *world) emit(p *pod, c *container, action string, code int) {
	labels := maps.Clone(p.labels)
	maps.Copy(labels, c.spec.Labels)
	ev := runtime.PodEvent{PodID: p.id, Container: c.name, Action: action, Labels: labels, ExitCode: code}
	for s := range w.subs {
		if s.owner.Owns(p.labels) {
			s.push(ev)
		}
	}
}
