package docker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/docker"
	"github.com/berth-dev/berth/internal/testutil"
)

// callLog records the Docker API calls an Engine makes, telling those made
// for a caller (its ctx carries a mark) from the engine's own background
// work (the supervisor, the task holders it warms).
type callLog struct {
	next http.RoundTripper
	mu   sync.Mutex
	mine []string
	bg   []string
}

type markKey struct{}

// mark is a ctx whose calls count as the caller's.
func mark(ctx context.Context) context.Context { return context.WithValue(ctx, markKey{}, true) }

var (
	apiVersion = regexp.MustCompile(`^/v[0-9.]+`)
	hexID      = regexp.MustCompile(`[0-9a-f]{64}`)
)

func (l *callLog) RoundTrip(r *http.Request) (*http.Response, error) {
	call := r.Method + " " + hexID.ReplaceAllString(apiVersion.ReplaceAllString(r.URL.Path, ""), "{id}")
	l.mu.Lock()
	if r.Context().Value(markKey{}) != nil {
		l.mine = append(l.mine, call)
	} else {
		l.bg = append(l.bg, call)
	}
	l.mu.Unlock()
	return l.next.RoundTrip(r)
}

// take returns and forgets the calls recorded so far.
func (l *callLog) take() (mine, bg []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	mine, bg, l.mine, l.bg = l.mine, l.bg, nil, nil
	return mine, bg
}

// countingEngine is an Engine on the real Docker Engine whose API calls
// are recorded.
func countingEngine(tb testing.TB, o runtime.Owner) (*docker.Engine, *callLog) {
	tb.Helper()
	testutil.RequireDocker(tb)
	base, err := client.NewClientWithOpts(client.FromEnv)
	require.NoError(tb, err)
	hc := base.HTTPClient()
	_ = base.Close()
	log := &callLog{next: hc.Transport}
	hc.Transport = log
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithHTTPClient(hc), client.WithAPIVersionNegotiation())
	require.NoError(tb, err)
	e := docker.NewWithClient(cli, slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	e.SetOwner(o)
	tb.Cleanup(func() { _ = e.Close() })
	return e, log
}

// TestTaskRunAPICalls runs tasks as the control plane does (create the
// pod, attach, start, wait, inspect, remove) and counts the Docker API
// calls each makes on its way: every one is a round trip to the engine,
// on a task's start or on its exit. The budget is what the path needs
// (see the log for the calls), so a redundant inspect or wait shows here
// before it shows in bench/task.
func TestTaskRunAPICalls(t *testing.T) {
	t.Parallel()
	owner := runtime.Owner{ID: testutil.UniqueName(t, "owner"), Dir: t.TempDir()}
	e, calls := countingEngine(t, owner)
	appName := app(t)
	net := testutil.UniqueName(t, "net")
	require.NoError(t, e.EnsureNetwork(ctx(t), net, map[string]string{"berth.test": "1"}))
	t.Cleanup(func() { _ = e.RemoveNetwork(context.Background(), net) })
	labels := map[string]string{runtime.LabelApp: appName}
	names := []string{"api." + appName + ".internal"}
	e.WarmTaskNet(net, labels, names)
	image := testutil.TestAppImage(t)

	run := func(i int) (start, exit []string) {
		waitReady(t, e, net)
		calls.take()
		c := mark(ctx(t))
		pod, err := e.CreatePod(c, runtime.PodSpec{
			Name:          testutil.UniqueName(t, fmt.Sprintf("task%d", i)),
			Labels:        map[string]string{runtime.LabelApp: appName, runtime.LabelRole: string(runtime.RoleTask), "berth.test": "1"},
			Network:       net,
			InternalNames: names,
			Main:          runtime.ContainerSpec{Image: image, Command: []string{"/testapp", "echo", "hello"}},
		})
		require.NoError(t, err)
		s, err := e.AttachPod(c, pod.ID)
		require.NoError(t, err)
		out := make(chan string, 1)
		go func() {
			b, _ := io.ReadAll(s.Stdout())
			out <- string(b)
		}()
		go func() { _, _ = io.Copy(io.Discard, s.Stderr()) }()
		_, err = e.StartPod(c, pod.ID, runtime.StartOptions{})
		require.NoError(t, err)
		start, _ = calls.take()
		code, err := e.WaitPod(c, pod.ID)
		require.NoError(t, err)
		assert.Equal(t, 0, code)
		select {
		case o := <-out:
			assert.Equal(t, "hello\n", o)
		case <-time.After(10 * time.Second):
			t.Fatal("the task's output did not end")
		}
		s.Close()
		_, err = e.InspectPod(c, pod.ID)
		require.NoError(t, err)
		exit, _ = calls.take()
		require.NoError(t, e.RemovePod(c, pod.ID))
		remove, bg := calls.take()
		t.Logf("run %d: start %d calls: %s", i, len(start), strings.Join(start, ", "))
		t.Logf("run %d: exit %d calls: %s", i, len(exit), strings.Join(exit, ", "))
		t.Logf("run %d: remove %d calls: %s", i, len(remove), strings.Join(remove, ", "))
		t.Logf("run %d: background %d calls: %s", i, len(bg), strings.Join(bg, ", "))
		return start, exit
	}
	run(0) // the first looks at the image cold
	start, exit := run(1)
	// Create: the ready holder (which says the gateway the internal
	// names point at), the image, the create, the pod as made;
	// attach: the main container (the attach itself is a hijacked
	// connection the log does not see); start: the main container (its
	// holder runs as taken), the start, the wait that watches it while
	// it starts, the main container after it. (Before it was counted: 18,
	// with the network's inspect.)
	assert.LessOrEqual(t, len(start), 9, "API calls on a task's start: %v", start)
	// Wait: the main container and the wait; inspect: the main container
	// (an exited one's holder changes nothing of what is reported).
	// (Before: 6.)
	assert.LessOrEqual(t, len(exit), 3, "API calls from a task's exit to its record: %v", exit)
}

