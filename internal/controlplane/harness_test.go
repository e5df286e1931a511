package controlplane_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/controlplane"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/docker"
	"github.com/berth-dev/berth/internal/runtime/fake"
	"github.com/berth-dev/berth/internal/testutil"
)

// daemon is a real berth server running in-process, on a private socket and
// a loopback edge port, with its pods on the real Docker Engine
// (startDaemon) or on the in-memory fake engine (startFakeDaemon).
//
// A test runs on the fake unless what it checks needs a real container
// (Docker networking and /etc/hosts, a shell in an image, cgroup limits and
// freezes, a real out-of-memory kill, labels on a shared engine, image
// builds and platforms); each feature keeps a test on Docker.
type daemon struct {
	t       testing.TB
	dataDir string
	addrs   controlplane.Addrs
	client  *client.Client
	logs    *testutil.SyncBuffer
	stop    func()
	// fake is the engine the daemon runs on when it is the fake, nil on
	// the Docker Engine.
	fake *fake.Engine
}

// startDaemon starts a daemon on the Docker Engine on dataDir ("" = a
// fresh temp dir); opts change its Config.
func startDaemon(t testing.TB, dataDir string, opts ...func(*controlplane.Config)) *daemon {
	t.Helper()
	testutil.RequireDocker(t)
	return start(t, dataDir, nil, opts...)
}

// startFakeDaemon starts a daemon on a new fake engine, closed when the
// test ends; it needs no Docker Engine.
func startFakeDaemon(t testing.TB, dataDir string, opts ...func(*controlplane.Config)) *daemon {
	t.Helper()
	return startOnFake(t, newFake(t), dataDir, opts...)
}

// newFake returns a new fake engine, closed when the test ends, that runs
// the test app by its ref and by its ID: a deploy pins a revision to the
// ID ImageID returns, and creates its pods from that, as Docker takes
// either. (The fake knows only the refs added to it.)
func newFake(t testing.TB) *fake.Engine {
	t.Helper()
	eng := fake.New()
	t.Cleanup(func() { eng.Close() })
	id, err := eng.ImageID(context.Background(), fake.TestApp)
	require.NoError(t, err)
	eng.AddImage(id, fake.Image{Cmd: []string{"/testapp"}, Env: map[string]string{"PORT": "8080"}})
	return eng
}

// startOnFake starts a daemon on the fake engine eng, which the test
// closes; opts run after Config.Engine is set to eng, so one may wrap it.
func startOnFake(t testing.TB, eng *fake.Engine, dataDir string, opts ...func(*controlplane.Config)) *daemon {
	t.Helper()
	return start(t, dataDir, eng, append([]func(*controlplane.Config){func(c *controlplane.Config) { c.Engine = eng }}, opts...)...)
}

// again starts a new daemon on d's data directory and d's engine (the same
// fake world, or the Docker Engine), as a restart of berth server; d must
// have been stopped.
func (d *daemon) again(opts ...func(*controlplane.Config)) *daemon {
	d.t.Helper()
	if d.fake != nil {
		return startOnFake(d.t, d.fake, d.dataDir, opts...)
	}
	return startDaemon(d.t, d.dataDir, opts...)
}

// image is the test app's image on the daemon's engine.
func (d *daemon) image() string {
	if d.fake != nil {
		return fake.TestApp
	}
	return testutil.TestAppImage(d.t)
}

// start runs a daemon; eng is its fake engine, nil on Docker.
func start(t testing.TB, dataDir string, eng *fake.Engine, opts ...func(*controlplane.Config)) *daemon {
	t.Helper()
	if dataDir == "" {
		// Unix socket paths are limited to ~100 bytes: keep it short.
		dir, err := os.MkdirTemp("", "berth-cp-")
		require.NoError(t, err)
		t.Cleanup(func() { os.RemoveAll(dir) })
		dataDir = dir
	}
	d := &daemon{t: t, dataDir: dataDir, logs: &testutil.SyncBuffer{}, fake: eng}
	ready := make(chan controlplane.Addrs, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg := controlplane.Config{
		DataDir:       dataDir,
		HTTPAddr:      "127.0.0.1:0",
		Domain:        "localhost",
		Logger:        slog.New(slog.NewTextHandler(io.MultiWriter(d.logs, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug})),
		DeployTimeout: 20 * time.Second,
		Drain:         5 * time.Second,
		Ready:         func(a controlplane.Addrs) { ready <- a },
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.Engine == nil {
		de, err := docker.New(cfg.Logger.With("component", "docker"))
		require.NoError(t, err)
		t.Cleanup(func() { de.Close() })
		cfg.Engine = de.Pods()
	}
	go func() { done <- controlplane.Run(ctx, cfg) }()
	select {
	case d.addrs = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("daemon did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("daemon did not start in 30s")
	}
	var stopped bool
	d.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("daemon did not stop in 20s")
		}
	}
	t.Cleanup(d.stop)
	c, err := client.New(d.addrs.API, "", "")
	require.NoError(t, err)
	d.client = c
	return d
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// deploy sends a spec and returns the result and every message streamed.
func (d *daemon) deploy(yaml string, services ...string) (api.Message, []api.Message, error) {
	d.t.Helper()
	var msgs []api.Message
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, err := d.client.Deploy(ctx, api.DeployRequest{File: "berth.yaml", BaseDir: d.dataDir, YAML: yaml, Services: services}, func(m api.Message) {
		msgs = append(msgs, m)
	})
	return res, msgs, err
}

// mustDeploy deploys and fails the test unless it succeeds.
func (d *daemon) mustDeploy(yaml string) api.Message {
	d.t.Helper()
	res, msgs, err := d.deploy(yaml)
	require.NoError(d.t, err, "deploy failed; messages: %v", msgs)
	require.True(d.t, res.OK)
	return res
}

// destroyOnCleanup removes the app's containers from the shared Docker
// Engine when the test ends. A fake engine is closed with its test, and
// all it ran with it.
func (d *daemon) destroyOnCleanup(app string) {
	if d.fake != nil {
		return
	}
	d.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if _, err := d.client.Destroy(ctx, app, nil); err == nil {
			return
		}
		// The daemon was stopped (restart tests): remove what it left on
		// the shared engine directly.
		cli := testutil.DockerClient(d.t)
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "berth.app="+app))})
		if err == nil {
			for _, c := range cs {
				_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
			}
		}
		_ = cli.NetworkRemove(ctx, "berth-"+app)
	})
}

