package controlplane_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/attach"
	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/docker"
	"github.com/berth-dev/berth/internal/testutil"
)

// taskRun is what one streamed task run returned.
type taskRun struct {
	res            api.Message
	task           api.Task
	stdout, stderr []string
	msgs           []api.Message
}

// runTask runs a task to its end through the API and collects its stream.
func (d *daemon) runTask(ctx context.Context, app string, req api.TaskRunRequest) (taskRun, error) {
	d.t.Helper()
	var r taskRun
	res, err := d.client.RunTask(ctx, app, req, func(m api.Message) {
		r.msgs = append(r.msgs, m)
		if m.Kind != api.KindLog {
			return
		}
		if m.Stream == "stderr" {
			r.stderr = append(r.stderr, m.Text)
		} else {
			r.stdout = append(r.stdout, m.Text)
		}
	})
	r.res = res
	if res.Task != nil {
		r.task = *res.Task
	}
	return r, err
}

func (d *daemon) mustRunTask(app string, req api.TaskRunRequest) taskRun {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := d.runTask(ctx, app, req)
	require.NoError(d.t, err, "task run; messages: %v", r.msgs)
	require.True(d.t, r.res.OK)
	require.NotNil(d.t, r.res.Task)
	return r
}

// waitTask polls a task until it has ended.
func (d *daemon) waitTask(id string, timeout time.Duration) api.Task {
	d.t.Helper()
	var t api.Task
	eventually(d.t, timeout, "task "+id+" to end", func() bool {
		var err error
		t, err = d.client.Task(context.Background(), id)
		require.NoError(d.t, err)
		return t.Status != api.TaskRunning
	})
	return t
}

func (d *daemon) taskLogs(id string, follow bool) []string {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var lines []string
	require.NoError(d.t, d.client.TaskLogs(ctx, id, follow, func(m api.Message) {
		if m.Kind == api.KindLog {
			lines = append(lines, m.Text)
		}
	}))
	return lines
}

