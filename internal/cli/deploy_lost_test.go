package cli

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/attach"
)

// A daemon that dies in the middle of a deploy (here: the connection is
// cut after the switch was announced) leaves the outcome unknown: the CLI
// says so and how to find out, instead of a bare connection error.
func TestDeployLostConnectionSaysOutcomeUnknown(t *testing.T) {
	t.Parallel()
	for _, verb := range []string{"deploy", "rollback"} {
		t.Run(verb, func(t *testing.T) {
			d := newFakeDaemon(t)
			spec := writeSpec(t, shopSpec)
			cut := func(w http.ResponseWriter, r *http.Request) {
				send(w, api.Message{Kind: api.KindPhase, Phase: "switch", Text: "web: all traffic on revision 4"})
				conn, _, err := http.NewResponseController(w).Hijack()
				require.NoError(t, err)
				conn.Close() // as a kill -9 of the daemon would
			}
			d.handle("POST /v1/deploy", cut)
			d.handle("POST /v1/apps/shop/services/web/rollback", cut)
			args := []string{"deploy", "-f", spec} // its one service is named
			if verb == "rollback" {
				args = []string{"rollback", "-f", spec, "web"}
			}
			res := d.run(args...)
			assert.Equal(t, 1, res.code)
			assert.Contains(t, res.stderr, "lost the connection to berth server during the "+verb)
			assert.Contains(t, res.stderr, "the outcome is unknown: run `berth status` or `berth revisions web`")
		})
	}
}

// A daemon that cannot be reached never began the deploy: that is said as
// before.
func TestDeployUnreachableIsNotUnknown(t *testing.T) {
	t.Parallel()
	spec := writeSpec(t, shopSpec)
	res := berth(t, "--host", "unix:///nonexistent/berth.sock", "deploy", "-f", spec)
	assert.Equal(t, 1, res.code)
	assert.NotContains(t, res.stderr, "outcome is unknown")
	assert.Contains(t, res.stderr, "cannot reach the berth daemon")
}

// A daemon killed while `berth task run` streams the task's output leaves
// the task's outcome unknown (it may run on, or have been stopped): the CLI
// says so, with the task's ID and how to see what became of it, instead of
// a bare "stream ... broke: unexpected EOF".
func TestTaskRunLostConnectionSaysOutcomeUnknown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		started bool // the daemon announced the task before it died
		want    string
	}{
		{name: "after the task started", started: true, want: "the outcome is unknown: see `berth task logs t1abc` or `berth task ls`"},
		{name: "before the task was announced", want: "the outcome is unknown: see `berth task ls`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newFakeDaemon(t)
			d.handle("POST /v1/apps/shop/tasks", func(w http.ResponseWriter, r *http.Request) {
				if tt.started {
					send(w, api.Message{Kind: api.KindTask, Task: &api.Task{ID: "t1abc", Status: api.TaskRunning}})
					send(w, api.Message{Kind: api.KindLog, Source: "t1abc", Stream: "stdout", Text: "migrating"})
				} else {
					w.WriteHeader(http.StatusOK)
					w.(http.Flusher).Flush()
				}
				conn, _, err := http.NewResponseController(w).Hijack()
				require.NoError(t, err)
				conn.Close() // as a kill -9 of the daemon would
			})
			res := d.run("task", "run", "--app", "shop", "--", "./server", "migrate")
			assert.Equal(t, 1, res.code)
			assert.Contains(t, res.stderr, "lost the connection to berth server while the task ran")
			assert.Contains(t, res.stderr, tt.want)
			assert.NotContains(t, res.stderr, "broke: unexpected EOF\n")
			assert.Equal(t, 1, strings.Count(res.stderr, "\n"), "one line: %q", res.stderr)
		})
	}
}

// The same for `berth task run -i`: a session cut before its exit code
// names the task and how to see how it ended.
func TestTaskRunInteractiveLostConnectionSaysOutcomeUnknown(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.handle("POST /v1/apps/shop/tasks", func(w http.ResponseWriter, r *http.Request) {
		nc, brw, err := http.NewResponseController(w).Hijack()
		require.NoError(t, err)
		_, _ = io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: berth-attach\r\n\r\n")
		conn := attach.NewConn(nc, brw.Reader)
		require.NoError(t, conn.Write(attach.Started, []byte("t2def")))
		require.NoError(t, conn.Write(attach.Stdout, []byte("migrating\n")))
		conn.Close() // as a kill -9 of the daemon would
	})
	var stdout, stderr strings.Builder
	code := Main([]string{"--host", d.host, "task", "run", "--app", "shop", "-i", "--", "./server", "migrate"}, strings.NewReader(""), &stdout, &stderr)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr.String(), "lost the connection to berth server while the task ran")
	assert.Contains(t, stderr.String(), "the outcome is unknown: see `berth task logs t2def` or `berth task ls`")
	assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line: %q", stderr.String())
}

// A daemon that refuses a task or a deploy before anything ran (an unknown
// task, a deploy in progress) answered: its reason is said as it is, not as
// a lost connection with an unknown outcome.
func TestRefusalsAreNotLostConnections(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.handle("POST /v1/apps/shop/tasks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, api.Error{Message: `no task named "web": the deployed berth.yaml has no tasks:`, Code: "not_found"})
	})
	d.handle("POST /v1/deploy", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusConflict, api.Error{Message: "a deploy of web is in progress", Code: "deploy_in_progress"})
	})
	spec := writeSpec(t, shopSpec)
	for _, args := range [][]string{
		{"task", "run", "-f", spec, "web"},
		{"deploy", "-f", spec},
	} {
		res := d.run(args...)
		assert.NotEqual(t, 0, res.code, "berth %v", args)
		assert.NotContains(t, res.stderr, "lost the connection", "berth %v", args)
		assert.NotContains(t, res.stderr, "outcome is unknown", "berth %v", args)
	}
	assert.Contains(t, d.run("task", "run", "-f", spec, "web").stderr, `no task named "web"`)
	assert.Contains(t, d.run("deploy", "-f", spec).stderr, "a deploy of web is in progress")
}