// get fetches path from service svc of app through the edge.
func (d *daemon) get(app, svc, path string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+d.addrs.HTTP+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = fmt.Sprintf("%s.%s.localhost", svc, app)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

var httpClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, Proxy: nil},
}

func (d *daemon) status(app string) api.ServiceStatus {
	d.t.Helper()
	st, err := d.client.Status(context.Background(), app)
	require.NoError(d.t, err)
	require.Len(d.t, st.Apps, 1)
	require.NotEmpty(d.t, st.Apps[0].Services)
	return st.Apps[0].Services[0]
}

// load is steady client traffic through the edge that counts every failure.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	bodies     map[string]int
	errs       []string
	stop       chan struct{}
	wg         sync.WaitGroup
}

// startLoad sends requests from n goroutines until stopped.
func (d *daemon) startLoad(app, svc string, n int) *load {
	l := &load{bodies: map[string]int{}, stop: make(chan struct{})}
	for range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				code, body, err := d.get(app, svc, "/")
				l.mu.Lock()
				if err != nil || code != http.StatusOK {
					l.failed.Add(1)
					if len(l.errs) < 10 {
						l.errs = append(l.errs, fmt.Sprintf("code=%d err=%v body=%q", code, err, body))
					}
				} else {
					l.ok.Add(1)
					l.bodies[strings.TrimSpace(body)]++
				}
				l.mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return l
}

func (l *load) finish() {
	close(l.stop)
	l.wg.Wait()
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for: %s", timeout, what)
}

// appSpec renders a one-service spec running the test app image.
func appSpec(app, image string, extra string) string {
	return fmt.Sprintf(`app: %s
services:
  web:
    image: %s
    port: 8080
    health: {path: /healthz}
%s`, app, image, extra)
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

var errIgnored = errors.New("ignored")

// pods lists the pods of app on the daemon's fake engine carrying the
// given labels ("key=value"), as the test would list the app's containers
// on Docker; the network holder a Docker engine keeps for tasks has no
// counterpart here.
func (d *daemon) pods(app string, labels ...string) []runtime.Pod {
	d.t.Helper()
	require.NotNil(d.t, d.fake, "pods lists a fake engine's pods")
	want := map[string]string{runtime.LabelApp: app}
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		want[k] = v
	}
	ps, err := d.fake.ListPods(context.Background(), want)
	require.NoError(d.t, err)
	return ps
}

// podStates maps the IDs of app's pods on the fake engine to their states,
// for a test to tell that nothing was started, stopped or removed behind
// its back (testutil.AppContainers on Docker).
func (d *daemon) podStates(app string) map[string]string {
	d.t.Helper()
	out := map[string]string{}
	for _, p := range d.pods(app) {
		out[p.ID] = string(p.State)
	}
	return out
}

// pod returns the fake engine's pod whose ID starts with id (status shows
// short IDs, as Docker's).
func (d *daemon) pod(id string) runtime.Pod {
	d.t.Helper()
	require.NotNil(d.t, d.fake, "pod inspects a fake engine's pod")
	require.NotEmpty(d.t, id)
	ps, err := d.fake.ListPods(context.Background(), nil)
	require.NoError(d.t, err)
	for _, p := range ps {
		if strings.HasPrefix(p.ID, id) {
			return p
		}
	}
	d.t.Fatalf("no pod %s on the fake engine", id)
	return runtime.Pod{}
}

// state is the engine's state of a pod (by its ID or a prefix, as status
// shows it): Docker's container status ("running", "paused", "exited") on
// Docker, the pod's runtime.PodState on the fake.
func (d *daemon) state(id string) string {
	d.t.Helper()
	if d.fake != nil {
		return string(d.pod(id).State)
	}
	info, err := testutil.DockerClient(d.t).ContainerInspect(context.Background(), id)
	require.NoError(d.t, err)
	return string(info.State.Status)
}