// taskContainers lists the IDs of a task's containers on the daemon's
// engine (its pod on the fake).
func (d *daemon) taskContainers(id string) []string {
	d.t.Helper()
	labels := map[string]string{runtime.LabelTask: id}
	var ids []string
	if d.fake != nil {
		ps, err := d.fake.ListPods(context.Background(), labels)
		require.NoError(d.t, err)
		for _, p := range ps {
			ids = append(ids, p.ID)
		}
		return ids
	}
	e, err := docker.New(slog.New(slog.DiscardHandler))
	require.NoError(d.t, err)
	defer e.Close()
	cs, err := e.List(context.Background(), labels)
	require.NoError(d.t, err)
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

// noContainers waits until a finished task's container is gone.
func (d *daemon) noContainers(id string) {
	d.t.Helper()
	eventually(d.t, 10*time.Second, "task "+id+"'s container removed", func() bool {
		return len(d.taskContainers(id)) == 0
	})
}

func cmd(args ...string) api.TaskRunRequest { return api.TaskRunRequest{Command: args} }

func TestTaskRun(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "task")
	_, err := d.client.SecretSet(context.Background(), app, "web", map[string]string{"TOKEN": "s3cret"})
	require.NoError(t, err)
	yaml := fmt.Sprintf(`app: %s
services:
  web:
    image: %s
    port: 8080
    health: {path: /healthz}
    env: {VERSION: v7}
    secrets: [TOKEN]
  worker:
    image: %s
    command: ["/testapp", "sleep", "1h"]
tasks:
  hello: {service: web, command: ["/testapp", "echo", "named"]}
  migrate: {service: web, command: ["/testapp", "migrate"]}
`, app, img, img)
	// Only web is deployed: worker stays without a revision.
	res, msgs, err := d.deploy(yaml, "web")
	require.NoError(t, err, "%v", msgs)
	require.True(t, res.OK)

	t.Run("exit codes propagate", func(t *testing.T) {
		for _, code := range []int{0, 1, 137} {
			t.Run(fmt.Sprint(code), func(t *testing.T) {
				r := d.mustRunTask(app, cmd("/testapp", "exit", fmt.Sprint(code)))
				assert.Equal(t, code, r.task.ExitCode)
				want := api.TaskSucceeded
				if code != 0 {
					want = api.TaskFailed
				}
				assert.Equal(t, want, r.task.Status)
				assert.Equal(t, "oneoff", r.task.Kind)
				assert.Equal(t, "web", r.task.Service)
				assert.Equal(t, 1, r.task.Revision)
				// The first message names the task; its container is gone.
				require.Equal(t, api.KindTask, r.msgs[0].Kind)
				assert.Equal(t, r.task.ID, r.msgs[0].Task.ID)
				d.noContainers(r.task.ID)
			})
		}
	})

	t.Run("env, secrets and streams", func(t *testing.T) {
		tests := []struct {
			name           string
			req            api.TaskRunRequest
			stdout, stderr []string
			code           int
		}{
			{"env of the revision", cmd("/testapp", "env", "VERSION"), []string{"v7"}, nil, 0},
			{"secret", cmd("/testapp", "env", "TOKEN"), []string{"s3cret"}, nil, 0},
			{"stderr is stderr", cmd("/testapp", "env", "NOPE"), nil, []string{"NOPE is not set"}, 1},
			{"named task", api.TaskRunRequest{Name: "hello"}, []string{"named"}, nil, 0},
			{"named task with extra args", api.TaskRunRequest{Name: "hello", Command: []string{"and", "more"}}, []string{"named and more"}, nil, 0},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := d.mustRunTask(app, tt.req)
				assert.Equal(t, tt.stdout, r.stdout)
				assert.Equal(t, tt.stderr, r.stderr)
				assert.Equal(t, tt.code, r.task.ExitCode)
			})
		}
	})

	t.Run("10000 lines, none lost", func(t *testing.T) {
		r := d.mustRunTask(app, cmd("/testapp", "lines", "10000"))
		require.Len(t, r.stdout, 10000)
		for i, l := range r.stdout {
			if l != fmt.Sprintf("line %d", i+1) {
				t.Fatalf("line %d is %q", i+1, l)
			}
		}
		// The store keeps them too (well under the 1MiB tail).
		logs := d.taskLogs(r.task.ID, false)
		assert.Equal(t, r.stdout, logs)
	})

	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		req := cmd("/testapp", "sleep", "60s")
		req.Timeout = time.Second
		r := d.mustRunTask(app, req)
		assert.Equal(t, api.TaskTimeout, r.task.Status)
		// SIGTERM through tini; SIGKILL after the grace when a loaded
		// engine loses the SIGTERM of a process still starting.
		assert.Contains(t, []int{143, 137}, r.task.ExitCode)
		assert.Contains(t, r.task.Message, "timed out after 1s")
		assert.Less(t, time.Since(start), 20*time.Second)
	})

	t.Run("detach, stop", func(t *testing.T) {
		task, err := d.client.RunTaskDetached(context.Background(), app, cmd("/testapp", "sleep", "60s"))
		require.NoError(t, err)
		assert.Equal(t, api.TaskRunning, task.Status)
		require.Len(t, d.taskContainers(task.ID), 1)
		// Any unique prefix of 4+ characters names it.
		stopped, err := d.client.StopTask(context.Background(), task.ID[:6])
		require.NoError(t, err)
		assert.Equal(t, api.TaskStopped, stopped.Status)
		assert.Equal(t, 143, stopped.ExitCode)
		d.noContainers(task.ID)
	})

	// (Detach, then follow the logs: TestDockerSmoke. On the fake a task
	// ends in microseconds, inside a race of the daemon's task logs.)

	t.Run("a client that hangs up stops the task", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var id string
		_, err := d.client.RunTask(ctx, app, cmd("/testapp", "sleep", "60s"), func(m api.Message) {
			if m.Kind == api.KindTask {
				id = m.Task.ID
				cancel()
			}
		})
		require.ErrorIs(t, err, context.Canceled)
		require.NotEmpty(t, id)
		task := d.waitTask(id, 15*time.Second)
		assert.Equal(t, api.TaskStopped, task.Status)
		assert.Contains(t, task.Message, "disconnected")
	})

	t.Run("a command that is not there", func(t *testing.T) {
		// The container's init (tini) reports it, as a shell would.
		r := d.mustRunTask(app, cmd("/nope"))
		assert.Equal(t, api.TaskFailed, r.task.Status)
		assert.Equal(t, 127, r.task.ExitCode)
		assert.Contains(t, strings.Join(r.stderr, "\n"), "/nope")
		d.noContainers(r.task.ID)
	})

	t.Run("history", func(t *testing.T) {
		ts, err := d.client.Tasks(context.Background(), app, 0)
		require.NoError(t, err)
		require.NotEmpty(t, ts)
		for i := 1; i < len(ts); i++ {
			assert.False(t, ts[i].StartedAt.After(ts[i-1].StartedAt), "newest first")
		}
		for _, task := range ts {
			assert.NotEqual(t, api.TaskRunning, task.Status, task.ID)
		}
	})

	t.Run("bad input changes nothing", func(t *testing.T) {
		before, err := d.client.Tasks(context.Background(), app, 0)
		require.NoError(t, err)
		tests := []struct {
			name string
			app  string
			req  api.TaskRunRequest
			code string
			msg  string
		}{
			{"unknown task name", app, api.TaskRunRequest{Name: "nope"}, "not_found", `no task named "nope"; the deployed berth.yaml defines hello, migrate`},
			{"no such service", app, api.TaskRunRequest{Command: []string{"true"}, Service: "db"}, "not_found", `has no service "db"; services are: web, worker`},
			{"a service without a revision", app, api.TaskRunRequest{Command: []string{"true"}, Service: "worker"}, "no_revision", "service worker has no revision yet; deploy it first"},
			{"empty command", app, api.TaskRunRequest{}, "invalid", "empty command"},
			{"empty first argument", app, api.TaskRunRequest{Command: []string{""}}, "invalid", "empty command"},
			{"a named task on another service", app, api.TaskRunRequest{Name: "hello", Service: "worker"}, "invalid", "task hello runs on service web"},
			{"no such app", "nope-" + app, cmd("true"), "not_found", `no app named "nope-`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := d.runTask(context.Background(), tt.app, tt.req)
				var ae *client.APIError
				require.ErrorAs(t, err, &ae)
				assert.Equal(t, tt.code, ae.Body.Code)
				assert.Contains(t, ae.Body.Message, tt.msg)
				assert.NotContains(t, ae.Body.Message, "\n")
			})
		}
		after, err := d.client.Tasks(context.Background(), app, 0)
		require.NoError(t, err)
		assert.Equal(t, len(before), len(after))
	})

	t.Run("a deploy with an invalid cron changes nothing", func(t *testing.T) {
		bad := strings.Replace(yaml, `  hello: {service: web, command: ["/testapp", "echo", "named"]}`,
			`  renamed: {service: web, command: ["/testapp", "echo", "named"], schedule: "61 * * * *"}`, 1)
		res, _, err := d.deploy(bad, "web")
		var re *client.ResultError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, "invalid", res.Code)
		assert.Contains(t, re.Result.Error, "berth.yaml:13")
		assert.Contains(t, re.Result.Error, "schedule")
		revs, err := d.client.Revisions(context.Background(), app, "web")
		require.NoError(t, err)
		assert.Len(t, revs, 1)
		// The stored spec is still the old one: its task names hold.
		d.mustRunTask(app, api.TaskRunRequest{Name: "hello"})
		_, err = d.runTask(context.Background(), app, api.TaskRunRequest{Name: "renamed"})
		var ae *client.APIError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, "not_found", ae.Body.Code)
	})
}

