package cli

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/api"
)

// TestTCPHostWithTokenAndCA reaches a daemon over TLS with BERTH_TOKEN and
// BERTH_CA. Not parallel: it sets the environment.
func TestTCPHostWithTokenAndCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			writeJSON(w, http.StatusUnauthorized, api.Error{Message: "missing or wrong API token: set BERTH_TOKEN", Code: "unauthorized"})
			return
		}
		writeJSON(w, http.StatusOK, api.Status{Apps: []api.AppStatus{}})
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "api-cert.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	t.Setenv("BERTH_HOST", "tcp://"+srv.Listener.Addr().String())

	t.Setenv("BERTH_TOKEN", "s3cret")
	t.Setenv("BERTH_CA", ca)
	res := berth(t, "status")
	require.Equal(t, 0, res.code, res.stderr)

	t.Setenv("BERTH_TOKEN", "")
	res = berth(t, "status")
	assert.Equal(t, 1, res.code)
	assert.Equal(t, "berth: missing or wrong API token: set BERTH_TOKEN\n", res.stderr)

	t.Setenv("BERTH_CA", "")
	res = berth(t, "status")
	assert.Equal(t, 1, res.code)
	assert.Contains(t, res.stderr, "(trust the daemon's certificate with BERTH_CA=DATA/api-cert.pem)\n")
}
