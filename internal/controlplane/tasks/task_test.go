package tasks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/controlplane/apierr"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/store"
)

// A task runs to its end: recorded with its exit code and output, told as
// an event, counted, its pod removed; the hooks see it start, then every
// byte of its output.
func TestTaskRunsToItsEnd(t *testing.T) {
	tests := []struct {
		name    string
		command []string
		status  string
		code    int
		message string
		output  string
	}{
		{"exit 0", []string{"/testapp", "lines", "2"}, api.TaskSucceeded, 0, "", "line 1\nline 2\n"},
		{"exit 3", []string{"/testapp", "exit", "3"}, api.TaskFailed, 3, "exited with code 3", ""},
		{"not in the image", []string{"/nope"}, api.TaskFailed, 127, "exited with code 127", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			r, _ := w.runner()
			var mu sync.Mutex
			var seen []string
			var out strings.Builder
			run, err := r.Start(context.Background(), w.spec(tt.command...), Hooks{
				Started: func(rec store.Task) {
					mu.Lock()
					defer mu.Unlock()
					seen = append(seen, "started "+rec.Status)
				},
				Output: func(stream string, p []byte) {
					mu.Lock()
					defer mu.Unlock()
					if len(seen) == 0 || seen[len(seen)-1] != "output" {
						seen = append(seen, "output")
					}
					if stream == "stdout" {
						out.Write(p)
					}
				},
			})
			require.NoError(t, err)
			rec := wait(t, run)
			assert.Equal(t, tt.status, rec.Status)
			assert.Equal(t, tt.code, rec.ExitCode)
			assert.Equal(t, tt.message, rec.Message)
			if tt.output != "" {
				assert.Equal(t, tt.output, string(rec.Output))
				mu.Lock()
				assert.Equal(t, tt.output, out.String(), "the output hook saw all of it")
				assert.Equal(t, []string{"started running", "output"}, seen)
				mu.Unlock()
			}
			stored := w.recorded(rec.ID)
			assert.Equal(t, rec.Status, stored.Status)
			assert.Equal(t, rec.ExitCode, stored.ExitCode)
			assert.Equal(t, "oneoff", stored.Kind)
			assert.Equal(t, 1, stored.Revision)
			assert.Nil(t, r.Running(rec.ID), "no longer running")
			eventually(t, "its pod is removed", func() bool { return len(w.taskPods()) == 0 })
			assert.Contains(t, w.eventsSaid(), fmt.Sprintf("task: task %s (%s) exited with code %d", rec.ID, quoteCommand(tt.command), tt.code))
			assert.Equal(t, map[string]int{tt.status: 1}, w.counted())
		})
	}
}

// A task whose pod cannot be made or started is recorded failed with the
// exit code a shell would give, and the reason a user can act on; nothing
// of it is left on the engine.
func TestTaskThatCannotStart(t *testing.T) {
	tests := []struct {
		name, op, engineErr string
		code                int
		message             string
	}{
		{"not found", "CreatePod", `OCI runtime create failed: runc create failed: unable to start container process: exec: "nope": executable file not found in $PATH: unknown`,
			127, `could not start: exec: "nope": executable file not found in $PATH`},
		{"not executable", "StartPod", "unable to start container process: exec: \"/etc/passwd\":\n permission denied: unknown",
			126, `could not start: exec: "/etc/passwd": permission denied`},
		{"other", "CreatePod", "no space left on device", 125, "could not start: no space left on device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			r, _ := w.runner()
			w.eng.FailNext(tt.op, errors.New(tt.engineErr))
			_, err := r.Start(context.Background(), w.spec("/testapp", "echo", "hi"), Hooks{})
			require.ErrorIs(t, err, ErrNotStarted)
			var se *StartError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tt.code, se.Task.ExitCode)
			assert.Equal(t, tt.message, se.Task.Message)
			assert.Equal(t, api.TaskFailed, se.Task.Status)
			stored := w.recorded(se.Task.ID)
			assert.Equal(t, se.Task.Message, stored.Message)
			assert.Equal(t, tt.code, stored.ExitCode)
			assert.Empty(t, w.taskPods())
			assert.Equal(t, map[string]int{api.TaskFailed: 1}, w.counted())
			assert.Contains(t, w.eventsSaid(), fmt.Sprintf("task: task %s (/testapp echo hi) could not start: %s", se.Task.ID, strings.TrimPrefix(tt.message, "could not start: ")))
		})
	}
}

