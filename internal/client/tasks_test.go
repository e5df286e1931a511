package client

import (
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/attach"
)

// echoSession upgrades the connection and echoes one stdin frame to
// stdout, then exits 3; a request without a token is refused first.
func echoSession(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			writeJSON(w, http.StatusUnauthorized, api.Error{Message: "bad token", Code: "unauthorized"})
			return
		}
		var req api.ExecRequest
		require.NoError(t, json.NewDecoder(r.Body).Decode(&req))
		if req.Instance == "nope" {
			writeJSON(w, http.StatusNotFound, api.Error{Message: `web has no running instance "nope"`, Code: "not_found"})
			return
		}
		assert.Equal(t, attach.Protocol, r.Header.Get("Upgrade"))
		assert.Equal(t, 1, r.ProtoMajor, "sessions upgrade HTTP/1.1, never HTTP/2")
		nc, brw, err := http.NewResponseController(w).Hijack()
		require.NoError(t, err)
		_, _ = io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: berth-attach\r\n\r\n")
		conn := attach.NewConn(nc, brw.Reader)
		defer conn.Close()
		// Sent at once, so it may sit in the client's HTTP reader.
		require.NoError(t, conn.Write(attach.Started, []byte(req.Command[0])))
		f, err := conn.Read()
		require.NoError(t, err)
		_ = conn.Write(attach.Stdout, f.Payload)
		_ = conn.Write(attach.Exit, attach.EncodeExit(3, ""))
	}
}

func TestSessionUpgrade(t *testing.T) {
	t.Parallel()
	tlsSrv := httptest.NewUnstartedServer(echoSession(t))
	tlsSrv.EnableHTTP2 = true
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}), 0o600))
	tlsClient, err := New("tcp://"+tlsSrv.Listener.Addr().String(), "s3cret", caFile)
	require.NoError(t, err)

	unixClient := unixServer(t, echoSession(t))
	unixClient.token = "s3cret"

	for name, c := range map[string]*Client{"unix": unixClient, "tls": tlsClient} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			conn, err := c.Exec(t.Context(), "shop", "web", api.ExecRequest{Command: []string{"cat"}})
			require.NoError(t, err)
			defer conn.Close()
			pr, pw := io.Pipe()
			go func() {
				_, _ = io.WriteString(pw, "hello")
			}()
			var out, errOut bufWriter
			res, err := conn.Pump(t.Context(), pr, true, &out, &errOut, nil)
			require.NoError(t, err)
			assert.Equal(t, attach.Result{ID: "cat", Code: 3}, res)
			assert.Equal(t, "hello", out.String())

			_, err = c.Exec(t.Context(), "shop", "web", api.ExecRequest{Instance: "nope", Command: []string{"cat"}})
			var apiErr *APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, http.StatusNotFound, apiErr.StatusCode)
			assert.Equal(t, `web has no running instance "nope"`, apiErr.Error())
		})
	}

	noToken := *tlsClient
	noToken.token = ""
	_, err = noToken.Exec(t.Context(), "shop", "web", api.ExecRequest{Command: []string{"cat"}})
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
}

// bufWriter collects what Pump writes (from one goroutine).
type bufWriter struct {
	b []byte
}

func (w *bufWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *bufWriter) String() string { return string(w.b) }