// busyboxApp is an app whose service "web" is the test app and whose
// worker "tools" has a shell, for tasks and execs that need one.
func busyboxApp(t testing.TB, app string) string {
	return fmt.Sprintf(`app: %s
services:
  web:
    image: %s
    port: 8080
    health: {path: /healthz}
  tools:
    image: %s
    command: ["sleep", "3600"]
`, app, testutil.TestAppImage(t), testutil.BusyboxImage(t))
}

// session drives an attach session: it sends input after the first output
// that contains after (or at once), and collects output until the Exit
// frame.
type session struct {
	conn           *attach.Conn
	id             string
	stdout, stderr bytes.Buffer
}

func (s *session) send(t testing.TB, typ attach.Type, p []byte) {
	t.Helper()
	require.NoError(t, s.conn.Write(typ, p))
}

// closeStdin ends the session's input. Its error is ignored, as berth's
// own client ignores it (attach.Conn.Pump): a command that reads no input may
// have ended, and the daemon closed the session, before it is sent; what
// it wrote and its exit are still there to read.
func (s *session) closeStdin() {
	_ = s.conn.Write(attach.CloseStdin, nil)
}

// wait reads frames until the Exit frame and returns its code and note.
func (s *session) wait(t testing.TB) (int, string) {
	t.Helper()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			s.conn.Close()
		}
	}()
	for {
		f, err := s.conn.Read()
		require.NoError(t, err, "session ended without an exit; output so far: %q", s.stdout.String())
		switch f.Type {
		case attach.Started:
			s.id = string(f.Payload)
		case attach.Stdout:
			s.stdout.Write(f.Payload)
		case attach.Stderr:
			s.stderr.Write(f.Payload)
		case attach.Error:
			t.Fatalf("session error: %s", f.Payload)
		case attach.Exit:
			code, note, err := attach.DecodeExit(f.Payload)
			require.NoError(t, err)
			return code, note
		}
	}
}

