package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/attach"
)

func TestTaskRunArguments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		want   api.TaskRunRequest
		code   int
		stderr string
	}{
		{name: "a command", args: []string{"--", "./server", "migrate", "--dry-run"}, want: api.TaskRunRequest{Command: []string{"./server", "migrate", "--dry-run"}}},
		{name: "a named task", args: []string{"migrate"}, want: api.TaskRunRequest{Name: "migrate"}},
		{name: "a named task with extra args", args: []string{"migrate", "--", "-v", "x"}, want: api.TaskRunRequest{Name: "migrate", Command: []string{"-v", "x"}}},
		{name: "flags", args: []string{"--service", "worker", "--timeout", "90s", "--", "true"}, want: api.TaskRunRequest{Service: "worker", Timeout: 90 * time.Second, Command: []string{"true"}}},
		{name: "nothing to run", args: nil, code: 1, stderr: "berth: missing TASKNAME or -- CMD ARGS (usage: berth task run"},
		{name: "empty command", args: []string{"--"}, code: 1, stderr: "berth: empty command: put it after --, e.g. berth task run -- ./server migrate\n"},
		{name: "a command without --", args: []string{"./server", "migrate"}, code: 1, stderr: "berth: a command goes after --: berth task run -- ./server migrate (usage:"},
		{name: "two names", args: []string{"a", "b", "--", "c"}, code: 1, stderr: `berth: one TASKNAME before --, not "a b"`},
		{name: "bad timeout", args: []string{"--timeout", "soon", "--", "true"}, code: 1, stderr: `invalid argument "soon" for "--timeout"`},
		{name: "negative timeout", args: []string{"--timeout", "-1s", "--", "true"}, code: 1, stderr: "berth: invalid --timeout -1s: expected a positive duration"},
		{name: "detached terminal", args: []string{"-d", "-it", "--", "sh"}, code: 1, stderr: "berth: --detach and -i/-t exclude each other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newFakeDaemon(t)
			d.handle("POST /v1/apps/shop/tasks", func(w http.ResponseWriter, r *http.Request) {
				var req api.TaskRunRequest
				require.NoError(t, json.NewDecoder(r.Body).Decode(&req))
				assert.Equal(t, tt.want, req)
				task := api.Task{ID: "abc123", Status: api.TaskSucceeded}
				send(w, api.Message{Kind: api.KindTask, Task: &task})
				send(w, api.Message{Kind: api.KindResult, OK: true, Task: &task})
			})
			res := d.run(append([]string{"task", "run", "--app", "shop"}, tt.args...)...)
			assert.Equal(t, tt.code, res.code, res.stderr)
			if tt.stderr == "" {
				assert.Empty(t, res.stderr)
			} else {
				assert.Contains(t, res.stderr, tt.stderr)
			}
		})
	}
}

func TestTaskRunExitCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		task     api.Task
		result   api.Message
		code     int
		stderr   string
		jsonOut  bool
		wantJSON int // messages printed with --json
	}{
		{name: "success", task: api.Task{Status: api.TaskSucceeded}, code: 0},
		{name: "exit 1", task: api.Task{Status: api.TaskFailed, ExitCode: 1}, code: 1, stderr: "berth: task t1 exited with code 1\n"},
		{name: "exit 137", task: api.Task{Status: api.TaskFailed, ExitCode: 137}, code: 137, stderr: "berth: task t1 exited with code 137\n"},
		{name: "timeout", task: api.Task{Status: api.TaskTimeout, ExitCode: 143, Message: "timed out after 2s"}, code: 124, stderr: "berth: task t1 timed out after 2s and was stopped (exit code 143)\n"},
		{name: "stopped", task: api.Task{Status: api.TaskStopped, ExitCode: 137, Message: "stopped by berth task stop"}, code: 137, stderr: "berth: task t1 stopped by berth task stop (exit code 137)\n"},
		{name: "could not start", result: api.Message{Kind: api.KindResult, Error: "task could not start: exec: \"nope\": executable file not found in $PATH", Code: "task_not_started", Task: &api.Task{ID: "t1", Status: api.TaskFailed, ExitCode: 127}}, code: 127, stderr: "berth: task could not start: exec: \"nope\": executable file not found in $PATH\n"},
		{name: "json", task: api.Task{Status: api.TaskFailed, ExitCode: 3}, code: 3, jsonOut: true, wantJSON: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newFakeDaemon(t)
			d.handle("POST /v1/apps/shop/tasks", func(w http.ResponseWriter, r *http.Request) {
				started := api.Task{ID: "t1", Status: api.TaskRunning}
				send(w, api.Message{Kind: api.KindTask, Task: &started})
				send(w, api.Message{Kind: api.KindLog, Source: "t1", Stream: "stdout", Text: "to stdout"})
				send(w, api.Message{Kind: api.KindLog, Source: "t1", Stream: "stderr", Text: "to stderr"})
				res := tt.result
				if res.Kind == "" {
					task := tt.task
					task.ID = "t1"
					res = api.Message{Kind: api.KindResult, OK: true, Task: &task}
				}
				send(w, res)
			})
			args := []string{"task", "run", "--app", "shop"}
			if tt.jsonOut {
				args = append(args, "--json")
			}
			args = append(args, "--", "x")
			res := d.run(args...)
			assert.Equal(t, tt.code, res.code)
			if tt.jsonOut {
				assert.Len(t, decodeNDJSON(t, res.stdout), tt.wantJSON)
				assert.Empty(t, res.stderr)
				return
			}
			assert.Equal(t, "to stdout\n", res.stdout)
			assert.Equal(t, "to stderr\n"+tt.stderr, res.stderr)
		})
	}
}

