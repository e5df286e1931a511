package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const acmeHost = "shop.example.test"

// acmeEnv is a daemon-shaped setup against a real pebble: a plain-HTTP
// listener with the challenge and redirect handlers, an HTTPS listener with
// the Manager's TLS config, and counters of the challenges each one answered.
type acmeEnv struct {
	opts      Options
	m         *Manager
	pebble    *pebble
	dns       *dnsServer
	httpAddr  string
	httpsAddr string

	httpChallenges atomic.Int64 // HTTP-01 requests on the HTTP listener
	alpnHellos     atomic.Int64 // TLS-ALPN-01 handshakes on the HTTPS listener
}

func newACMEEnv(t *testing.T, disableHTTP, disableTLSALPN bool) *acmeEnv {
	t.Helper()
	pebbleBinary(t) // skip before opening anything
	env := &acmeEnv{dns: startDNS(t)}
	httpLn, httpsLn := listen(t), listen(t)
	env.pebble = startPebble(t, portOf(t, httpLn), portOf(t, httpsLn), env.dns.Addr)
	env.opts = Options{
		DataDir:                 t.TempDir(),
		Domain:                  "localhost",
		ACMECA:                  env.pebble.DirURL,
		ACMEEmail:               "ops@example.test",
		ACMECARoot:              env.pebble.CertPath,
		Logger:                  testLogger(t),
		HTTPPort:                portOf(t, httpLn),
		HTTPSPort:               portOf(t, httpsLn),
		DisableHTTPChallenge:    disableHTTP,
		DisableTLSALPNChallenge: disableTLSALPN,
	}
	m, err := New(env.opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	env.m = m

	countHTTP := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, ACMEChallengePrefix) {
				env.httpChallenges.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	}
	env.httpAddr = serveHTTP(t, httpLn, countHTTP(m.HTTPChallengeHandler(m.RedirectHandler(appHandler, nil))))
	env.httpsAddr = serveTLS(t, httpsLn, env.countingTLSConfig(m), HSTS(appHandler, time.Hour))
	return env
}

// countingTLSConfig is m.TLSConfig with TLS-ALPN-01 handshakes counted.
func (env *acmeEnv) countingTLSConfig(m *Manager) *tls.Config {
	cfg := m.TLSConfig()
	cfg.GetCertificate = func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if len(h.SupportedProtos) == 1 && h.SupportedProtos[0] == acmeTLS1 {
			env.alpnHellos.Add(1)
		}
		return m.GetCertificate(h)
	}
	return cfg
}