func TestInteractiveTasksAndExec(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "")
	app := testutil.UniqueName(t, "it")
	d.destroyOnCleanup(app)
	d.mustDeploy(busyboxApp(t, app))
	ctx := context.Background()

	t.Run("task with a TTY", func(t *testing.T) {
		conn, err := d.client.AttachTask(ctx, app, api.TaskRunRequest{Service: "tools", Command: []string{"sh"}, Stdin: true, TTY: true})
		require.NoError(t, err)
		defer conn.Close()
		s := &session{conn: conn}
		s.send(t, attach.Resize, attach.EncodeResize(attach.Size{Height: 40, Width: 120}))
		s.send(t, attach.Stdin, []byte("stty size; echo hi; exit 3\n"))
		code, note := s.wait(t)
		assert.Equal(t, 3, code)
		assert.Empty(t, note)
		assert.Contains(t, s.stdout.String(), "40 120\r\n")
		assert.Contains(t, s.stdout.String(), "hi\r\n")
		task := d.waitTask(s.id, 10*time.Second)
		assert.Equal(t, api.TaskFailed, task.Status)
		assert.Equal(t, 3, task.ExitCode)
	})

	t.Run("task with stdin, no TTY", func(t *testing.T) {
		conn, err := d.client.AttachTask(ctx, app, api.TaskRunRequest{Service: "tools", Command: []string{"sh", "-c", "cat; echo bye >&2"}, Stdin: true})
		require.NoError(t, err)
		defer conn.Close()
		s := &session{conn: conn}
		s.send(t, attach.Stdin, []byte("hello\nworld\n"))
		s.send(t, attach.CloseStdin, nil)
		code, _ := s.wait(t)
		assert.Equal(t, 0, code)
		assert.Equal(t, "hello\nworld\n", s.stdout.String())
		assert.Equal(t, "bye\n", s.stderr.String())
	})

	t.Run("a session that hangs up stops its task", func(t *testing.T) {
		conn, err := d.client.AttachTask(ctx, app, api.TaskRunRequest{Service: "tools", Command: []string{"sh"}, Stdin: true, TTY: true})
		require.NoError(t, err)
		f, err := conn.Read()
		require.NoError(t, err)
		require.Equal(t, attach.Started, f.Type)
		conn.Close()
		task := d.waitTask(string(f.Payload), 30*time.Second)
		assert.Equal(t, api.TaskStopped, task.Status)
	})

	t.Run("tasks reach the app's services by name", func(t *testing.T) {
		r := d.mustRunTask(app, api.TaskRunRequest{Service: "tools", Command: []string{"wget", "-qO-", "http://web:8080/"}})
		assert.Equal(t, []string{"hello from v1"}, r.stdout)
	})

	t.Run("logs of a running task, live", func(t *testing.T) {
		task, err := d.client.RunTaskDetached(ctx, app, api.TaskRunRequest{Service: "tools", Command: []string{"sh", "-c", "echo one; sleep 1; echo two >&2"}})
		require.NoError(t, err)
		start := time.Now()
		assert.Equal(t, []string{"one", "two"}, d.taskLogs(task.ID, true))
		assert.Greater(t, time.Since(start), 500*time.Millisecond, "followed while it ran")
		assert.Equal(t, api.TaskSucceeded, d.waitTask(task.ID, 10*time.Second).Status)
	})

	execTests := []struct {
		name           string
		svc            string
		req            api.ExecRequest
		input          string
		stdout, stderr string
		code           int
	}{
		{"output and exit code", "tools", api.ExecRequest{Command: []string{"sh", "-c", "echo out; echo err >&2; exit 4"}}, "", "out\n", "err\n", 4},
		{"stdin", "tools", api.ExecRequest{Command: []string{"cat"}, Stdin: true}, "piped\n", "piped\n", "", 0},
		{"in the test app", "web", api.ExecRequest{Command: []string{"/testapp", "env", "PORT"}}, "", "8080\n", "", 0},
		{"tty", "tools", api.ExecRequest{Command: []string{"sh"}, Stdin: true, TTY: true}, "echo hi; exit 3\n", "hi\r\n", "", 3},
	}
	for _, tt := range execTests {
		t.Run("exec: "+tt.name, func(t *testing.T) {
			conn, err := d.client.Exec(ctx, app, tt.svc, tt.req)
			require.NoError(t, err)
			defer conn.Close()
			s := &session{conn: conn}
			if tt.input != "" {
				s.send(t, attach.Stdin, []byte(tt.input))
			}
			if !tt.req.TTY {
				s.closeStdin()
			}
			code, _ := s.wait(t)
			assert.Equal(t, tt.code, code)
			if tt.req.TTY {
				assert.Contains(t, s.stdout.String(), tt.stdout)
			} else {
				assert.Equal(t, tt.stdout, s.stdout.String())
			}
			assert.Equal(t, tt.stderr, s.stderr.String())
			assert.NotEmpty(t, s.id, "the instance is named")
		})
	}

	t.Run("exec is recorded", func(t *testing.T) {
		var execs []string
		require.NoError(t, d.client.Events(ctx, client.EventsOptions{App: app}, func(m api.Message) {
			if m.Event != nil && m.Event.Kind == "exec" {
				execs = append(execs, m.Event.Message)
			}
		}))
		require.Len(t, execs, len(execTests))
		assert.Contains(t, execs[0], "sh -c 'echo out; echo err >&2; exit 4' exited with code 4")
		assert.Contains(t, execs[0], "exec in instance ")
	})

	t.Run("exec bad input", func(t *testing.T) {
		tests := []struct {
			name string
			svc  string
			req  api.ExecRequest
			code string
			msg  string
		}{
			{"unknown instance", "tools", api.ExecRequest{Instance: "zzzz", Command: []string{"true"}}, "not_found", `tools has no running instance "zzzz"`},
			{"unknown container", "tools", api.ExecRequest{Container: "shipper", Command: []string{"true"}}, "not_found", `tools has no sidecar named "shipper"`},
			{"unknown service", "db", api.ExecRequest{Command: []string{"true"}}, "not_found", `has no service "db"`},
			{"empty command", "tools", api.ExecRequest{}, "invalid", "empty command"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := d.client.Exec(ctx, app, tt.svc, tt.req)
				var ae *client.APIError
				require.ErrorAs(t, err, &ae)
				assert.Equal(t, tt.code, ae.Body.Code)
				assert.Contains(t, ae.Body.Message, tt.msg)
			})
		}
		_, err := d.client.Pause(ctx, app, "web")
		require.NoError(t, err)
		_, err = d.client.Exec(ctx, app, "web", api.ExecRequest{Command: []string{"true"}})
		var ae *client.APIError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, "not_found", ae.Body.Code)
		assert.Contains(t, ae.Body.Message, "web is paused and has no running instance")
	})
}