// berth task stop, and --timeout, end a task; its record says which.
func TestTaskStopAndTimeout(t *testing.T) {
	t.Run("stop", func(t *testing.T) {
		w := newWorld(t)
		r, _ := w.runner()
		run, err := r.Start(context.Background(), w.spec("/testapp", "sleep", "1h"), Hooks{})
		require.NoError(t, err)
		rec, err := r.StopWait(context.Background(), run)
		require.NoError(t, err)
		assert.Equal(t, api.TaskStopped, rec.Status)
		assert.Equal(t, "stopped by berth task stop", rec.Message)
		assert.Equal(t, api.TaskStopped, w.recorded(rec.ID).Status)
	})
	t.Run("timeout", func(t *testing.T) {
		w := newWorld(t)
		r, _ := w.runner()
		ts := w.spec("/testapp", "sleep", "1h")
		ts.timeout = 200 * time.Millisecond
		run, err := r.Start(context.Background(), ts, Hooks{})
		require.NoError(t, err)
		rec := wait(t, run)
		assert.Equal(t, api.TaskTimeout, rec.Status)
		assert.Equal(t, "timed out after 200ms", rec.Message)
	})
	t.Run("a finished task is not stopped again", func(t *testing.T) {
		w := newWorld(t)
		r, _ := w.runner()
		run, err := r.Start(context.Background(), w.spec("/testapp", "exit", "0"), Hooks{})
		require.NoError(t, err)
		wait(t, run)
		rec, err := r.StopWait(context.Background(), run)
		require.NoError(t, err)
		assert.Equal(t, api.TaskSucceeded, rec.Status)
	})
}

// A release runs the revision's release command as a task, saying so as a
// deploy phase and passing its output on line by line; a failed one is
// ErrReleaseFailed with its last lines.
func TestRelease(t *testing.T) {
	rev := func(w *world, env map[string]string) Revision {
		sv := *w.sp.Services["web"]
		sv.Release, sv.Env = []string{"/testapp", "migrate"}, env
		return Revision{Number: 2, Spec: &sv, Image: w.revision("web", 1).Image}
	}
	t.Run("succeeds", func(t *testing.T) {
		w := newWorld(t)
		r, _ := w.runner()
		var phases, lines []string
		err := r.Release(context.Background(), testApp, "web", rev(w, nil), ReleaseOutput{
			Phase: func(msg string) { phases = append(phases, msg) },
			Line:  func(line string) { lines = append(lines, line) },
		})
		require.NoError(t, err)
		assert.Equal(t, []string{"migrating...", "migrated"}, lines)
		require.Len(t, phases, 2)
		assert.Regexp(t, `^web: running /testapp migrate \(task [0-9a-f]{10}\)$`, phases[0])
		assert.Regexp(t, `^web: release succeeded in `, phases[1])
		tasks, err := w.st.ListTasks(context.Background(), testApp, 0)
		require.NoError(t, err)
		require.Len(t, tasks, 1)
		assert.Equal(t, "release", tasks[0].Kind)
		assert.Equal(t, 2, tasks[0].Revision)
	})
	t.Run("fails", func(t *testing.T) {
		w := newWorld(t)
		r, _ := w.runner()
		err := r.Release(context.Background(), testApp, "web", rev(w, map[string]string{"MIGRATE_EXIT": "3"}), ReleaseOutput{
			Phase: func(string) {}, Line: func(string) {},
		})
		require.ErrorIs(t, err, ErrReleaseFailed)
		var re *ReleaseError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, []string{"migrating...", "migrated"}, re.LastLines)
		assert.Regexp(t, `^release command failed: /testapp migrate exited with code 3 \(task [0-9a-f]{10}\)$`, err.Error())
	})
}

// Two releases of one app never run at once: the second waits, and says
// so, until the first is over; another app's does not wait.
func TestReleaseLock(t *testing.T) {
	r := New(Config{})
	ctx := context.Background()
	unlock, err := r.lockRelease(ctx, "shop", func() { t.Error("the first release waited") })
	require.NoError(t, err)
	other, err := r.lockRelease(ctx, "blog", func() { t.Error("another app's release waited") })
	require.NoError(t, err)
	other()

	waiting := make(chan struct{})
	got := make(chan func(), 1)
	go func() {
		u, err := r.lockRelease(ctx, "shop", func() { close(waiting) })
		assert.NoError(t, err)
		got <- u
	}()
	<-waiting
	select {
	case <-got:
		t.Fatal("the second release ran beside the first")
	case <-time.After(50 * time.Millisecond):
	}
	unlock()
	select {
	case u := <-got:
		u()
	case <-time.After(5 * time.Second):
		t.Fatal("the second release never ran")
	}

	// A deploy that ends while waiting gives up.
	unlock, err = r.lockRelease(ctx, "shop", func() {})
	require.NoError(t, err)
	defer unlock()
	cctx, cancel := context.WithCancelCause(ctx)
	cause := errors.New("deploy cancelled")
	_, err = r.lockRelease(cctx, "shop", func() { cancel(cause) })
	require.ErrorIs(t, err, cause)
}