// waitIssued polls the HTTPS listener at addr until it serves host with a
// certificate chaining to pebble's root, and returns that leaf.
func waitIssued(t *testing.T, c *http.Client, addr, host string) *x509.Certificate {
	t.Helper()
	var leaf *x509.Certificate
	var lastErr error
	require.Eventually(t, func() bool {
		resp, err := c.Get("https://" + host + ":" + portFromAddr(addr) + "/")
		if err != nil {
			lastErr = err
			return false
		}
		resp.Body.Close()
		leaf = resp.TLS.PeerCertificates[0]
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 200*time.Millisecond, "no ACME certificate for %s: last error: %v", host, lastErr)
	return leaf
}

func portFromAddr(addr string) string {
	return addr[strings.LastIndexByte(addr, ':')+1:]
}

func TestACMEHTTP01(t *testing.T) {
	env := newACMEEnv(t, false, true)
	ctx := t.Context()
	require.NoError(t, env.m.SetHosts(ctx, []string{acmeHost, "web.shop.localhost"}))
	assert.True(t, env.m.IsACME(acmeHost))
	assert.False(t, env.m.IsACME("web.shop.localhost"))

	pebbleRoots, pebbleRoot := env.pebble.IssuerRoots(t)
	h1 := newClient(t, pebbleRoots, env.httpsAddr, false)
	leaf := waitIssued(t, h1, env.httpsAddr, acmeHost)
	assert.Equal(t, []string{acmeHost}, leaf.DNSNames)
	assert.Positive(t, env.httpChallenges.Load(), "pebble validated through HTTPChallengeHandler")
	assert.Zero(t, env.alpnHellos.Load(), "TLS-ALPN-01 is disabled")
	assert.Positive(t, env.dns.Queries.Load(), "pebble resolved the name through the test DNS server")

	httpsURL := "https://" + acmeHost + ":" + portFromAddr(env.httpsAddr)
	t.Run("chain and HTTP/2", func(t *testing.T) {
		h2 := newClient(t, pebbleRoots, env.httpsAddr, true)
		resp, body := get(t, h2, httpsURL+"/x")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, 2, resp.ProtoMajor)
		assert.Contains(t, body, "proto=HTTP/2.0")
		chain := resp.TLS.VerifiedChains[0]
		assert.True(t, chain[len(chain)-1].Equal(pebbleRoot), "chain ends at pebble's root")
		assert.Equal(t, "max-age=3600", resp.Header.Get("Strict-Transport-Security"))
	})

	t.Run("local names on the same listener", func(t *testing.T) {
		local := newClient(t, poolOf(t, env.m.CARootPEM()), env.httpsAddr, true)
		resp, _ := get(t, local, "https://web.shop.localhost:"+portFromAddr(env.httpsAddr)+"/")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	})

	t.Run("redirect", func(t *testing.T) {
		plain := newClient(t, nil, env.httpAddr, false)
		httpPort := portFromAddr(env.httpAddr)

		resp, _ := get(t, plain, "http://"+acmeHost+":"+httpPort+"/a/b?x=1&y=2")
		assert.Equal(t, http.StatusPermanentRedirect, resp.StatusCode)
		loc := resp.Header.Get("Location")
		assert.Equal(t, httpsURL+"/a/b?x=1&y=2", loc)
		assert.Empty(t, resp.Header.Get("Strict-Transport-Security"), "no HSTS over plain HTTP")

		resp, body := get(t, h1, loc)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Contains(t, body, "path=/a/b?x=1&y=2")

		resp, body = get(t, plain, "http://"+acmeHost+":"+httpPort+ACMEChallengePrefix+"unknown-token")
		assert.NotEqual(t, http.StatusPermanentRedirect, resp.StatusCode, "challenges are never redirected")
		assert.Contains(t, body, "app ", "an unknown token falls through to the app")

		resp, body = get(t, plain, "http://web.shop.localhost:"+httpPort+"/")
		assert.Equal(t, http.StatusOK, resp.StatusCode, "local names are not redirected by default")
		assert.Contains(t, body, "proto=HTTP/1.1")
	})

	t.Run("persisted: a new Manager serves it with the CA gone", func(t *testing.T) {
		require.NoError(t, env.m.Close())
		env.pebble.Stop()
		files := findFiles(t, filepath.Join(env.opts.DataDir, "certs", "acme"), acmeHost+".crt")
		require.Len(t, files, 1, "certificate stored under DataDir/certs/acme")

		opts := env.opts
		opts.Logger = testLogger(t)
		m2, err := New(opts)
		require.NoError(t, err)
		t.Cleanup(func() { _ = m2.Close() })
		require.NoError(t, m2.SetHosts(t.Context(), []string{acmeHost}))
		addr := serveTLS(t, listen(t), m2.TLSConfig(), appHandler)
		again := waitIssued(t, newClient(t, pebbleRoots, addr, false), addr, acmeHost)
		assert.Equal(t, leaf.SerialNumber, again.SerialNumber, "same certificate, no new order")
	})
}

func TestACMETLSALPN01(t *testing.T) {
	env := newACMEEnv(t, true, false)
	require.NoError(t, env.m.SetHosts(t.Context(), []string{acmeHost}))

	pebbleRoots, _ := env.pebble.IssuerRoots(t)
	leaf := waitIssued(t, newClient(t, pebbleRoots, env.httpsAddr, true), env.httpsAddr, acmeHost)
	assert.Equal(t, []string{acmeHost}, leaf.DNSNames)
	assert.Positive(t, env.alpnHellos.Load(), "pebble validated through the HTTPS listener's TLSConfig")
	assert.Zero(t, env.httpChallenges.Load(), "HTTP-01 is disabled")
}

// TestACMEPending checks the handshake error for a name whose order cannot
// succeed (the CA is a closed port): it names the host and the failure.
func TestACMEPending(t *testing.T) {
	m := newTestManager(t, Options{})
	require.NoError(t, m.SetHosts(t.Context(), []string{"shop.example.com"}))

	_, err := m.GetCertificate(hello("shop.example.com"))
	require.ErrorIs(t, err, ErrCertificatePending)
	assert.Contains(t, err.Error(), "shop.example.com")

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		_, err := m.GetCertificate(hello("shop.example.com"))
		assert.ErrorIs(c, err, ErrCertificatePending)
		assert.ErrorContains(c, err, "last ACME order failed")
	}, 20*time.Second, 50*time.Millisecond)

	// Dropping the name stops its management: it is unknown from then on.
	require.NoError(t, m.SetHosts(context.Background(), nil))
	_, err = m.GetCertificate(hello("shop.example.com"))
	require.ErrorIs(t, err, ErrUnknownHost)
}

func findFiles(t *testing.T, root, name string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == name {
			out = append(out, path)
			info, err := d.Info()
			if err != nil {
				return err
			}
			t.Logf("%s %s", info.Mode(), path)
		}
		return nil
	}))
	return out
}