func TestReleasePhase(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "release")
	spec := func(version string, migrateExit int, release string) string {
		return appSpec(app, img, fmt.Sprintf("    env: {VERSION: %s, MIGRATE_EXIT: \"%d\"}\n    release: %s\n", version, migrateExit, release))
	}
	migrate := `["/testapp", "migrate"]`

	// First deploy, failing release: nothing serves, the service is failed.
	res, msgs, err := d.deploy(spec("v1", 3, migrate))
	var re *client.ResultError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "release_failed", res.Code)
	assert.Contains(t, res.Error, "/testapp migrate exited with code 3")
	assert.Equal(t, []string{"migrating...", "migrated"}, res.LastLogs)
	assert.Contains(t, releaseLogs(msgs), "migrated", "the release output streams into the deploy")
	assert.Contains(t, phases(msgs), "release")
	assert.NotContains(t, phases(msgs), "start", "no instance starts after a failed release")
	st := d.status(app)
	assert.Equal(t, "failed", st.State)
	assert.Zero(t, st.Revision)
	code, _, err := d.get(app, "web", "/")
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, code)

	// First successful deploy: the release runs, then the revision serves.
	res = d.mustDeploy(spec("v1", 0, migrate))
	assert.Equal(t, 2, res.Deployed[0].Revision)
	_, body, _ := d.get(app, "web", "/")
	assert.Equal(t, "hello from v1", strings.TrimSpace(body))

	// The release runs with the NEW revision's env.
	res, msgs, err = d.deploy(spec("v3", 0, `["/testapp", "env", "VERSION"]`))
	require.NoError(t, err)
	assert.Equal(t, []string{"v3"}, releaseLogs(msgs))

	// A failing release under steady load: the old revision keeps serving,
	// without a single failed request.
	l := d.startLoad(app, "web", 4)
	time.Sleep(200 * time.Millisecond)
	res, _, err = d.deploy(spec("v4", 5, migrate))
	time.Sleep(200 * time.Millisecond)
	l.finish()
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "release_failed", res.Code)
	assert.Equal(t, []string{"migrating...", "migrated"}, res.LastLogs)
	assert.Zero(t, l.failed.Load(), "failed requests: %v", l.errs)
	assert.Greater(t, l.ok.Load(), int64(20))
	assert.Len(t, l.bodies, 1, "only v3 answered: %v", l.bodies)
	assert.Positive(t, l.bodies["hello from v3"])
	_, body, _ = d.get(app, "web", "/")
	assert.Equal(t, "hello from v3", strings.TrimSpace(body))
	assert.Equal(t, 3, d.status(app).Revision)

	// Release runs are tasks: in the history, with their revision.
	ts, err := d.client.Tasks(context.Background(), app, 0)
	require.NoError(t, err)
	var got []string
	for _, task := range ts {
		assert.Equal(t, "release", task.Kind)
		got = append(got, fmt.Sprintf("r%d %s %d", task.Revision, task.Status, task.ExitCode))
	}
	assert.Equal(t, []string{"r4 failed 5", "r3 succeeded 0", "r2 succeeded 0", "r1 failed 3"}, got)
}

