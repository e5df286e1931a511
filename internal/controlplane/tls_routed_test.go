package controlplane_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/internal/controlplane"
	"github.com/berth-dev/berth/internal/testutil"
)

// TestLocalCertificatesOnlyForRoutedHosts serves HTTPS from the daemon and
// checks that the local CA answers a handshake for a service's host and an
// entrypoint's host, and refuses one for a name under the domain that no
// route serves, writing no certificate for it.
func TestLocalCertificatesOnlyForRoutedHosts(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	d := startFakeDaemon(t, dataDir, func(c *controlplane.Config) { c.HTTPSAddr = "127.0.0.1:0" })
	img := d.image()
	app := testutil.UniqueName(t, "tlsr")
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "from origin") }))
	t.Cleanup(origin.Close)
	ep := app + "-www"
	d.mustDeploy(edgeSpec(app, img, ep, ep+".localhost", "url: "+origin.URL, ""))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rootPEM, err := d.client.CARoot(ctx)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(rootPEM))
	require.NotEmpty(t, d.addrs.HTTPS)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy:           nil,
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, d.addrs.HTTPS)
		},
	}}
	t.Cleanup(client.CloseIdleConnections)
	get := func(host string) (string, error) {
		res, err := client.Get("https://" + host + "/")
		if err != nil {
			return "", err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return string(b), err
	}

	body, err := get("web." + app + ".localhost")
	require.NoError(t, err)
	assert.Contains(t, body, "hello from v1")
	body, err = get(ep + ".localhost")
	require.NoError(t, err)
	assert.Equal(t, "from origin", body)

	ghost := "ghost." + app + ".localhost"
	_, err = get(ghost)
	require.Error(t, err, "no route serves %s: no certificate", ghost)
	assert.NoFileExists(t, filepath.Join(dataDir, "certs", "local", ghost+".pem"))
	_, statErr := os.Stat(filepath.Join(dataDir, "certs", "local", "web."+app+".localhost.pem"))
	assert.NoError(t, statErr, "the routed host's certificate is kept")
}
