package docker

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// Out-of-memory kills, as the engine learns them.
//
// Docker marks a container killed by the kernel's OOM killer (its
// State.OOMKilled) from an event of containerd's that can come after the
// exit, and then, on Docker 20.10 at least, may never mark it at all
// (TestResourceLimitsAndOOM read 137 and OOMKilled false in two full test
// runs of three here, with 3 s of inspects after the exit). The "oom" event
// it logs for the container came every time. So a 137 under a memory limit
// with the flag unset is looked up in the engine's events, and a kill found
// there is remembered for that run of the container (its ID and start), for
// every later read of it.

// oomSettle bounds how long settleOOM waits for the engine's oom event.
const oomSettle = 3 * time.Second

// oomMarks are the runs of containers learned killed out of memory that
// Docker's State.OOMKilled may not say, by runKey, the oldest dropped past
// oomMarksMax. A run started since has a key of its own.
var oomMarks struct {
	mu    sync.Mutex
	keys  map[string]bool
	order []string
}

const oomMarksMax = 1024

// runKey names one run of container id: IDs are unique to the Docker
// Engine, and a container started again has another StartedAt.
func runKey(id string, s *container.State) string { return id + "@" + s.StartedAt }

func markOOM(key string) {
	oomMarks.mu.Lock()
	defer oomMarks.mu.Unlock()
	if oomMarks.keys == nil {
		oomMarks.keys = map[string]bool{}
	}
	if oomMarks.keys[key] {
		return
	}
	oomMarks.keys[key] = true
	oomMarks.order = append(oomMarks.order, key)
	if len(oomMarks.order) > oomMarksMax {
		delete(oomMarks.keys, oomMarks.order[0])
		oomMarks.order = oomMarks.order[1:]
	}
}

// oomKilledRead reports whether container id, read with state s, was
// killed out of memory: as Docker says, or as the engine learned.
func oomKilledRead(id string, s *container.State) bool {
	if s.OOMKilled {
		return true
	}
	if s.ExitCode != 137 {
		return false
	}
	oomMarks.mu.Lock()
	defer oomMarks.mu.Unlock()
	return oomMarks.keys[runKey(id, s)]
}

// settleOOM reports whether container id, which exited with 137 under a
// memory limit, was killed out of memory, reading it first.
func (e *Engine) settleOOM(ctx context.Context, id string) bool {
	c, err := e.cli.ContainerInspect(ctx, id)
	if err != nil || c.State == nil {
		return false
	}
	return e.oomAfterExit(ctx, id, c.State)
}

// oomAfterExit reports whether container id, read after its exit with state
// s, was killed out of memory: as oomKilledRead says, or, for a 137 under a
// memory limit, as the engine's "oom" event for the container does, waited
// for up to oomSettle. A SIGKILL that was not the OOM killer's costs that
// wait. The caller checks the limit.
func (e *Engine) oomAfterExit(ctx context.Context, id string, s *container.State) bool {
	if oomKilledRead(id, s) {
		return true
	}
	if s.ExitCode != 137 {
		return false
	}
	since := time.Now().Add(-time.Minute)
	if t := parseTime(s.StartedAt); !t.IsZero() {
		since = t.Add(-time.Second)
	}
	if e.oomEvent(ctx, id, since, oomSettle) {
		markOOM(runKey(id, s))
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