func TestReleasesOfOneAppRunOneAtATime(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "onerelease")
	// The services of one deploy roll out side by side; their releases
	// must not.
	res, msgs, err := d.deploy(fmt.Sprintf(`app: %s
services:
  a:
    image: %[2]s
    command: ["/testapp", "sleep", "1h"]
    release: ["/testapp", "sleep", "1s"]
  b:
    image: %[2]s
    command: ["/testapp", "sleep", "1h"]
    release: ["/testapp", "sleep", "1s"]
`, app, img))
	require.NoError(t, err, "%v", msgs)
	require.Len(t, res.Deployed, 2)
	ts, err := d.client.Tasks(context.Background(), app, 0)
	require.NoError(t, err)
	require.Len(t, ts, 2)
	// Newest first: the second began after the first had finished.
	assert.False(t, ts[0].StartedAt.Before(ts[1].FinishedAt), "releases overlapped: %+v", ts)
	waited := false
	for _, m := range msgs {
		waited = waited || strings.Contains(m.Text, "waiting for another release")
	}
	assert.True(t, waited, "the second release said it waited")
}

func TestScheduledTasks(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "cron")
	// Tests read the five fields as second minute hour day month: every
	// second here; every minute for a user.
	scheduled := appSpec(app, img, "") + `tasks:
  tick: {service: web, command: ["/testapp", "echo", "tick"], schedule: "* * * * *"}
  slow: {service: web, command: ["/testapp", "sleep", "2500ms"], schedule: "* * * * *"}
`
	d.mustDeploy(scheduled)
	runs := func(name, status string) int {
		ts, err := d.client.Tasks(context.Background(), app, 0)
		require.NoError(t, err)
		n := 0
		for _, task := range ts {
			if task.Name == name && task.Status == status {
				assert.Equal(t, "scheduled", task.Kind)
				n++
			}
		}
		return n
	}
	slowSkipped := func() int {
		ts, err := d.client.Tasks(context.Background(), app, 0)
		require.NoError(t, err)
		n := 0
		for _, task := range ts {
			if task.Name == "slow" && task.Status == api.TaskSkipped && strings.Contains(task.Message, "the previous run") {
				n++
			}
		}
		return n
	}
	eventually(t, 60*time.Second, "two ticks and a skipped slow run", func() bool {
		return runs("tick", api.TaskSucceeded) >= 2 && slowSkipped() >= 1
	})
	ts, err := d.client.Tasks(context.Background(), app, 0)
	require.NoError(t, err)
	for _, task := range ts {
		if task.Status == api.TaskSkipped {
			// Still going, or due during the first deploy.
			assert.Regexp(t, `^skipped: (the previous run( \(task \w+\))? was still going|service web has no revision yet)$`, task.Message)
		}
		if task.Name == "tick" && task.Status == api.TaskSucceeded {
			assert.Equal(t, []string{"tick"}, d.taskLogs(task.ID, false))
		}
	}

	// Schedules come back with the daemon.
	d.stop()
	restarted := time.Now()
	d = d.again()
	eventually(t, 60*time.Second, "a tick after the restart", func() bool {
		ts, err := d.client.Tasks(context.Background(), app, 1)
		require.NoError(t, err)
		return len(ts) == 1 && ts[0].StartedAt.After(restarted)
	})

	// A deploy without tasks removes the schedules.
	d.mustDeploy(appSpec(app, img, ""))
	time.Sleep(time.Second) // a run already due may still be recorded
	before, err := d.client.Tasks(context.Background(), app, 0)
	require.NoError(t, err)
	time.Sleep(2 * time.Second)
	after, err := d.client.Tasks(context.Background(), app, 0)
	require.NoError(t, err)
	assert.Len(t, after, len(before), "no run after the schedule went")
}

