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
	"github.com/berth-dev/berth/internal/runtime/docker"
	"github.com/berth-dev/berth/internal/testutil"
)

// daemon is a real berth server running in-process against the real Docker
// Engine, on a private socket and a loopback edge port.
type daemon struct {
	t       testing.TB
	dataDir string
	addrs   controlplane.Addrs
	client  *client.Client
	logs    *testutil.SyncBuffer
	stop    func()
}

// startDaemon starts a daemon on dataDir ("" = a fresh temp dir); opts
// change its Config.
func startDaemon(t testing.TB, dataDir string, opts ...func(*controlplane.Config)) *daemon {
	t.Helper()
	testutil.RequireDocker(t)
	if dataDir == "" {
		// Unix socket paths are limited to ~100 bytes: keep it short.
		dir, err := os.MkdirTemp("", "berth-cp-")
		require.NoError(t, err)
		t.Cleanup(func() { os.RemoveAll(dir) })
		dataDir = dir
	}
	d := &daemon{t: t, dataDir: dataDir, logs: &testutil.SyncBuffer{}}
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

// destroyOnCleanup removes the app's containers when the test ends.
func (d *daemon) destroyOnCleanup(app string) {
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