func TestTaskDetachListLogsStop(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	start := time.Now().Add(-90 * time.Second)
	d.handle("POST /v1/apps/shop/tasks", func(w http.ResponseWriter, r *http.Request) {
		var req api.TaskRunRequest
		require.NoError(t, json.NewDecoder(r.Body).Decode(&req))
		assert.True(t, req.Detach)
		writeJSON(w, http.StatusCreated, api.Task{ID: "d3adb33f01", Status: api.TaskRunning})
	})
	d.handle("GET /v1/tasks", func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "shop", r.URL.Query().Get("app"))
		writeJSON(w, http.StatusOK, []api.Task{
			{ID: "d3adb33f01", Service: "web", Kind: "oneoff", Command: []string{"./server", "backfill"}, Status: api.TaskRunning, StartedAt: start},
			{ID: "c0ffee0002", Service: "web", Kind: "release", Command: []string{"./server", "migrate"}, Status: api.TaskFailed, ExitCode: 3, StartedAt: start, FinishedAt: start.Add(1500 * time.Millisecond)},
			{ID: "5ca1ab1e03", Service: "web", Kind: "scheduled", Name: "nightly", Status: api.TaskSkipped, StartedAt: start, FinishedAt: start},
		})
	})
	d.handle("GET /v1/tasks/{id}/logs", func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "d3ad", r.PathValue("id"))
		assert.Equal(t, "1", r.URL.Query().Get("follow"))
		send(w, api.Message{Kind: api.KindLog, Stream: "stdout", Text: "one"})
		send(w, api.Message{Kind: api.KindLog, Stream: "stderr", Text: "two"})
	})
	d.handle("POST /v1/tasks/{id}/stop", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "nope" {
			writeJSON(w, http.StatusNotFound, api.Error{Message: `no task "nope"; see "berth task ls"`, Code: "not_found"})
			return
		}
		writeJSON(w, http.StatusOK, api.Task{ID: "d3adb33f01", Status: api.TaskStopped, ExitCode: 143})
	})

	res := d.run("task", "run", "--app", "shop", "--detach", "--", "./server", "backfill")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, "d3adb33f01\n", res.stdout)

	res = d.run("task", "ls", "--app", "shop")
	require.Equal(t, 0, res.code, res.stderr)
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	require.Len(t, lines, 4)
	assert.Regexp(t, `^ID\s+SERVICE\s+KIND\s+TASK\s+STATUS\s+EXIT\s+STARTED\s+DURATION$`, lines[0])
	assert.Regexp(t, `^d3adb33f01\s+web\s+oneoff\s+\./server backfill\s+running\s+-\s+1m ago\s+1m3\d`, lines[1])
	assert.Regexp(t, `^c0ffee0002\s+web\s+release\s+\./server migrate\s+failed\s+3\s+1m ago\s+1.5s$`, lines[2])
	assert.Regexp(t, `^5ca1ab1e03\s+web\s+scheduled\s+nightly\s+skipped\s+-\s+1m ago\s+-$`, lines[3])

	res = d.run("task", "logs", "d3ad", "-f")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, "one\n", res.stdout)
	assert.Equal(t, "two\n", res.stderr)

	res = d.run("task", "stop", "d3adb33f01")
	require.Equal(t, 0, res.code, res.stderr)
	assert.Equal(t, "stopped task d3adb33f01 (exit code 143)\n", res.stdout)

	res = d.run("task", "stop", "nope")
	assert.Equal(t, 1, res.code)
	assert.Equal(t, "berth: no task \"nope\"; see \"berth task ls\"\n", res.stderr)
}