func TestTasksSurviveARestart(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "")
	app := testutil.UniqueName(t, "adopt")
	d.destroyOnCleanup(app)
	d.mustDeploy(busyboxApp(t, app))
	ctx := context.Background()
	detach := func(script string, timeout time.Duration) api.Task {
		t.Helper()
		task, err := d.client.RunTaskDetached(ctx, app, api.TaskRunRequest{Service: "tools", Command: []string{"sh", "-c", script}, Timeout: timeout})
		require.NoError(t, err)
		return task
	}
	endsWhileDown := detach("echo a-start; sleep 1; echo a-end", 0)
	// Runs until the test lets it end, however slow the engine is today.
	outlivesDown := detach("echo b-start; until [ -e /go-ahead ]; do sleep 0.1; done; echo b-end; exit 7", 0)
	timesOutAfter := detach("sleep 60", 4*time.Second)
	removedWhileDown := detach("sleep 60", 0)
	time.Sleep(300 * time.Millisecond)

	d.stop()
	cs := d.taskContainers(removedWhileDown.ID)
	require.Len(t, cs, 1)
	e, err := docker.New(slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, e.Remove(ctx, cs[0]))
	time.Sleep(1500 * time.Millisecond)

	d = startDaemon(t, d.dataDir)
	// Ended while the daemon was down: recorded from its exit code and logs.
	a := d.waitTask(endsWhileDown.ID, 30*time.Second)
	assert.Equal(t, api.TaskSucceeded, a.Status)
	assert.Equal(t, []string{"a-start", "a-end"}, d.taskLogs(a.ID, false))
	// Its container gone from under the daemon: lost.
	lost, err := d.client.Task(ctx, removedWhileDown.ID)
	require.NoError(t, err)
	assert.Equal(t, api.TaskLost, lost.Status)
	// Still running: adopted and followed to its end.
	b, err := d.client.Task(ctx, outlivesDown.ID)
	require.NoError(t, err)
	assert.Equal(t, api.TaskRunning, b.Status)
	cs = d.taskContainers(b.ID)
	require.Len(t, cs, 1)
	sess, err := e.Exec(ctx, cs[0], []string{"touch", "/go-ahead"}, false)
	require.NoError(t, err)
	_, err = sess.Wait(ctx)
	require.NoError(t, err)
	sess.Close()
	b = d.waitTask(b.ID, 30*time.Second)
	assert.Equal(t, api.TaskFailed, b.Status)
	assert.Equal(t, 7, b.ExitCode)
	assert.Equal(t, []string{"b-start", "b-end"}, d.taskLogs(b.ID, false))
	// Its --timeout still holds.
	c := d.waitTask(timesOutAfter.ID, 40*time.Second)
	assert.Equal(t, api.TaskTimeout, c.Status)
	for _, task := range []api.Task{a, b, c, lost} {
		d.noContainers(task.ID)
	}
}

func releaseLogs(msgs []api.Message) []string {
	var out []string
	for _, m := range msgs {
		if m.Kind == api.KindLog && m.Source == "release" {
			out = append(out, m.Text)
		}
	}
	return out
}

func phases(msgs []api.Message) []string {
	var out []string
	for _, m := range msgs {
		if m.Kind == api.KindPhase {
			out = append(out, m.Phase)
		}
	}
	return out
}

func TestExecIntoSidecar(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "execside")
	d.mustDeploy(sidecarSpec(app, img, "", "sidekick", ""))
	tests := []struct {
		name      string
		container string
		want      string
	}{
		{"the main container", "", "8080\n"},
		{"the main container by name", "web", "8080\n"},
		{"a sidecar", "helper", "9090\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := d.client.Exec(context.Background(), app, "web", api.ExecRequest{Container: tt.container, Command: []string{"/testapp", "env", "PORT"}})
			require.NoError(t, err)
			defer conn.Close()
			s := &session{conn: conn}
			s.closeStdin()
			code, _ := s.wait(t)
			assert.Equal(t, 0, code)
			assert.Equal(t, tt.want, s.stdout.String())
		})
	}
	_, err := d.client.Exec(context.Background(), app, "web", api.ExecRequest{Container: "nope", Command: []string{"true"}})
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "not_found", ae.Body.Code)
	assert.Contains(t, ae.Body.Message, `web has no sidecar named "nope"; its containers are web, helper`)
}

