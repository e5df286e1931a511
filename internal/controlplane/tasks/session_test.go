package tasks

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/attach"
)

// session returns the two ends of an attach connection: the daemon's, to
// hand the Runner, and the client's.
func session(t *testing.T) (daemon, client *attach.Conn) {
	t.Helper()
	a, b := net.Pipe()
	daemon, client = attach.NewConn(a, bufio.NewReader(a)), attach.NewConn(b, bufio.NewReader(b))
	t.Cleanup(func() { daemon.Close(); client.Close() })
	return daemon, client
}

// An interactive task reads the client's input and sends its output and
// exit code back; a client that goes away stops it.
func TestAttach(t *testing.T) {
	t.Run("input, output and exit", func(t *testing.T) {
		w := newWorld(t)
		r, _ := w.runner()
		conn, client := session(t)
		ts := w.spec("/testapp", "cat")
		ts.stdin = true
		go r.Attach(conn, ts)
		var out, errOut strings.Builder
		res, err := client.Pump(context.Background(), strings.NewReader("hello\n"), false, &out, &errOut, nil)
		require.NoError(t, err)
		assert.Equal(t, 0, res.Code)
		assert.Equal(t, "hello\n", out.String())
		assert.Equal(t, api.TaskSucceeded, w.recorded(res.ID).Status)
	})
	t.Run("the client goes", func(t *testing.T) {
		w := newWorld(t)
		r, _ := w.runner()
		conn, client := session(t)
		done := make(chan struct{})
		go func() {
			defer close(done)
			r.Attach(conn, w.spec("/testapp", "sleep", "1h"))
		}()
		f, err := client.Read()
		require.NoError(t, err)
		require.Equal(t, attach.Started, f.Type)
		id := string(f.Payload)
		client.Close()
		<-done
		eventually(t, "the task is recorded stopped", func() bool { return w.recorded(id).Status == api.TaskStopped })
		assert.Equal(t, "stopped: the client that ran it disconnected", w.recorded(id).Message)
	})
}

// An exec runs a command in a running pod's container, attached to its
// client, and is told as an "exec" event with its exit code.
func TestExec(t *testing.T) {
	w := newWorld(t)
	r, _ := w.runner()
	run, err := r.Start(context.Background(), w.spec("/testapp", "sleep", "1h"), Hooks{})
	require.NoError(t, err)
	ex, err := r.Exec(testApp, "web", ExecTarget{Instance: "abc123", Pod: run.pod}, []string{"/testapp", "echo", "hi"}, false)
	require.NoError(t, err)
	conn, client := session(t)
	go func() {
		defer ex.Close()
		ex.Serve(conn)
	}()
	var out, errOut strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := client.Pump(ctx, nil, false, &out, &errOut, nil)
	require.NoError(t, err)
	assert.Equal(t, "abc123", res.ID)
	assert.Equal(t, 0, res.Code)
	assert.Equal(t, "hi\n", out.String())
	eventually(t, "the exec is an event", func() bool {
		for _, e := range w.eventsSaid() {
			if e == "exec: exec in instance abc123: /testapp echo hi exited with code 0" {
				return true
			}
		}
		return false
	})

	_, err = r.Exec(testApp, "web", ExecTarget{Instance: "gone", Pod: "nope"}, []string{"/testapp"}, false)
	assert.ErrorContains(t, err, "exec in instance gone: ")
}