// sessionDaemon answers an attach session: it records the request, echoes
// stdin to stdout until the input ends, reports the last window size on
// stderr, and exits with code. It returns the last request it got.
func sessionDaemon[T any](t *testing.T, d *fakeDaemon, pattern string, code int) func() T {
	var (
		mu  sync.Mutex
		got T
	)
	d.handle(pattern, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, attach.Protocol, r.Header.Get("Upgrade"))
		got = *new(T)
		require.NoError(t, json.NewDecoder(r.Body).Decode(&got))
		nc, brw, err := http.NewResponseController(w).Hijack()
		require.NoError(t, err)
		_, _ = io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: berth-attach\r\n\r\n")
		conn := attach.NewConn(nc, brw.Reader)
		defer conn.Close()
		require.NoError(t, conn.Write(attach.Started, []byte("web-1")))
		for {
			f, err := conn.Read()
			if err != nil {
				return
			}
			switch f.Type {
			case attach.Stdin:
				_ = conn.Write(attach.Stdout, f.Payload)
			case attach.CloseStdin:
				_ = conn.Write(attach.Stderr, []byte("eof\n"))
				_ = conn.Write(attach.Exit, attach.EncodeExit(code, ""))
				return
			}
		}
	})
	return func() T {
		mu.Lock()
		defer mu.Unlock()
		return got
	}
}

func TestExec(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	got := sessionDaemon[api.ExecRequest](t, d, "POST /v1/apps/shop/services/web/exec", 5)

	var stdout, stderr strings.Builder
	code := Main([]string{"--host", d.host, "exec", "web", "--app", "shop", "--instance", "web-1", "-i", "--", "cat", "-n"}, strings.NewReader("hello\n"), &stdout, &stderr)
	assert.Equal(t, 5, code, stderr.String())
	assert.Equal(t, "hello\n", stdout.String())
	assert.Equal(t, "eof\n", stderr.String())
	assert.Equal(t, api.ExecRequest{Instance: "web-1", Command: []string{"cat", "-n"}, Stdin: true}, got())

	// Without -i the input is closed at once.
	res := d.run("exec", "web", "--app", "shop", "--", "true")
	assert.Equal(t, 5, res.code)
	assert.Equal(t, "", res.stdout)
	assert.False(t, got().Stdin)

	for _, tt := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no service", []string{"exec"}, "berth: missing SERVICE"},
		{"no command", []string{"exec", "web"}, "berth: empty command: put it after --, e.g. berth exec web -- sh"},
		{"empty command", []string{"exec", "web", "--"}, "berth: empty command"},
		{"command without --", []string{"exec", "web", "sh"}, "berth: the command goes after --: berth exec web -- sh"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := d.run(append([]string{"--app", "shop"}, tt.args...)...)
			assert.Equal(t, 1, res.code)
			assert.Contains(t, res.stderr, tt.stderr)
		})
	}
}

func TestTaskRunInteractive(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	got := sessionDaemon[api.TaskRunRequest](t, d, "POST /v1/apps/shop/tasks", 0)
	var stdout, stderr strings.Builder
	code := Main([]string{"--host", d.host, "task", "run", "--app", "shop", "-i", "--", "cat"}, strings.NewReader("in\n"), &stdout, &stderr)
	assert.Equal(t, 0, code, stderr.String())
	assert.Equal(t, "in\n", stdout.String())
	assert.Equal(t, api.TaskRunRequest{Command: []string{"cat"}, Stdin: true}, got())
}

func TestExecRefused(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.handle("POST /v1/apps/shop/services/web/exec", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, api.Error{Message: `web has no running instance "zz"; see "berth status"`, Code: "not_found"})
	})
	res := d.run("exec", "web", "--app", "shop", "--instance", "zz", "--", "sh")
	assert.Equal(t, 1, res.code)
	assert.Equal(t, "berth: web has no running instance \"zz\"; see \"berth status\"\n", res.stderr)
}
