package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHandlers(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "from upstream")
	}))
	defer upstream.Close()

	tests := []struct {
		name       string
		env        map[string]string
		path       string
		wantStatus int
		wantBody   string
	}{
		{"root default version", nil, "/", 200, "hello from v1\n"},
		{"root version", map[string]string{"VERSION": "v2"}, "/", 200, "hello from v2\n"},
		{"unknown path", nil, "/nope", 404, "404 page not found\n"},
		{"healthz", nil, "/healthz", 200, "ok"},
		{"healthz failing", map[string]string{"HEALTH_FAIL": "1"}, "/healthz", 500, "unhealthy on purpose\n"},
		{"env set", map[string]string{"TESTAPP_X": "42"}, "/env/TESTAPP_X", 200, "42"},
		{"env unset", nil, "/env/TESTAPP_UNSET_VAR", 404, "404 page not found\n"},
		{"sleep", nil, "/sleep?d=10ms", 200, "slept"},
		{"sleep bad", nil, "/sleep?d=x", 400, "d must be a duration like 200ms\n"},
		{"fetch", nil, "/fetch?url=" + upstream.URL, 200, "418\nfrom upstream"},
		{"fetch failing", nil, "/fetch?url=http://127.0.0.1:1/", 502, ""},
		{"fetch without url", nil, "/fetch", 400, "url is required\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			rec := httptest.NewRecorder()
			newMux().ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
			assert.Equal(t, tt.wantStatus, rec.Code)
			if tt.wantBody != "" {
				assert.Equal(t, tt.wantBody, rec.Body.String())
			}
		})
	}
}

func TestHeadersAndHostname(t *testing.T) {
	srv := httptest.NewServer(newMux())
	defer srv.Close()

	req, _ := http.NewRequest("GET", srv.URL+"/headers", nil)
	req.Header.Set("X-Forwarded-For", "1.2.3.4")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var h map[string][]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&h))
	assert.Equal(t, []string{"1.2.3.4"}, h["X-Forwarded-For"])
	assert.Equal(t, []string{strings.TrimPrefix(srv.URL, "http://")}, h["Host"])

	resp, err = http.Get(srv.URL + "/hostname")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want, _ := os.Hostname()
	assert.Equal(t, want, string(body))
}

func TestSSE(t *testing.T) {
	srv := httptest.NewServer(newMux())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/sse?n=3&every=50ms")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))

	// Events arrive one by one, not all at the end.
	sc := bufio.NewScanner(resp.Body)
	var data []string
	var times []time.Time
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			data = append(data, strings.TrimPrefix(sc.Text(), "data: "))
			times = append(times, time.Now())
		}
	}
	assert.Equal(t, []string{"event 1", "event 2", "event 3"}, data)
	require.Len(t, times, 3)
	assert.GreaterOrEqual(t, times[2].Sub(times[0]), 80*time.Millisecond)
}

func TestWebSocketEcho(t *testing.T) {
	srv := httptest.NewServer(newMux())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	require.NoError(t, err)
	defer c.CloseNow()
	for _, msg := range []string{"one", "two"} {
		require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(msg)))
		typ, got, err := c.Read(ctx)
		require.NoError(t, err)
		assert.Equal(t, websocket.MessageText, typ)
		assert.Equal(t, msg, string(got))
	}
	c.Close(websocket.StatusNormalClosure, "")
}

// captureStdout runs fn with os.Stdout redirected and returns what it wrote.
func captureStdout(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	fn()
	os.Stdout = old
	w.Close()
	return <-done
}

func TestSubcommands(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		wantOut  string
	}{
		{"exit", []string{"exit", "3"}, nil, 3, ""},
		{"exit usage", []string{"exit"}, nil, 2, ""},
		{"lines", []string{"lines", "3"}, nil, 0, "line 1\nline 2\nline 3\n"},
		{"echo", []string{"echo", "a", "b"}, nil, 0, "a b\n"},
		{"env", []string{"env", "TESTAPP_Y"}, map[string]string{"TESTAPP_Y": "yes"}, 0, "yes\n"},
		{"env unset", []string{"env", "TESTAPP_UNSET_VAR"}, nil, 1, ""},
		{"sleep", []string{"sleep", "1ms"}, nil, 0, ""},
		{"migrate", []string{"migrate"}, nil, 0, "migrating...\nmigrated\n"},
		{"migrate failing", []string{"migrate"}, map[string]string{"MIGRATE_EXIT": "5"}, 5, "migrating...\nmigrated\n"},
		{"unknown", []string{"frobnicate"}, nil, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var code int
			out := captureStdout(t, func() { code = subcommand(tt.args[0], tt.args[1:]) })
			assert.Equal(t, tt.wantCode, code)
			assert.Equal(t, tt.wantOut, out)
		})
	}
}
