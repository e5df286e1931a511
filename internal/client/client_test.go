package client

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
)

// socketDir is a short temporary directory: unix socket paths are limited
// to about 100 bytes and t.TempDir() paths can be longer.
func socketDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "berth")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// unixServer serves h on a real unix socket and returns a client of it.
func unixServer(t testing.TB, h http.Handler) *Client {
	t.Helper()
	sock := filepath.Join(socketDir(t), "berth.sock")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := New("unix://"+sock, "", "")
	require.NoError(t, err)
	return c
}

// writeJSON answers with v as JSON and status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func TestUnixRequests(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/apps", func(w http.ResponseWriter, r *http.Request) {
		assert.Empty(t, r.Header.Get("Authorization"))
		writeJSON(w, 200, []api.AppSummary{{Name: "shop", Services: []string{"web"}}})
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, api.Status{Apps: []api.AppStatus{{Name: r.URL.Query().Get("app")}}})
	})
	mux.HandleFunc("POST /v1/apps/{app}/scale", func(w http.ResponseWriter, r *http.Request) {
		var req api.ScaleRequest
		require.NoError(t, json.NewDecoder(r.Body).Decode(&req))
		assert.Equal(t, "shop", r.PathValue("app"))
		assert.Equal(t, map[string]int{"web": 3}, req.Counts)
		writeJSON(w, 200, api.Status{Apps: []api.AppStatus{{Name: "shop"}}})
	})
	mux.HandleFunc("PUT /v1/apps/{app}/services/{svc}/secrets", func(w http.ResponseWriter, r *http.Request) {
		var req api.SecretSetRequest
		require.NoError(t, json.NewDecoder(r.Body).Decode(&req))
		assert.Equal(t, map[string]string{"K": "v"}, req.Values)
		writeJSON(w, 200, []api.SecretKey{{Key: "K"}})
	})
	mux.HandleFunc("DELETE /v1/apps/{app}/services/{svc}/secrets/{key}", func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "K", r.PathValue("key"))
		w.WriteHeader(http.StatusNoContent)
	})
	c := unixServer(t, mux)
	ctx := t.Context()

	apps, err := c.Apps(ctx)
	require.NoError(t, err)
	assert.Equal(t, []api.AppSummary{{Name: "shop", Services: []string{"web"}}}, apps)

	st, err := c.Status(ctx, "shop")
	require.NoError(t, err)
	assert.Equal(t, "shop", st.Apps[0].Name)

	_, err = c.Scale(ctx, "shop", map[string]int{"web": 3})
	require.NoError(t, err)

	keys, err := c.SecretSet(ctx, "shop", "web", map[string]string{"K": "v"})
	require.NoError(t, err)
	assert.Equal(t, "K", keys[0].Key)

	require.NoError(t, c.SecretDelete(ctx, "shop", "web", "K"))
}

func TestAPIError(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/apps/{app}/services/{svc}/revisions", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 404, api.Error{Message: `no service "db" in app shop`, Code: "not_found"})
	})
	mux.HandleFunc("GET /v1/apps", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream broke\nmore", http.StatusBadGateway)
	})
	c := unixServer(t, mux)

	_, err := c.Revisions(t.Context(), "shop", "db")
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 404, apiErr.StatusCode)
	assert.Equal(t, api.Error{Message: `no service "db" in app shop`, Code: "not_found"}, apiErr.Body)
	assert.EqualError(t, err, `no service "db" in app shop`)

	_, err = c.Apps(t.Context())
	require.ErrorAs(t, err, &apiErr)
	assert.EqualError(t, err, "the berth daemon answered 502 Bad Gateway: upstream broke")
}

func TestStreamDeliversMessagesAsTheyArrive(t *testing.T) {
	t.Parallel()
	got := make(chan api.Message, 10)
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/deploy", func(w http.ResponseWriter, r *http.Request) {
		var req api.DeployRequest
		require.NoError(t, json.NewDecoder(r.Body).Decode(&req))
		assert.Equal(t, "berth.yaml", req.File)
		enc := json.NewEncoder(w)
		_ = enc.Encode(api.Message{Kind: api.KindPhase, Phase: "build", Text: "web"})
		w.(http.Flusher).Flush()
		// The client must hand over the first message before the stream
		// goes on.
		select {
		case <-release:
		case <-time.After(5 * time.Second):
			t.Error("first message was not delivered while the stream was open")
		}
		_ = enc.Encode(api.Message{Kind: api.KindLog, Text: "Step 1/3"})
		_ = enc.Encode(api.Message{Kind: api.KindResult, OK: true, Deployed: []api.Deploy{{Service: "web", Revision: 3}}})
	})
	c := unixServer(t, mux)

	res, err := c.Deploy(t.Context(), api.DeployRequest{File: "berth.yaml"}, func(m api.Message) {
		if m.Kind == api.KindPhase {
			close(release)
		}
		got <- m
	})
	require.NoError(t, err)
	assert.True(t, res.OK)
	assert.Equal(t, 3, res.Deployed[0].Revision)
	close(got)
	var kinds []string
	for m := range got {
		kinds = append(kinds, m.Kind)
	}
	assert.Equal(t, []string{"phase", "log", "result"}, kinds)
}

