package tasks

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/fake"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/store"
)

// The tasks' tests run on the fake engine (internal/runtime/fake) and a
// real store: the task lifecycle without a Docker Engine. The real-engine
// smoke set is in package controlplane's task_test.go.

const testApp = "shop"

const testSpec = `app: shop
services:
  web:
    image: ` + fake.TestApp + `
    port: 8080
    health: {path: /healthz}
  worker:
    image: ` + fake.TestApp + `
    command: ["/testapp", "sleep", "1h"]
    secrets: [TOKEN]
  idle:
    image: ` + fake.TestApp + `
    command: ["/testapp", "sleep", "1h"]
tasks:
  hello: {service: web, command: ["/testapp", "echo", "named"]}
`

// world is an engine and a store with the app shop deployed (web and
// worker at revision 1, idle never deployed), and what the Runners made
// on them recorded.
type world struct {
	t   *testing.T
	eng *fake.Engine
	st  *store.Store
	sp  *spec.Spec

	mu     sync.Mutex
	events []string
	counts map[string]int // by outcome
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, eng: fake.New(), counts: map[string]int{}}
	t.Cleanup(func() { require.NoError(t, w.eng.Close()) })
	st, err := store.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	w.st = st
	w.sp, err = spec.Parse("berth.yaml", []byte(testSpec))
	require.NoError(t, err)
	ctx := context.Background()
	now := time.Now().UTC()
	require.NoError(t, st.PutApp(ctx, store.App{Name: testApp, SpecYAML: testSpec, SpecFile: "berth.yaml", CreatedAt: now, UpdatedAt: now}))
	for _, svc := range []string{"web", "worker"} {
		require.NoError(t, st.PutService(ctx, store.Service{App: testApp, Name: svc, CurrentRevision: 1, UpdatedAt: now}))
	}
	require.NoError(t, w.eng.EnsureNetwork(ctx, "berth-"+testApp, map[string]string{runtime.LabelApp: testApp}))
	return w
}

// runner is a Runner on the world, as one daemon's: stop ends its
// lifetime and waits for its goroutines (the tasks go on).
func (w *world) runner() (r *Runner, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	r = New(Config{
		Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Store: w.st,
		Pods:  w.eng,
		Revision: func(ctx context.Context, app, service string, n int) (Revision, error) {
			return w.revision(service, n), nil
		},
		Container: func(app string, rev Revision, secrets map[string]string) runtime.ContainerSpec {
			env := maps.Clone(rev.Spec.Env)
			if env == nil {
				env = map[string]string{}
			}
			for _, k := range rev.Spec.Secrets {
				if v, ok := secrets[k]; ok {
					env[k] = v
				}
			}
			return runtime.ContainerSpec{Name: "web", Image: rev.Image, Command: rev.Spec.Command, Env: env,
				Network: "berth-" + app, Aliases: []string{rev.Spec.Name}, Port: rev.Spec.Port, StopGrace: spec.DefaultStopGrace}
		},
		Network:       func(app string) string { return "berth-" + app },
		InternalNames: func(string) []string { return nil },
		Closing:       func(string) bool { return false },
		Event: func(app, service, kind, msg string) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.events = append(w.events, kind+": "+msg)
		},
		Count: func(app, service, outcome string) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.counts[outcome]++
		},
		Ctx:         ctx,
		BG:          &bg,
		CronSeconds: true,
	})
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			bg.Wait()
		}
	}
	w.t.Cleanup(stop)
	return r, stop
}

func (w *world) revision(service string, n int) Revision {
	return Revision{Number: n, Spec: w.sp.Services[service], Image: fake.TestApp}
}

// spec is an ad-hoc command on web's revision 1.
func (w *world) spec(command ...string) Spec {
	return Spec{app: testApp, service: "web", kind: kindOneOff, command: command, rev: w.revision("web", 1)}
}

func (w *world) recorded(id string) store.Task {
	w.t.Helper()
	rec, err := w.st.GetTask(context.Background(), id)
	require.NoError(w.t, err)
	return rec
}

func (w *world) eventsSaid() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.events...)
}

func (w *world) counted() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.counts)
}

// taskPods are the names of the task pods the engine has.
func (w *world) taskPods() []string {
	w.t.Helper()
	pods, err := w.eng.ListPods(context.Background(), map[string]string{runtime.LabelRole: string(runtime.RoleTask)})
	require.NoError(w.t, err)
	var names []string
	for _, p := range pods {
		names = append(names, p.Name)
	}
	sort.Strings(names)
	return names
}

// wait waits for run's end, at most a few seconds.
func wait(t *testing.T, run *Run) store.Task {
	t.Helper()
	select {
	case <-run.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("task %s did not end", run.id)
	}
	return run.Record()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
