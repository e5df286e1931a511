package main_test

// The chaos test: under steady load through the edge, `berth server` is
// killed (SIGKILL) at random points of deploys, rollbacks and task runs,
// started again, and after every kill the promises a user relies on are
// checked. It prints the failed requests of each kill; it does not ask for
// none (a restart may cost requests; see the README).

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/testutil"
)

// chaosServer is a `berth server` that can be killed and started again on
// the same data directory and ports.
type chaosServer struct {
	t    *testing.T
	data string
	http string
	env  []string
	logs *testutil.SyncBuffer

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

func (s *chaosServer) start() {
	s.t.Helper()
	cmd := exec.Command(berthBin, "server", "--http", s.http, "--https", "")
	cmd.Env = s.env
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	require.NoError(s.t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	s.waitReady(exited)
}

// waitReady waits until the API answers.
func (s *chaosServer) waitReady(exited chan struct{}) {
	s.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := s.client().Status(ctx, "")
		cancel()
		if err == nil {
			return
		}
		select {
		case <-exited:
			s.t.Fatalf("berth server exited:\n%s", s.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("berth server not ready in 45s (%v):\n%s", err, s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *chaosServer) client() *client.Client {
	c, err := client.New("unix://"+filepath.Join(s.data, "berth.sock"), "", "")
	require.NoError(s.t, err)
	return c
}

// kill sends SIGKILL to the daemon (the pid in $DATA/daemon.pid, which the
// supervisor restarts at once on the sockets it keeps) or, when whole is
// set, to berth server itself (the supervisor, which takes its daemon
// along), and gets a daemon serving again.
func (s *chaosServer) kill(whole bool) string {
	s.t.Helper()
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if !whole {
		b, err := os.ReadFile(filepath.Join(s.data, "daemon.pid"))
		require.NoError(s.t, err, "berth server writes its daemon's pid")
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		require.NoError(s.t, err)
		require.NotEqual(s.t, cmd.Process.Pid, pid, "the daemon is a child of berth server")
		require.NoError(s.t, syscall.Kill(pid, syscall.SIGKILL))
		s.waitReady(exited)
		return "daemon"
	}
	require.NoError(s.t, cmd.Process.Kill())
	<-exited
	s.start()
	return "server"
}

func (s *chaosServer) stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
	}
}

// berth runs the CLI in dir.
func (s *chaosServer) berth(ctx context.Context, dir string, args ...string) (string, int) {
	cmd := exec.CommandContext(ctx, berthBin, args...)
	cmd.Env, cmd.Dir = s.env, dir
	out, err := cmd.CombinedOutput()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return string(out), code
}

func TestChaosKillDuringVerbs(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test: skipped with -short")
	}
	img := testutil.TestAppImage(t)
	data, err := os.MkdirTemp("", "berth-chaos-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(data) })
	s := &chaosServer{t: t, data: data, http: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)), logs: &testutil.SyncBuffer{}}
	s.env = append(os.Environ(), "BERTH_DATA="+data, "BERTH_HOST=", "BERTH_TOKEN=")
	s.start()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", s.logs.String())
		}
	})

	app := testutil.UniqueName(t, "chaos")
	host := "web." + app + ".localhost"
	dir := t.TempDir()
	version := 0
	write := func() string {
		version++
		v := fmt.Sprintf("v%d", version)
		spec := fmt.Sprintf("app: %s\nservices:\n  web:\n    image: %s\n    port: 8080\n    instances: 2\n"+
			"    health: {path: /healthz}\n    secrets: [API_KEY]\n    env: {VERSION: %s}\n", app, img, v)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "berth.yaml"), []byte(spec), 0o644))
		return v
	}
	ctx := context.Background()
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = s.berth(cctx, dir, "destroy", "--app", app)
		s.stop()
		// Whatever a failed run left on the shared engine.
		cli := testutil.DockerClient(t)
		cs, _ := cli.ContainerList(cctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "berth.app="+app))})
		for _, c := range cs {
			_ = cli.ContainerRemove(cctx, c.ID, container.RemoveOptions{Force: true})
		}
		_ = cli.NetworkRemove(cctx, "berth-"+app)
	})

	const secret = "chaos-s3cret"
	write()
	out, code := s.berth(ctx, dir, "secret", "set", "web", "API_KEY="+secret)
	require.Zero(t, code, out)
	out, code = s.berth(ctx, dir, "deploy")
	require.Zero(t, code, out)
	idRaw, err := os.ReadFile(filepath.Join(data, "identity"))
	require.NoError(t, err)
	identity := strings.TrimSpace(string(idRaw))

	// Steady load through the edge: two loops, about 300 requests a second.
	var failed, served atomic.Int64
	stopLoad := make(chan struct{})
	var loadWG sync.WaitGroup
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	for range 2 {
		loadWG.Add(1)
		go func() {
			defer loadWG.Done()
			for {
				select {
				case <-stopLoad:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodGet, "http://"+s.http+"/", nil)
				req.Host = host
				resp, err := hc.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Add(1)
				} else {
					served.Add(1)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	defer func() { close(stopLoad); loadWG.Wait() }()

	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("seed %d", seed)
	verbs := []string{"deploy", "rollback", "task", "deploy", "rollback", "task", "deploy", "task", "rollback"}
	docker := testutil.DockerClient(t)
	for i, verb := range verbs {
		var args []string
		switch verb {
		case "deploy":
			write()
			args = []string{"deploy"}
		case "rollback":
			// A deploy killed before its switch leaves nothing to roll
			// back to: make a rollback target first, unkilled.
			revs, err := s.client().Revisions(ctx, app, "web")
			require.NoError(t, err)
			if !slices.ContainsFunc(revs, func(r api.Revision) bool { return r.Status == "previous" }) {
				write()
				out, code := s.berth(ctx, dir, "deploy")
				require.Zero(t, code, out)
			}
			args = []string{"rollback", "web"}
		case "task":
			args = []string{"task", "run", "--", "/testapp", "sleep", "1s"}
		}
		failedBefore, servedBefore := failed.Load(), served.Load()
		type result struct {
			out  string
			code int
		}
		done := make(chan result, 1)
		vctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		go func() {
			out, code := s.berth(vctx, dir, args...)
			done <- result{out, code}
		}()
		delay := time.Duration(50+rng.IntN(1500)) * time.Millisecond
		time.Sleep(delay)
		killedAt := time.Now()
		what := s.kill(i%3 == 2)
		res := <-done
		cancel()
		back := time.Since(killedAt)

		// The serving revision answers again.
		deadline := time.Now().Add(30 * time.Second)
		for {
			req, _ := http.NewRequest(http.MethodGet, "http://"+s.http+"/env/API_KEY", nil)
			req.Host = host
			resp, err := hc.Do(req)
			if err == nil {
				b := make([]byte, 64)
				n, _ := resp.Body.Read(b)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					// No lost secret: the instances have it.
					require.Equal(t, secret, strings.TrimSpace(string(b[:n])), "kill %d", i+1)
					break
				}
			}
			require.True(t, time.Now().Before(deadline), "kill %d: the service does not answer 30s after the restart", i+1)
			time.Sleep(100 * time.Millisecond)
		}
		serving := time.Since(killedAt)
		lines := strings.Split(strings.TrimSpace(res.out), "\n")
		t.Logf("kill %d (%s) during %s after %s: %d failed requests of %d (daemon back after %s, serving after %s); %s exit %d: %s",
			i+1, what, verb, delay, failed.Load()-failedBefore, failed.Load()-failedBefore+served.Load()-servedBefore,
			back.Round(time.Millisecond), serving.Round(time.Millisecond), verb, res.code, lines[len(lines)-1])
		// A deploy, rollback or task run cut off by the kill says its
		// outcome is unknown, never a bare connection error ("connection
		// reset", "stream ... broke: unexpected EOF").
		if res.code != 0 && (strings.Contains(res.out, "connection") || strings.Contains(res.out, "broke")) {
			assert.Contains(t, res.out, "the outcome is unknown", "kill %d: %s", i+1, res.out)
		}

		c := s.client()
		// At most one previous revision; exactly one serving.
		revs, err := c.Revisions(ctx, app, "web")
		require.NoError(t, err)
		count := map[string][]int{}
		for _, r := range revs {
			count[r.Status] = append(count[r.Status], r.Number)
		}
		require.Len(t, count["active"], 1, "kill %d: revisions %v", i+1, count)
		require.LessOrEqual(t, len(count["previous"]), 1, "kill %d: revisions %v", i+1, count)
		require.Empty(t, count["deploying"], "kill %d: revisions %v", i+1, count)
		keep := map[string]bool{strconv.Itoa(count["active"][0]): true}
		for _, n := range count["previous"] {
			keep[strconv.Itoa(n)] = true
		}

		// No lost secret in the state either.
		keys, err := c.SecretList(ctx, app, "web")
		require.NoError(t, err)
		require.Len(t, keys, 1, "kill %d", i+1)
		require.Equal(t, "API_KEY", keys[0].Key, "kill %d", i+1)

		// No orphans: every container with this daemon's identity belongs to
		// a revision the state keeps, or to a task or task holder it knows,
		// and its only network is the app's.
		var orphans []string
		ok := eventuallyTrue(20*time.Second, func() bool {
			cs, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "berth.owner="+identity))})
			if err != nil {
				return false
			}
			tasks, err := c.Tasks(ctx, app, 0)
			if err != nil {
				return false
			}
			running := map[string]bool{}
			for _, tk := range tasks {
				if tk.Status == "running" {
					running[tk.ID] = true
				}
			}
			orphans = nil
			holders := 0
			for _, ct := range cs {
				l := ct.Labels
				switch {
				case l["berth.app"] != app:
					orphans = append(orphans, ct.Names[0]+" (another app)")
				case l["berth.role"] == "instance" || l["berth.role"] == "sidecar":
					if !keep[l["berth.revision"]] {
						orphans = append(orphans, ct.Names[0]+" (revision "+l["berth.revision"]+")")
					}
				case l["berth.role"] == "task":
					if !running[l["berth.task"]] {
						orphans = append(orphans, ct.Names[0]+" (task "+l["berth.task"]+" not running)")
					}
				case l["berth.role"] == "tasknet":
					if l["berth.tasknet"] == "" {
						holders++
					}
				default:
					orphans = append(orphans, ct.Names[0]+" (role "+l["berth.role"]+")")
				}
			}
			if holders > 2 {
				orphans = append(orphans, fmt.Sprintf("%d ready task holders", holders))
			}
			return len(orphans) == 0
		})
		require.True(t, ok, "kill %d: orphan containers: %v", i+1, orphans)
		nets, err := docker.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", "berth.owner="+identity))})
		require.NoError(t, err)
		for _, n := range nets {
			require.Equal(t, "berth-"+app, n.Name, "kill %d: orphan network", i+1)
		}
	}

	// The next deploy works, and serves the new version.
	v := write()
	out, code = s.berth(ctx, dir, "deploy")
	require.Zero(t, code, out)
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.http+"/", nil)
	req.Host = host
	resp, err := hc.Do(req)
	require.NoError(t, err)
	b := make([]byte, 64)
	n, _ := resp.Body.Read(b)
	resp.Body.Close()
	require.Equal(t, "hello from "+v, strings.TrimSpace(string(b[:n])))
	st, err := s.client().Status(ctx, app)
	require.NoError(t, err)
	require.Len(t, st.Apps, 1)
	assert.Equal(t, "running", st.Apps[0].Services[0].State)
	t.Logf("in all: %d failed requests of %d", failed.Load(), failed.Load()+served.Load())
}

// eventuallyTrue polls cond until it holds or timeout passes.
func eventuallyTrue(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}