// A run request becomes what to run, or a refusal the API gives a code.
func TestResolve(t *testing.T) {
	w := newWorld(t)
	r, _ := w.runner()
	tests := []struct {
		name    string
		app     string
		req     api.TaskRunRequest
		wantErr error
		message string
		service string
		command []string
	}{
		{name: "ad-hoc on the only spec service with a revision or the first", req: api.TaskRunRequest{Command: []string{"/testapp", "echo", "x"}},
			service: "web", command: []string{"/testapp", "echo", "x"}},
		{name: "named, with extra arguments", req: api.TaskRunRequest{Name: "hello", Command: []string{"again"}},
			service: "web", command: []string{"/testapp", "echo", "named", "again"}},
		{name: "no app", app: "nope", req: api.TaskRunRequest{Command: []string{"x"}},
			wantErr: apierr.ErrNotFound, message: `not found: no app named "nope"; see "berth status"`},
		{name: "negative timeout", req: api.TaskRunRequest{Command: []string{"x"}, Timeout: -time.Second},
			wantErr: apierr.ErrInvalid, message: "invalid request: timeout -1s: must be positive, e.g. 10m"},
		{name: "NUL byte", req: api.TaskRunRequest{Command: []string{"a", "b\x00"}},
			wantErr: apierr.ErrInvalid, message: `invalid request: command argument 2 contains a NUL byte (\0), which a process cannot receive; remove it`},
		{name: "unknown task", req: api.TaskRunRequest{Name: "bye"},
			wantErr: apierr.ErrNotFound, message: `not found: no task named "bye"; the deployed berth.yaml defines hello`},
		{name: "task on another service", req: api.TaskRunRequest{Name: "hello", Service: "worker"},
			wantErr: apierr.ErrInvalid, message: "invalid request: task hello runs on service web (tasks: in berth.yaml); drop --service worker"},
		{name: "empty command", req: api.TaskRunRequest{},
			wantErr: apierr.ErrInvalid},
		{name: "unknown service", req: api.TaskRunRequest{Command: []string{"x"}, Service: "db"},
			wantErr: apierr.ErrNotFound, message: `not found: app shop has no service "db"; services are: web, worker, idle`},
		{name: "no revision", req: api.TaskRunRequest{Command: []string{"x"}, Service: "idle"},
			wantErr: apierr.ErrNoRevision, message: "no revision to use: service idle has no revision yet; deploy it first (berth deploy)"},
		{name: "a secret never set", req: api.TaskRunRequest{Command: []string{"x"}, Service: "worker"},
			wantErr: apierr.ErrInvalid, message: "service worker: secret TOKEN is listed but never set: run `berth secret set worker TOKEN=...` first"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := tt.app
			if app == "" {
				app = testApp
			}
			ts, err := r.Resolve(context.Background(), app, tt.req)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				if tt.message != "" {
					assert.Equal(t, tt.message, err.Error())
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.service, ts.service)
			assert.Equal(t, tt.command, ts.command)
			assert.Equal(t, 1, ts.rev.Number)
			assert.Equal(t, kindOneOff, ts.kind)
		})
	}
}

// Following a task's logs as it ends gives every line, whichever comes
// first: the engine's follow ending with the process, or the task's record.
// (A follow that ended with its process before the task was recorded used
// to answer with nothing.)
func TestLogsFollowAsTheTaskEnds(t *testing.T) {
	w := newWorld(t)
	r, _ := w.runner()
	for i := range 40 {
		run, err := r.Start(context.Background(), w.spec("/testapp", "lines", "3"), Hooks{})
		require.NoError(t, err)
		rec := w.recorded(run.Record().ID)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var got []string
		r.Logs(ctx, rec, true, func(l runtime.LogLine) { got = append(got, l.Text) })
		cancel()
		require.Equal(t, []string{"line 1", "line 2", "line 3"}, got, "run %d", i)
		wait(t, run)
	}
}
