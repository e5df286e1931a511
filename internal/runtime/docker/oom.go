package docker

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// Out-of-memory kills, as the engine learns them.
//
// Docker marks a container killed by the kernel's OOM killer (its
// State.OOMKilled) from an event of containerd's that can come after the
// exit, and then, on Docker 20.10 at least, may never mark it at all
// (TestResourceLimitsAndOOM read 137 and OOMKilled false in two full test
// runs of three here, with 3 s of inspects after the exit). The "oom"
// event it logs for the container came every time. So a 137 under a memory limit with the flag
// unset is looked up in the engine's events, and a kill found there is
// remembered by container ID, for every later read of the container.

// oomSettle bounds how long settleOOM waits for the engine's oom event.
const oomSettle = 3 * time.Second

// oomMarks are containers learned killed out of memory that Docker's
// State.OOMKilled may not say, by ID (IDs are unique to the Docker Engine),
// the oldest dropped past oomMarksMax.
var oomMarks struct {
	mu    sync.Mutex
	ids   map[string]bool
	order []string
}

const oomMarksMax = 1024

func markOOM(id string) {
	oomMarks.mu.Lock()
	defer oomMarks.mu.Unlock()
	if oomMarks.ids == nil {
		oomMarks.ids = map[string]bool{}
	}
	if oomMarks.ids[id] {
		return
	}
	oomMarks.ids[id] = true
	oomMarks.order = append(oomMarks.order, id)
	if len(oomMarks.order) > oomMarksMax {
		delete(oomMarks.ids, oomMarks.order[0])
		oomMarks.order = oomMarks.order[1:]
	}
}

// clearOOM forgets a kill of container id, which runs again.
func clearOOM(id string) {
	oomMarks.mu.Lock()
	defer oomMarks.mu.Unlock()
	delete(oomMarks.ids, id) // its place in order ages out with the rest
}

// oomMarked reports whether container id was learned killed out of memory.
func oomMarked(id string) bool {
	oomMarks.mu.Lock()
	defer oomMarks.mu.Unlock()
	return oomMarks.ids[id]
}

// settleOOM reports whether container id, which exited with 137 under a
// memory limit, was killed out of memory: as Docker's State.OOMKilled says,
// or as its "oom" event for the container does, waited for up to
// oomSettle. A SIGKILL that was not the OOM killer's costs that wait.
func (e *Engine) settleOOM(ctx context.Context, id string) bool {
	c, err := e.cli.ContainerInspect(ctx, id)
	if err != nil || c.State == nil {
		return false
	}
	if c.State.OOMKilled || oomMarked(id) {
		return true
	}
	since := time.Now().Add(-time.Minute)
	if t := parseTime(c.State.StartedAt); !t.IsZero() {
		since = t.Add(-time.Second)
	}
	if e.oomEvent(ctx, id, since, oomSettle) {
		markOOM(id)
		return true
	}
	return false
}

// oomEvent reports whether the engine logged an "oom" event for container
// id since since, looking up to wait ahead for one still to come.
func (e *Engine) oomEvent(ctx context.Context, id string, since time.Time, wait time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, wait+time.Second)
	defer cancel()
	msgs, errs := e.cli.Events(ctx, events.ListOptions{
		Since: strconv.FormatInt(since.Unix(), 10),
		Until: strconv.FormatInt(time.Now().Add(wait).Unix(), 10),
		Filters: filters.NewArgs(
			filters.Arg("type", string(events.ContainerEventType)),
			filters.Arg("container", id),
			filters.Arg("event", string(events.ActionOOM)),
		),
	})
	for {
		select {
		case m := <-msgs:
			if m.Action == events.ActionOOM {
				return true
			}
		case <-errs: // the end of the window (io.EOF), or the engine's error
			return false
		case <-ctx.Done():
			return false
		}
	}
}