// waitReady waits until the engine holds a task network holder ready on
// network. (Docker reports the holder running before its start returns
// and the engine counts it ready: a task created in between joins the
// network itself, with more calls, as it did once in CI.)
func waitReady(tb testing.TB, e *docker.Engine, network string) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !e.TaskNetReady(network) {
		if time.Now().After(deadline) {
			tb.Fatal("no task network holder within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkTaskRun times a task's pod on the real Docker Engine as the
// control plane runs one, with a network holder ready as the engine keeps
// one: first-byte is from the create to the first output byte at the
// attached client, exit from the create to the exit code and the pod read
// after it.
//
//	go test -run - -bench TaskRun -benchtime 20x ./internal/runtime/docker/
func BenchmarkTaskRun(b *testing.B) {
	owner := runtime.Owner{ID: testutil.UniqueName(b, "owner"), Dir: b.TempDir()}
	e, _ := countingEngine(b, owner)
	appName := app(b)
	net := testutil.UniqueName(b, "net")
	require.NoError(b, e.EnsureNetwork(ctx(b), net, map[string]string{"berth.test": "1"}))
	b.Cleanup(func() { _ = e.RemoveNetwork(context.Background(), net) })
	e.WarmTaskNet(net, map[string]string{runtime.LabelApp: appName}, nil)
	image := testutil.TestAppImage(b)
	var firstByte, exit time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		waitReady(b, e, net)
		b.StartTimer()
		began := time.Now()
		c := ctx(b)
		pod, err := e.CreatePod(c, runtime.PodSpec{
			Name:    testutil.UniqueName(b, fmt.Sprintf("task%d", i)),
			Labels:  map[string]string{runtime.LabelApp: appName, runtime.LabelRole: string(runtime.RoleTask), "berth.test": "1"},
			Network: net,
			Main:    runtime.ContainerSpec{Image: image, Command: []string{"/testapp", "echo", "hello"}},
		})
		require.NoError(b, err)
		s, err := e.AttachPod(c, pod.ID)
		require.NoError(b, err)
		first := make(chan time.Duration, 1)
		go func() {
			buf := make([]byte, 1)
			if _, err := s.Stdout().Read(buf); err == nil {
				first <- time.Since(began)
			}
			close(first)
			_, _ = io.Copy(io.Discard, s.Stdout())
		}()
		go func() { _, _ = io.Copy(io.Discard, s.Stderr()) }()
		_, err = e.StartPod(c, pod.ID, runtime.StartOptions{})
		require.NoError(b, err)
		_, err = e.WaitPod(c, pod.ID)
		require.NoError(b, err)
		_, err = e.InspectPod(c, pod.ID)
		require.NoError(b, err)
		exit += time.Since(began)
		firstByte += <-first
		s.Close()
		b.StopTimer()
		require.NoError(b, e.RemovePod(c, pod.ID))
		b.StartTimer()
	}
	b.ReportMetric(float64(firstByte.Milliseconds())/float64(b.N), "first-byte-ms/op")
	b.ReportMetric(float64(exit.Milliseconds())/float64(b.N), "exit-ms/op")
}