func TestStreamResults(t *testing.T) {
	t.Parallel()
	lines := map[string][]api.Message{
		"failed": {
			{Kind: api.KindPhase, Phase: "start"},
			{Kind: api.KindResult, Error: "web never became healthy", Code: "unhealthy", LastLogs: []string{"panic"}},
		},
		"noresult": {{Kind: api.KindPhase, Phase: "start"}},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/apps/shop/services/{svc}/rollback", func(w http.ResponseWriter, r *http.Request) {
		for _, m := range lines[r.PathValue("svc")] {
			_ = json.NewEncoder(w).Encode(m)
		}
	})
	mux.HandleFunc("GET /v1/apps/shop/services/web/logs", func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "follow=1&instance=web-1&since=10m&tail=5", r.URL.RawQuery)
		_, _ = w.Write([]byte(`{"kind":"log","text":"a"}` + "\n\n" + `{"kind":"log","text":"b"}`))
	})
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("not json\n"))
	})
	c := unixServer(t, mux)
	ctx := t.Context()

	res, err := c.Rollback(ctx, "shop", "failed", api.RollbackRequest{}, nil)
	var resErr *ResultError
	require.ErrorAs(t, err, &resErr)
	assert.EqualError(t, err, "web never became healthy")
	assert.Equal(t, []string{"panic"}, res.LastLogs)
	assert.Equal(t, "unhealthy", resErr.Result.Code)

	_, err = c.Rollback(ctx, "shop", "noresult", api.RollbackRequest{}, nil)
	require.ErrorIs(t, err, ErrNoResult)

	var texts []string
	err = c.Logs(ctx, "shop", "web", LogsOptions{Follow: true, Since: "10m", Instance: "web-1", Tail: 5}, func(m api.Message) {
		texts = append(texts, m.Text)
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, texts)

	err = c.Events(ctx, EventsOptions{}, nil)
	require.ErrorIs(t, err, errBadMessage)
}

func TestStreamStopsWhenContextIsCancelled(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(api.Message{Kind: api.KindEvent, Event: &api.Event{Kind: "deploy"}})
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	c := unixServer(t, mux)
	stop := errors.New("stop")
	ctx, cancel := context.WithCancelCause(t.Context())
	err := c.Events(ctx, EventsOptions{Follow: true}, func(m api.Message) { cancel(stop) })
	require.ErrorIs(t, err, stop)
}

func TestTLSWithToken(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			writeJSON(w, 401, api.Error{Message: "bad token: set BERTH_TOKEN", Code: "unauthorized"})
			return
		}
		writeJSON(w, 200, []api.AppSummary{{Name: "shop"}})
	}))
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	host := "tcp://" + srv.Listener.Addr().String()

	c, err := New(host, "s3cret", caFile)
	require.NoError(t, err)
	apps, err := c.Apps(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "shop", apps[0].Name)

	c, err = New(host, "wrong", caFile)
	require.NoError(t, err)
	_, err = c.Apps(t.Context())
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 401, apiErr.StatusCode)

	// Without the CA the daemon's certificate is not trusted.
	c, err = New(host, "s3cret", "")
	require.NoError(t, err)
	_, err = c.Apps(t.Context())
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrDaemonUnreachable)
	assert.Contains(t, err.Error(), "certificate")
}

func TestDaemonUnreachable(t *testing.T) {
	t.Parallel()
	dir := socketDir(t)

	// A socket file nobody listens on: connection refused.
	refused := filepath.Join(dir, "refused.sock")
	ln, err := net.Listen("unix", refused)
	require.NoError(t, err)
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	require.NoError(t, ln.Close())

	// A TCP port nobody listens on.
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedPort := tl.Addr().String()
	require.NoError(t, tl.Close())

	for name, host := range map[string]string{
		"missing socket": "unix://" + filepath.Join(dir, "missing.sock"),
		"refused socket": "unix://" + refused,
		"refused tcp":    "tcp://" + closedPort,
	} {
		t.Run(name, func(t *testing.T) {
			c, err := New(host, "", "")
			require.NoError(t, err)
			_, err = c.Apps(t.Context())
			require.ErrorIs(t, err, ErrDaemonUnreachable)
			assert.Equal(t, "cannot reach the berth daemon at "+host+`: is it running? Start it with "berth server"`, err.Error())
		})
	}
}

func TestNewRejectsBadHosts(t *testing.T) {
	t.Parallel()
	for _, host := range []string{"", "localhost:8080", "unix://", "tcp://nohost", "http://x:1"} {
		_, err := New(host, "", "")
		assert.Error(t, err, host)
	}
	_, err := New("tcp://127.0.0.1:1", "", filepath.Join(t.TempDir(), "none.pem"))
	assert.Error(t, err)
}

func TestDefaultHost(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Setenv("BERTH_HOST", "")
		t.Setenv("BERTH_DATA", "")
		assert.Equal(t, "unix:///var/lib/berth/berth.sock", DefaultHost())
	}
	tests := []struct {
		name, host, data, xdg, home, want string
	}{
		{"host wins", "tcp://h:1", "/d", "/x", "/h", "tcp://h:1"},
		{"data dir", "", "/d", "/x", "/h", "unix:///d/berth.sock"},
		{"xdg", "", "", "/x", "/h", "unix:///x/berth/berth.sock"},
		{"relative xdg ignored", "", "", "rel", "/h", "unix:///h/.local/share/berth/berth.sock"},
		{"home", "", "", "", "/h", "unix:///h/.local/share/berth/berth.sock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("BERTH_HOST", tt.host)
			t.Setenv("BERTH_DATA", tt.data)
			t.Setenv("XDG_DATA_HOME", tt.xdg)
			t.Setenv("HOME", tt.home)
			want := tt.want
			if os.Geteuid() == 0 && tt.host == "" && tt.data == "" {
				want = "unix:///var/lib/berth/berth.sock"
			}
			assert.Equal(t, want, DefaultHost())
		})
	}
}
