package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The children in these tests are this test binary, started by Run as it
// starts berth's daemon; childModeEnv says what the child does.
const childModeEnv = "SUPERVISOR_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childModeEnv); mode != "" {
		os.Exit(testChild(mode))
	}
	os.Exit(m.Run())
}

// testChild serves its pid over HTTP on the inherited "web" socket until
// SIGTERM ("serve"), or fails before it is ready ("fail").
func testChild(mode string) int {
	files, n, err := Child()
	if err != nil || files == nil {
		fmt.Fprintln(os.Stderr, "not a supervised child:", err)
		return 2
	}
	if mode == "fail" {
		fmt.Fprintln(os.Stderr, "child: cannot start")
		return 3
	}
	if mode == "ready-then-die" {
		n.Ready()
		return 5
	}
	ln, err := net.FileListener(files["web"])
	if err != nil {
		return 4
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getpid())
	})}
	go func() { _ = srv.Serve(ln) }()
	n.Ready()
	<-term
	_ = srv.Shutdown(context.Background())
	n.Released()
	return 0
}

// startRun runs a supervisor of test children in mode, on a loopback
// socket whose address it returns, with the child's pid file.
func startRun(t *testing.T, mode string) (addr, pidFile string, cancel func(), done chan error) {
	t.Helper()
	t.Setenv(childModeEnv, mode)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr = ln.Addr().String()
	f, err := ln.(*net.TCPListener).File()
	require.NoError(t, err)
	ln.Close() // the file keeps the socket; the supervisor never accepts
	t.Cleanup(func() { f.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done = make(chan error, 1)
	pidFile = t.TempDir() + "/child.pid"
	go func() {
		done <- Run(ctx, Config{Args: []string{"-test.run=^$"}, Files: []NamedFile{{"web", f}}, PIDFile: pidFile, StopTimeout: 10 * time.Second})
	}()
	return addr, pidFile, cancel, done
}

func TestFirstStartFailureEndsWithTheChildsCode(t *testing.T) {
	_, pidFile, _, done := startRun(t, "fail")
	select {
	case err := <-done:
		var exit *ChildExitError
		require.True(t, errors.As(err, &exit), "got %v", err)
		assert.Equal(t, 3, exit.Code)
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not give up on a child that fails at its first start")
	}
	// No pid file is left naming a dead process (whose pid the system
	// may give to another: a later kill $(cat daemon.pid) would hit it).
	assert.NoFileExists(t, pidFile)
}

// stopRun ends a Run started by startRun and checks that it returns
// cleanly.
func stopRun(t *testing.T, cancel func(), done chan error) {
	t.Helper()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// TestChildThatDiesRightAfterReadyIsRestarted: a daemon that said it
// serves and died at once is restarted, never taken for one that could not
// start (whichever of its two messages, ready and exit, arrives first).
func TestChildThatDiesRightAfterReadyIsRestarted(t *testing.T) {
	_, _, cancel, done := startRun(t, "ready-then-die")
	select {
	case err := <-done:
		t.Fatalf("Run gave up on a child that had served: %v", err)
	case <-time.After(1500 * time.Millisecond): // several restarts, with backoff
	}
	stopRun(t, cancel, done)
}

// TestKilledChildIsReplacedOnTheSameSocket: a child killed with SIGKILL is
// started again at once, and a connection made while none runs waits in
// the socket's queue and is answered by the next child, not refused.
func TestKilledChildIsReplacedOnTheSameSocket(t *testing.T) {
	addr, pidFile, cancel, done := startRun(t, "serve")

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func() int {
		resp, err := hc.Get("http://" + addr + "/")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		pid, err := strconv.Atoi(string(b))
		require.NoError(t, err)
		return pid
	}
	first := get()
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(first), strings.TrimSpace(string(b)))

	require.NoError(t, syscall.Kill(first, syscall.SIGKILL))
	second := get()
	assert.NotEqual(t, first, second)

	stopRun(t, cancel, done)
	assert.Error(t, syscall.Kill(second, 0), "the child stopped with its supervisor")
	assert.NoFileExists(t, pidFile)
}

func TestInheritedRejectsMalformedLists(t *testing.T) {
	for _, v := range []string{"web", "web:x", ":3", "web:1", "web:999"} {
		t.Run(v, func(t *testing.T) {
			t.Setenv(ChildEnv, v)
			_, err := Inherited(ChildEnv)
			assert.ErrorIs(t, err, ErrBadInheritance)
		})
	}
}