// Finished tasks are counted by outcome on /metrics.
func TestTaskMetrics(t *testing.T) {
	t.Parallel()
	d := startFakeDaemon(t, "")
	img := d.image()
	app := testutil.UniqueName(t, "tmetric")
	d.mustDeploy(appSpec(app, img, ""))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := d.runTask(ctx, app, api.TaskRunRequest{Command: []string{"/testapp", "exit", "0"}})
	require.NoError(t, err)
	_, _ = d.runTask(ctx, app, api.TaskRunRequest{Command: []string{"/testapp", "exit", "1"}})
	text := scrape(t, d)
	assert.Equal(t, 1.0, metricValue(text, "berth_tasks_total", `app="`+app+`",outcome="succeeded",service="web"`))
	assert.Equal(t, 1.0, metricValue(text, "berth_tasks_total", `app="`+app+`",outcome="failed",service="web"`))
}

// TestTasksJoinAReadyNetwork: after a deploy a network holder waits on the
// app network; a task joins it instead of setting up a network of its own
// at start, still reaches the services by name and by internal name, and
// when it ends its holder goes with it and a fresh one waits for the next.
func TestTasksJoinAReadyNetwork(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "")
	app := testutil.UniqueName(t, "tasknet")
	leaveNothing(t, app)
	d.destroyOnCleanup(app)
	d.mustDeploy(busyboxApp(t, app))
	cli := testutil.DockerClient(t)
	ctx := context.Background()
	holders := func() []string {
		cs, err := cli.ContainerList(ctx, container.ListOptions{Filters: dockerFilters("label=berth.app="+app, "label=berth.role=tasknet")})
		require.NoError(t, err)
		var ids []string
		for _, c := range cs {
			ids = append(ids, c.ID)
		}
		return ids
	}
	var ready string
	eventually(t, 30*time.Second, "a network holder waiting for the app's next task", func() bool {
		h := holders()
		if len(h) == 1 {
			ready = h[0]
		}
		return len(h) == 1
	})

	// The holder shows on the engine a moment before the daemon counts it
	// ready: a task in that moment joins the network itself, and the next
	// one takes the holder.
	eventually(t, 30*time.Second, "a task joins the ready holder", func() bool {
		task, err := d.client.RunTaskDetached(ctx, app, api.TaskRunRequest{Service: "tools", Command: []string{"sleep", "30"}})
		require.NoError(t, err)
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: dockerFilters("label=berth.task=" + task.ID)})
		require.NoError(t, err)
		require.Len(t, cs, 1)
		info, err := cli.ContainerInspect(ctx, cs[0].ID)
		require.NoError(t, err)
		_, err = d.client.StopTask(ctx, task.ID)
		require.NoError(t, err)
		d.waitTask(task.ID, 30*time.Second)
		return string(info.HostConfig.NetworkMode) == "container:"+ready
	})
	eventually(t, 30*time.Second, "the used holder removed, a fresh one waiting", func() bool {
		h := holders()
		return len(h) == 1 && h[0] != ready
	})
	// (It stops, and leaves the listing above, a moment before it is gone.)
	eventually(t, 10*time.Second, "the holder of a finished task is removed", func() bool {
		_, err := cli.ContainerInspect(ctx, ready)
		return cerrdefs.IsNotFound(err)
	})

	r := d.mustRunTask(app, api.TaskRunRequest{Service: "tools", Command: []string{"sh", "-c",
		fmt.Sprintf("wget -qO- http://web:8080/ && wget -qO- http://web.%s.internal/", app)}})
	assert.Equal(t, []string{"hello from v1", "hello from v1"}, r.stdout, "by name and by internal name")

	// A deploy that adds a service adds an internal name: the holder
	// waiting from before lacks it and is replaced by one that has it.
	// (The holder the task used goes, and the next one shows on the engine
	// a moment before it runs.)
	var before []string
	eventually(t, 30*time.Second, "a holder waiting after the task", func() bool {
		before = holders()
		return len(before) == 1
	})
	d.mustDeploy(busyboxApp(t, app) + fmt.Sprintf("  api:\n    image: %s\n    port: 8080\n    env: {VERSION: api}\n", testutil.TestAppImage(t)))
	eventually(t, 30*time.Second, "a holder with the new internal name waiting", func() bool {
		h := holders()
		return len(h) == 1 && h[0] != before[0]
	})
	r = d.mustRunTask(app, api.TaskRunRequest{Service: "tools", Command: []string{"wget", "-qO-", fmt.Sprintf("http://api.%s.internal/", app)}})
	assert.Equal(t, []string{"hello from api"}, r.stdout)
}
