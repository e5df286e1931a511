package fleet

// What a revision runs, as the fleet starts it: the stored revision read
// back, and the service's own container of its pods (the tasks' pods use
// it too).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/berth-dev/berth/internal/controlplane/apierr"
	"github.com/berth-dev/berth/internal/controlplane/tasks"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/store"
)

// Revision is what a revision of a service runs: its number, its spec
// (images pinned by ID) and its image's ID.
type Revision struct {
	Number int
	Spec   *spec.Service
	Image  string
}

// ContainerSpec is the service's own container in a pod of rev (an
// instance or a task): its image, command, env with the secrets it names,
// and limits. Where the pod runs (network, names, port, labels) is the
// PodSpec's.
func ContainerSpec(rev Revision, secrets map[string]string) runtime.ContainerSpec {
	sp := rev.Spec
	env := map[string]string{}
	if sp.Port != 0 {
		// App Runner and Heroku tell the app its port; so does berth.
		env["PORT"] = strconv.Itoa(sp.Port)
	}
	return runtime.ContainerSpec{
		Name:      sp.Name,
		Image:     rev.Image,
		Command:   sp.Command,
		Env:       withSecrets(env, sp.Env, sp.Secrets, secrets),
		CPU:       sp.CPU,
		Memory:    sp.Memory,
		PidsLimit: sp.Pids,
		StopGrace: spec.DefaultStopGrace,
	}
}

// withSecrets adds env and the named secrets' values to into.
func withSecrets(into, env map[string]string, names []string, secrets map[string]string) map[string]string {
	for k, v := range env {
		into[k] = v
	}
	for _, k := range names {
		if v, ok := secrets[k]; ok {
			into[k] = v
		}
	}
	return into
}

// LoadRevision reads stored revision n of app/name back into what runs.
func (f *Fleet) LoadRevision(ctx context.Context, app, name string, n int) (Revision, store.Revision, error) {
	r, err := f.store.GetRevision(ctx, app, name, n)
	if errors.Is(err, store.ErrNotFound) {
		return Revision{}, r, fmt.Errorf("%w: %s has no revision %d; see \"berth revisions %s\"", apierr.ErrNotFound, name, n, name)
	}
	if err != nil {
		return Revision{}, r, err
	}
	var sp spec.Service
	if err := json.Unmarshal(r.Spec, &sp); err != nil {
		return Revision{}, r, fmt.Errorf("revision %d of %s is unreadable: %w", n, name, err)
	}
	return Revision{Number: n, Spec: &sp, Image: r.ImageID}, r, nil
}

// Task is the revision as the tasks' Runner takes it.
func (r Revision) Task() tasks.Revision {
	return tasks.Revision{Number: r.Number, Spec: r.Spec, Image: r.Image}
}
